"""State changes on items that come from outside the corpus (review decisions, undo).

``review`` decides; these functions write the outcome onto the item so that exports and the feed
read corpus tables only. Each is a conditional UPDATE on the state the action expects, so two
processes racing on one item cannot both win.
"""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from corpus.models import Item

DECIDED = (Item.State.APPROVED, Item.State.REJECTED)


class ItemStateError(ValueError):
    """The item is not in a state that allows the change; the message says why."""


@transaction.atomic
def item_outcome_set(
    *, item_id: int, state: str, reviewer_ids: Sequence[int], reason: str = ""
) -> Item:
    """Move a ``queued`` item to ``approved`` or ``rejected`` by these reviewers.

    ``reason`` is the reject reason key (kept in ``Item.state_reason``: the detector retrains on
    items rejected as ``machine_written``). The caller (a review service) appends the audit event
    for the decision in the same transaction.
    """
    if state not in DECIDED:
        raise ItemStateError(f"'{state}' is not a review outcome")
    now = timezone.now()
    updated = Item.objects.filter(pk=item_id, state=Item.State.QUEUED).update(
        state=state,
        state_reason=reason if state == Item.State.REJECTED else "",
        decided_at=now,
        decided_by=sorted(set(reviewer_ids)),
        updated_at=now,
    )
    if not updated:
        current = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
        raise ItemStateError(f"item {item_id} is {current or 'gone'}, not queued")
    return Item.objects.get(pk=item_id)


@transaction.atomic
def item_outcome_reopen(*, item_id: int) -> Item:
    """Return a decided item to ``queued`` (an undo)."""
    now = timezone.now()
    updated = Item.objects.filter(pk=item_id, state__in=DECIDED).update(
        state=Item.State.QUEUED, state_reason="", decided_at=None, decided_by=[], updated_at=now
    )
    if not updated:
        current = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
        raise ItemStateError(f"item {item_id} is {current or 'gone'}, not decided")
    return Item.objects.get(pk=item_id)
