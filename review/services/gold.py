"""Gold items: queued items an admin gave an expected verdict, served to reviewers as checks.

A gold item is never settled by review (its decisions only measure the reviewer), so it stays
``queued`` in the corpus and can never be approved, hence never exported.
"""

from typing import Any

from django.db import transaction

from corpus.models import Dataset, Item
from corpus.services.audit import actor_for_user, audit_append, audit_lock
from corpus.services.items import ItemStateError, item_gold_set
from review.models import GoldItem, Verdict
from review.services import ReviewError


@transaction.atomic
def gold_mark(
    *, actor: Any, dataset: Dataset, item_id: int, expected: str, note: str = ""
) -> GoldItem:
    if expected not in Verdict.values:
        raise ReviewError("Expect approve or reject.", field="expected")
    note = note.strip()
    if len(note) > 500:
        raise ReviewError("The note has more than 500 characters.", field="note")
    audit_lock()
    item = Item.objects.select_for_update(of=("self",)).filter(pk=item_id, dataset=dataset).first()
    if item is None:
        raise ReviewError(f"Item {item_id} is not in {dataset.slug}.", code="conflict")
    if item.state != Item.State.QUEUED:
        # A settled item may already be exported; only a queued one is sure never to be.
        raise ReviewError(
            f"Only queued items can become gold checks; item {item_id} is {item.state}.",
            code="conflict",
        )
    if GoldItem.objects.filter(item_id=item_id).exists():
        raise ReviewError(f"Item {item_id} is already a gold check.", code="conflict")
    gold = GoldItem.objects.create(
        item=item, dataset=dataset, expected=expected, note=note, created_by=actor
    )
    try:
        # Mirrored onto the item so exports and the feed leave it out without reading review.
        item_gold_set(item_id=item_id, is_gold=True)
    except ItemStateError as exc:
        raise ReviewError(
            f"Item {item_id} cannot become a gold check: {exc}.", code="conflict"
        ) from None
    audit_append(
        actor=actor_for_user(actor),
        action="review.gold_marked",
        object_type="item",
        object_id=item_id,
        dataset=dataset,
        payload={"expected": expected, "note": note},
    )
    return gold


@transaction.atomic
def gold_unmark(*, actor: Any, dataset: Dataset, item_id: int) -> None:
    """The item goes back to the ordinary queue; answers given while it was gold stay gold
    answers (they keep counting for the reviewers' accuracy, never toward the item)."""
    audit_lock()
    gold = GoldItem.objects.select_for_update().filter(item_id=item_id, dataset=dataset).first()
    if gold is None:
        raise ReviewError(f"Item {item_id} is not a gold check.", code="conflict")
    expected = gold.expected
    gold.delete()
    item_gold_set(item_id=item_id, is_gold=False)
    audit_append(
        actor=actor_for_user(actor),
        action="review.gold_unmarked",
        object_type="item",
        object_id=item_id,
        dataset=dataset,
        payload={"expected": expected},
    )
