"""Scoring on a real Celery worker process (tests/worker.py), and the sweep of stuck items."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from corpus.models import Item, Score
from corpus.services.audit import SYSTEM
from corpus.services.audit_verify import audit_verify
from corpus.services.ingest import items_ingest, items_parse
from corpus.tasks import items_sweep_pending_task
from tests.worker import broker_messages

URL = "/api/v1/datasets/demo/items/"
SCORE_TASK = "corpus.tasks.items_score_task"


def _wait_until_scored(ids: list[int], timeout: float = 60.0) -> list[Item]:
    """Poll the database until none of ``ids`` is pending; fail with their states if not."""
    deadline = time.monotonic() + timeout
    while True:
        items = list(Item.objects.filter(pk__in=ids).order_by("pk"))
        if all(item.state != Item.State.PENDING for item in items):
            return items
        if time.monotonic() > deadline:
            states = {item.pk: item.state for item in items}
            pytest.fail(f"items still pending after {timeout:.0f} s: {states}")
        time.sleep(0.2)


def _stale_pending_item(dataset, text: str) -> int:  # type: ignore[no-untyped-def]
    """An item whose scoring message was lost: pending, created long before the grace period."""
    outcome = items_ingest(
        dataset=dataset, items=items_parse([{"text": text}]), actor=SYSTEM, default_source="t"
    )
    item_id = outcome.results[0].id
    Item.objects.filter(pk=item_id).update(created_at=timezone.now() - timedelta(hours=1))
    return item_id


@pytest.mark.integration
def test_ingested_item_reaches_queued_on_a_real_worker(
    celery_worker_process, api, produce_token, dataset
):
    # Given a live worker process on the test database and Redis
    client = api.as_token(produce_token)

    # When a producer ingests through the API (the commit really happens, on_commit really
    # enqueues)
    response = client.post(
        URL,
        {
            "items": [
                {
                    "text": "A calm paragraph about rivers and the towns built on them.",
                    "external_id": "river-1",
                    "origin": "human",
                },
                {
                    "text": "A calm paragraph about rivers and the towns built on them.",
                    "external_id": "river-2",
                    "origin": "synthetic",
                },
            ]
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    first_id, copy_id = (r["id"] for r in response.json()["results"])

    # Then the worker scores them: the first is queued for review with its evidence, the copy
    # carries the exact-duplicate signal pointing at the first
    first, copy = _wait_until_scored([first_id, copy_id])
    assert first.state == Item.State.QUEUED, celery_worker_process.log_tail()
    score = Score.objects.get(item_id=first_id)
    assert score.error == ""
    assert score.exact_duplicate_of_id is None
    assert Score.objects.get(item_id=copy_id).exact_duplicate_of_id == first_id
    assert copy.state != Item.State.PENDING
    # The worker's state changes are audited on the same chain, which stays intact.
    assert audit_verify()[1] is None


@pytest.mark.integration
def test_sweep_rescues_a_stale_pending_item_on_a_real_worker(celery_worker_process, dataset):
    # Given an item whose scoring message was lost (no on_commit ran for it here)
    item_id = _stale_pending_item(dataset, "An item whose message went missing.")

    # When the periodic sweep runs
    assert items_sweep_pending_task() == 1

    # Then the worker scores it
    [item] = _wait_until_scored([item_id])
    assert item.state == Item.State.QUEUED, celery_worker_process.log_tail()
    assert Score.objects.filter(item_id=item_id).exists()


def test_sweep_reenqueues_only_stale_pending_items(dataset, django_capture_on_commit_callbacks):
    # Given a stale pending item, a fresh pending one (its own message may still be on the
    # way) and a stale item already past pending
    stale = _stale_pending_item(dataset, "Stuck for an hour.")
    fresh = (
        items_ingest(
            dataset=dataset,
            items=items_parse([{"text": "Just arrived."}]),
            actor=SYSTEM,
            default_source="t",
        )
        .results[0]
        .id
    )
    done = _stale_pending_item(dataset, "Scored long ago.")
    Item.objects.filter(pk=done).update(state=Item.State.QUEUED)

    # When the sweep task runs (called directly, as beat would)
    swept = items_sweep_pending_task()

    # Then exactly the stale pending item is queued for scoring on the broker
    assert swept == 1
    assert broker_messages() == [{"task": SCORE_TASK, "args": [[stale]], "kwargs": {}}]
    assert Item.objects.get(pk=fresh).state == Item.State.PENDING


def test_sweep_with_nothing_stale_enqueues_nothing(dataset):
    items_ingest(
        dataset=dataset, items=items_parse([{"text": "fresh"}]), actor=SYSTEM, default_source="t"
    )

    assert items_sweep_pending_task() == 0
    assert broker_messages() == []
