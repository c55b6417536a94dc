"""Scoring orchestration: load a batch of items, compute their evidence, move them on.

The computation itself lives in ``corpus.scoring`` (pure, no Django). This module owns the state
changes: ``pending`` items become ``queued`` (or ``auto_rejected`` by a named rule); items already
past ``pending`` (reference items, rescored items) only get their evidence refreshed. Every step
is safe to run twice: the state change is a conditional UPDATE on ``state='pending'``.
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from corpus.models import Item, Score
from corpus.scoring import SCORER_VERSION
from corpus.services.audit import SYSTEM, audit_append

logger = logging.getLogger(__name__)


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def items_score_enqueue(*, item_ids: list[int]) -> None:
    """Queue scoring in batches. A broker outage must not fail the caller's (already committed)
    request: the periodic sweep re-enqueues whatever is still pending."""
    from corpus.tasks import items_score_task

    for chunk in _chunks(list(item_ids), settings.SYNTHGATE_SCORE_BATCH):
        try:
            items_score_task.delay(chunk)
        except Exception:
            logger.warning("could not enqueue scoring of %d items; the sweep will", len(chunk))


def _exact_duplicates(items: list[Item]) -> dict[int, int]:
    """item id -> id of the earliest item in its dataset with the same normalized text."""
    by_dataset: dict[int, set[str]] = {}
    for item in items:
        by_dataset.setdefault(item.dataset_id, set()).add(item.content_hash)
    first: dict[tuple[int, str], int] = {}
    for dataset_id, hashes in by_dataset.items():
        rows = (
            Item.objects.filter(dataset_id=dataset_id, content_hash__in=hashes)
            .values("content_hash")
            .annotate(first_id=Min("id"))
            .values_list("content_hash", "first_id")
        )
        for digest, first_id in rows:
            first[(dataset_id, digest)] = first_id
    duplicates = {}
    for item in items:
        first_id = first.get((item.dataset_id, item.content_hash))
        if first_id is not None and first_id < item.pk:
            duplicates[item.pk] = first_id
    return duplicates


@transaction.atomic
def items_score(*, item_ids: list[int]) -> dict[str, list[int]]:
    """Score a batch. Returns the ids per outcome (``queued``, ``rescored``)."""
    items = list(Item.objects.filter(id__in=item_ids).select_related("score").order_by("id"))
    todo = [
        item
        for item in items
        if item.state == Item.State.PENDING
        or not hasattr(item, "score")
        or item.score.scorer_version != SCORER_VERSION
    ]
    if not todo:
        return {"queued": [], "rescored": []}
    duplicates = _exact_duplicates(todo)
    now = timezone.now()
    scores = [
        Score(
            item=item,
            scorer_version=SCORER_VERSION,
            exact_duplicate_of_id=duplicates.get(item.pk),
            computed_at=now,
        )
        for item in todo
    ]
    Score.objects.bulk_create(
        scores,
        update_conflicts=True,
        unique_fields=["item"],
        update_fields=["scorer_version", "exact_duplicate_of", "computed_at"],
    )
    pending_ids = [item.pk for item in todo if item.state == Item.State.PENDING]
    queued = list(
        Item.objects.filter(id__in=pending_ids, state=Item.State.PENDING).values_list(
            "id", flat=True
        )
    )
    Item.objects.filter(id__in=queued, state=Item.State.PENDING).update(
        state=Item.State.QUEUED, updated_at=now
    )
    rescored = [item.pk for item in todo if item.pk not in set(queued)]
    by_dataset: dict[int, Item] = {}
    for item in todo:
        by_dataset.setdefault(item.dataset_id, item)
    for dataset_id, sample in by_dataset.items():
        in_dataset = {item.pk for item in todo if item.dataset_id == dataset_id}
        audit_append(
            actor=SYSTEM,
            action="items.scored",
            object_type="dataset",
            object_id=sample.dataset.slug,
            dataset=sample.dataset,
            payload={
                "scorer_version": SCORER_VERSION,
                "queued": [i for i in queued if i in in_dataset],
                "rescored": [i for i in rescored if i in in_dataset],
                "exact_duplicates": {str(k): v for k, v in duplicates.items() if k in in_dataset},
            },
        )
    return {"queued": queued, "rescored": rescored}


def items_pending_stale(*, older_than_seconds: int, limit: int = 50_000) -> list[int]:
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        Item.objects.filter(state=Item.State.PENDING, created_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
