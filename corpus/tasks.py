"""Thin task shells: ids in, call the service. Every task is safe to run twice.

Services are imported inside the tasks: scoring pulls numpy, scikit-learn and SciPy, which an
export or audit worker (and the web process, which imports this module to enqueue) should not
carry in memory.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corpus.models import Dataset
from corpus.services.audit import SYSTEM

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, LockError)


@shared_task(
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    retry_kwargs={"max_retries": 5},
)
def items_score_task(item_ids: list[int]) -> dict[str, int]:
    from corpus.services import scoring

    outcome = scoring.items_score(item_ids=item_ids)
    return {key: len(ids) for key, ids in outcome.items()}


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 3})
def items_sweep_pending_task() -> int:
    """Re-enqueue items stuck in ``pending`` (a lost message, a broker that was down, a failure
    that has retries left); heal a near-duplicate index found missing or behind even when
    nothing is being scored; auto-reject flagged items whose reviewer let the claim lapse."""
    from corpus.services import scoring

    ids = scoring.items_pending_stale(older_than_seconds=settings.SYNTHGATE_PENDING_GRACE_SECONDS)
    scoring.items_score_enqueue(item_ids=ids)
    for dataset in Dataset.objects.order_by("pk"):
        scoring.index_check(dataset=dataset)
        scoring.items_flagged_reapply(dataset=dataset)
    return len(ids)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 3})
def detector_train_task(dataset_id: int) -> str | None:
    from corpus.services import detectors

    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return None
    try:
        model = detectors.detector_train(dataset=dataset, actor=SYSTEM)
    except detectors.DetectorTrainError as exc:
        logger.warning("detector retraining skipped: %s", exc)
        return None
    return model.version


@shared_task(acks_late=True)
def export_build_task(export_id: int) -> str | None:
    """Build one export. The service marks it failed with the reason on any error, and returns
    quietly when it is gone, done, or being built by a live worker."""
    from corpus.services.exports.build import export_build

    export = export_build(export_id=export_id)
    return export.status if export is not None else None


@shared_task
def exports_sweep_task() -> int:
    """Re-enqueue exports whose message was lost or whose worker died mid-build."""
    from corpus.services.exports.build import export_build_enqueue, exports_stale

    ids = exports_stale()
    for export_id in ids:
        export_build_enqueue(export_id=export_id)
    return len(ids)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 3})
def audit_verify_task(full: bool = False) -> dict[str, object]:
    """Verify the audit chain from the last checkpoint (or all of it) and anchor its head.
    Running it twice only re-checks what the first run checked."""
    from corpus.services.audit_verify import audit_verify_incremental

    state = audit_verify_incremental(full=full)
    return {"ok": state.ok, "verified_seq": state.verified_seq, "problem": state.problem}


@shared_task(autoretry_for=TRANSIENT, retry_backoff=1, retry_kwargs={"max_retries": 3})
def audit_anchor_task() -> int | None:
    """Anchor the audit chain head if it moved since the last anchor; returns the seq written
    (None when there was nothing new). Running it twice writes one anchor."""
    from corpus.services.anchor import anchor_head

    written = anchor_head()
    return None if written is None else written.seq


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 5}, queue="lm")
def items_lm_score_task(item_ids: list[int]) -> int:
    """Fast-DetectGPT evidence, on the "lm" queue (a worker with requirements-lm.txt takes it)."""
    from corpus.services.lm_scoring import items_lm_score

    return items_lm_score(item_ids=item_ids)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 3})
def tables_analyze_stale_task() -> list[str]:
    """Refresh the planner statistics of the tables that changed enough since their last
    ANALYZE (corpus/services/maintenance.py). Cheap when nothing changed: one catalog query."""
    from corpus.services.maintenance import tables_analyze_stale

    return tables_analyze_stale()
