"""Thin task shells: ids in, call the service. Every task is safe to run twice."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corpus.models import Dataset
from corpus.services import detectors, scoring
from corpus.services.audit import SYSTEM

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


@shared_task(
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    retry_kwargs={"max_retries": 5},
)
def items_score_task(item_ids: list[int]) -> dict[str, int]:
    outcome = scoring.items_score(item_ids=item_ids)
    return {key: len(ids) for key, ids in outcome.items()}


@shared_task
def items_sweep_pending_task() -> int:
    """Re-enqueue items stuck in ``pending`` (a lost message, a broker that was down, a failure
    that has retries left)."""
    ids = scoring.items_pending_stale(older_than_seconds=settings.SYNTHGATE_PENDING_GRACE_SECONDS)
    scoring.items_score_enqueue(item_ids=ids)
    return len(ids)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 3})
def detector_train_task(dataset_id: int) -> str | None:
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return None
    try:
        model = detectors.detector_train(dataset=dataset, actor=SYSTEM)
    except detectors.DetectorTrainError as exc:
        logger.warning("detector retraining skipped: %s", exc)
        return None
    return model.version
