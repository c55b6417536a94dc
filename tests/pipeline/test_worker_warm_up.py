"""A worker that consumes the scoring queue loads the scoring stack before its first task
(config/celery.py), so the first batch after a start is not slower than the others."""

from types import SimpleNamespace
from unittest import mock

from celery import signals

from config.celery import app
from corpus.services import detectors, scoring


class _Worker:
    """What the handler reads of a starting worker: its app's router and the queues it consumes.
    (A class, not a SimpleNamespace: signal senders must be hashable.)"""

    def __init__(self, queues: list[str]) -> None:
        amqp = SimpleNamespace(
            router=app.amqp.router, queues=SimpleNamespace(consume_from=dict.fromkeys(queues))
        )
        self.app = SimpleNamespace(amqp=amqp)


def test_a_worker_consuming_the_scoring_queue_warms_up_when_it_starts():
    # given a worker consuming the queue scoring tasks are sent to
    worker = _Worker([app.conf.task_default_queue, "lm"])
    # when it starts
    with mock.patch.object(scoring, "scoring_warm_up") as warm_up:
        signals.worker_init.send(sender=worker)
    # then the scoring stack is loaded once, before any task
    warm_up.assert_called_once_with()


def test_a_worker_of_other_queues_does_not_load_the_scoring_stack():
    # given a worker for the LM detector's queue only
    worker = _Worker(["lm"])
    # when it starts
    with mock.patch.object(scoring, "scoring_warm_up") as warm_up:
        signals.worker_init.send(sender=worker)
    # then it keeps its memory
    warm_up.assert_not_called()


def test_warm_up_loads_the_default_detector_without_database_or_redis(monkeypatch):
    # given a process that has not loaded a detector yet
    monkeypatch.setattr(detectors, "_cache", {})
    # when it warms up (no database marker: a query would fail this test)
    scoring.scoring_warm_up()
    # then the default detector is in the process cache, ready for the first batch
    assert detectors.detector_default() is next(iter(detectors._cache.values()))
    assert len(detectors._cache) == 1
