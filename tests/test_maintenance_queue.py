"""Periodic upkeep on its own Celery queue, so that a scoring backlog cannot starve it."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app
from corpus.models import Item
from corpus.services import ingest
from corpus.services.audit import SYSTEM
from corpus.services.ingest import items_ingest, items_parse
from review.models import Claim
from tests.pipeline.test_scoring_pipeline import _varied

SCORE_TASK = "corpus.tasks.items_score_task"
BATCHES = 20
BATCH = 100


def _queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_every_periodic_task_goes_to_the_maintenance_queue_and_scoring_does_not():
    periodic = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "corpus.tasks.tables_analyze_stale_task" in periodic
    assert {task: _queue_of(task) for task in periodic} == dict.fromkeys(periodic, "maintenance")
    assert _queue_of(SCORE_TASK) == "celery"
    assert _queue_of("corpus.tasks.export_build_task") == "celery"
    # a worker started without --queues (as `make run` and the tests start it) consumes both
    assert set(app.amqp.queues.consume_from) == {"celery", "maintenance"}


@pytest.mark.integration
def test_upkeep_runs_while_a_scoring_backlog_waits(
    celery_worker_process, dataset, reviewer, monkeypatch
):
    # given 2,000 items whose scoring waits in the broker as 20 batches, and a lease that ran out
    # an hour ago, sent to the worker after the whole backlog
    monkeypatch.setattr(ingest, "_score_enqueue", lambda item_ids: None)
    ids: list[int] = []
    for n in range(BATCHES):
        outcome = items_ingest(
            dataset=dataset,
            items=items_parse([{"text": _varied(n * BATCH + i)} for i in range(BATCH)]),
            actor=SYSTEM,
            default_source="backlog",
        )
        ids += [result.id for result in outcome.results]
    now = timezone.now()
    Claim.objects.create(
        item_id=ids[0],
        dataset=dataset,
        reviewer=reviewer,
        claimed_at=now - timedelta(hours=2),
        expires_at=now - timedelta(hours=1),
    )
    for start in range(0, len(ids), BATCH):
        app.send_task(SCORE_TASK, args=[ids[start : start + BATCH]])
    app.send_task("review.tasks.claims_expire_task")  # as beat sends it, routes applied
    # when the worker (one process, one task at a time) works through them
    deadline = time.monotonic() + 120
    while Claim.objects.filter(item_id=ids[0]).exists():
        assert time.monotonic() < deadline, celery_worker_process.log_tail()
        time.sleep(0.02)
    pending = Item.objects.filter(pk__in=ids, state=Item.State.PENDING).count()
    # then the lease was tidied while most of the backlog still waited: on one queue it came
    # after all 20 batches
    assert pending >= len(ids) // 2, f"only {pending} of {len(ids)} items left pending"
    while Item.objects.filter(pk__in=ids, state=Item.State.PENDING).exists():
        assert time.monotonic() < deadline, celery_worker_process.log_tail()
        time.sleep(0.1)
