"""Thin task shells; every task is safe to run twice."""

import logging

from celery import shared_task

from review.services import queue

logger = logging.getLogger(__name__)

BULK_JOB_RETRIES = 5


@shared_task
def claims_expire_task() -> int:
    """Periodic (beat, every minute): delete run-out leases and audit each expiry. Items are
    back in the queue as soon as their lease runs out; this only tidies and records it."""
    return queue.claims_expire()


@shared_task(bind=True, acks_late=True, max_retries=BULK_JOB_RETRIES)
def bulk_job_run_task(self, job_id: int) -> str | None:
    """Run a filter-wide bulk job to its end (review/services/bulk_jobs.py). Returns quietly when
    it is gone, finished or run by a live worker. On a transient database error the job goes
    back to the queue and this retries after 2, 4, 8 ... seconds (at most two minutes apart);
    when retries run out the job is marked failed with the reason (an admin can resume it)."""
    from review.services import bulk_jobs

    try:
        job = bulk_jobs.bulk_job_run(job_id=job_id)
    except bulk_jobs.TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            logger.warning("bulk job %s gave up after its retries: %s", job_id, exc)
            bulk_jobs.bulk_job_fail(job_id=job_id, reason=f"{type(exc).__name__}: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(120, 2 ** (self.request.retries + 1))) from exc
    return job.state if job is not None else None


@shared_task
def bulk_jobs_sweep_task() -> int:
    """Periodic (beat, every minute): re-enqueue bulk jobs whose message was lost or whose
    worker died mid-run; a run picks up after the job's last committed chunk."""
    from review.services import bulk_jobs

    ids = bulk_jobs.bulk_jobs_stale()
    for job_id in ids:
        bulk_jobs.bulk_job_enqueue(job_id=job_id)
    return len(ids)
