"""Thin task shells: ids in, call the service. Every task is safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corpus.services import scoring

TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


@shared_task(
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    retry_kwargs={"max_retries": 5},
)
def items_score_task(item_ids: list[int]) -> None:
    scoring.items_score(item_ids=item_ids)


@shared_task
def items_sweep_pending_task() -> int:
    """Re-enqueue items stuck in ``pending`` (a lost message, a broker that was down)."""
    ids = scoring.items_pending_stale(older_than_seconds=settings.SYNTHGATE_PENDING_GRACE_SECONDS)
    scoring.items_score_enqueue(item_ids=ids)
    return len(ids)
