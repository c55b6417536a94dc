"""Filter-wide bulk jobs: an admin approves or rejects every item matching the list page's
filters (up to a whole dataset), in chunks, by a worker, with progress.

- **Request** (``bulk_job_request``): the verdict, reason and note are checked as a bulk
  decision checks them; the items matching the filters are counted, and the largest id among
  them when the admin was asked becomes the job's ceiling: no item above it is ever decided, so
  items ingested later are not swept in. No match, no job. One job is queued or running per
  dataset at a time (checked under the audit chain lock, and a partial unique index behind it):
  two would walk the same rows, each skipping the other's locked ones as "busy". The job is
  enqueued once the request commits.
- **Run** (``bulk_job_run``, task ``bulk_job_run_task``): the worker takes the job with a
  conditional UPDATE (from ``queued``, or from a ``running`` job whose chunks stopped
  ``SYNTHGATE_BULK_JOB_STALE_SECONDS`` ago: its worker died), then walks the matching items in
  id order, ``SYNTHGATE_BULK_JOB_CHUNK`` (500) at a time. Each chunk is one unit of work
  (``write_batch``: the audit chain lock first, as every decision takes it): it checks that this
  run still owns the job, reads the next ids from the filters (above ``last_id``, up to the
  ceiling), decides them through ``decisions_bulk_in``, the bulk decision's path (so
  ``_decide_many``: consensus, quotas, gold checks, the audit events and the feed are those of
  any decision, made as the admin who asked, ``via=bulk``), and moves ``last_id`` and the counts
  in the same transaction. A crash loses the chunk in flight, which rolls back whole; the next
  run starts after the last committed chunk, so no item is decided twice (were one offered
  again, the decision's own guard would skip it as already voted on). Between chunks the audit
  chain lock is free: triage, ingest and scoring wait at most one chunk.
- **Skips**: what a bulk decision leaves out (held by another reviewer, already decided, a gold
  check, over the quota, locked at that moment...) is skipped, counted by reason with the first
  few ids, never a failure. The filters are applied again to each chunk: an item someone else
  decided meanwhile no longer matches a ``queued`` filter and is not touched.
- **Stop**: a cancel (``bulk_job_cancel``) takes effect between chunks (it waits for the chunk
  in flight, under the audit chain lock); an error fails the job with the reason; a transient
  database error hands it back to the queue for the task's retry. A failed or cancelled job can
  be resumed (``bulk_job_resume``) from where it stopped, under its original ceiling.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from corpus import roles
from corpus.models import Dataset
from corpus.services.audit import SYSTEM, actor_for_user
from corpus.services.write_batch import WriteBatch, write_batch
from review import selectors
from review.models import BulkJob
from review.selectors import ListQuery
from review.services import ReviewError
from review.services.decisions import (
    MAX_BULK_ITEMS,
    BulkOutcome,
    decisions_bulk_in,
    decisions_bulk_validated,
)

logger = logging.getLogger(__name__)

# Errors worth a retry of the task (a connection lost, a deadlock, a serialization failure);
# anything else fails the job with its reason.
TRANSIENT = (OperationalError, InterfaceError)
# Skipped ids kept per reason, for the admin to look at.
SKIPPED_IDS_KEPT = 20


class BulkJobSuperseded(Exception):
    """This run no longer owns the job: it was cancelled, or taken over by another run."""


def chunk_size() -> int:
    return max(1, min(settings.SYNTHGATE_BULK_JOB_CHUNK, MAX_BULK_ITEMS))


# --- request, cancel, resume ---------------------------------------------------------------


def bulk_job_request(
    *,
    dataset: Dataset,
    requested_by: User,
    query: ListQuery,
    verdict: str,
    reason: str = "",
    note: str = "",
    ceiling: int | None = None,
) -> BulkJob:
    """Queue a job deciding every item of ``dataset`` matching ``query``'s filters with id up
    to ``ceiling`` (the largest matching id when the admin was asked; None: now). The job is
    enqueued on commit. ``ReviewError``: bad input (naming its field), nothing matches, or
    another job of the dataset is queued or running (``conflict``)."""
    if not roles.may_bulk_decide_all(requested_by, dataset):
        raise PermissionDenied("Only admins decide every item matching a filter at once.")
    _, verdict, reason, note = decisions_bulk_validated(
        dataset=dataset, verdict=verdict, reason=reason, note=note
    )
    scope = selectors.bulk_job_scope(
        dataset=dataset, user=requested_by, query=query, ceiling=ceiling
    )
    if not scope.count:
        raise ReviewError("No items match these filters: there is nothing to decide.")
    filters = query.filters()
    with write_batch() as wb:
        # Under the audit chain lock, which every request takes first: two admins asking at
        # once are serialized here, and the second sees the first's job.
        active = selectors.bulk_job_active(dataset=dataset)
        if active is not None:
            raise ReviewError(_busy_message(active), code="conflict")
        job = BulkJob.objects.create(
            dataset=dataset,
            requested_by=requested_by,
            filters=filters,
            verdict=verdict,
            reason=reason,
            note=note,
            id_ceiling=scope.last,
            # The walk starts at the first match, not at the dataset's first item.
            last_id=scope.first - 1,
            total=scope.count,
        )
        wb.audit(
            actor=actor_for_user(requested_by),
            action="review.bulk_job_requested",
            object_type="bulk_job",
            object_id=job.pk,
            dataset=dataset,
            payload={
                "filters": filters,
                "verdict": verdict,
                "reason": reason,
                "id_ceiling": scope.last,
                "total": scope.count,
            },
        )
        transaction.on_commit(lambda: bulk_job_enqueue(job_id=job.pk))
    return job


def _busy_message(active: BulkJob) -> str:
    return (
        f"Bulk job {active.pk} is {active.state} on this dataset; one job runs at a time. "
        "Wait for it to finish, or cancel it."
    )


def bulk_job_enqueue(*, job_id: int) -> None:
    """A broker outage must not fail the (committed) request: the sweep enqueues it later."""
    from review.tasks import bulk_job_run_task

    try:
        bulk_job_run_task.delay(job_id)
    except Exception:
        logger.warning("could not enqueue bulk job %s; the sweep will", job_id)


def bulk_job_cancel(*, job: BulkJob, actor: User) -> BulkJob:
    """Stop a queued or running job. The chunk in flight, if any, commits first (the cancel
    waits for the audit chain lock it holds); no chunk starts after. What was decided stays
    decided (each decision can be undone like any other)."""
    if not roles.may_bulk_decide_all(actor, job.dataset):
        raise PermissionDenied("Only admins cancel bulk jobs.")
    with write_batch() as wb:
        now = timezone.now()
        stopped = BulkJob.objects.filter(pk=job.pk, state__in=BulkJob.ACTIVE).update(
            state=BulkJob.State.CANCELLED, finished_at=now, updated_at=now
        )
        job.refresh_from_db()
        if not stopped:
            raise ReviewError(f"Bulk job {job.pk} is already {job.state}.", code="conflict")
        wb.audit(
            actor=actor_for_user(actor),
            action="review.bulk_job_cancelled",
            object_type="bulk_job",
            object_id=job.pk,
            dataset=job.dataset,
            payload=_counts(job),
        )
    return job


def bulk_job_resume(*, job: BulkJob, actor: User) -> BulkJob:
    """Queue a failed or cancelled job again; it goes on after its last committed chunk, under
    the ceiling it was asked with."""
    if not roles.may_bulk_decide_all(actor, job.dataset):
        raise PermissionDenied("Only admins resume bulk jobs.")
    with write_batch() as wb:
        active = selectors.bulk_job_active(dataset=job.dataset)
        if active is not None and active.pk != job.pk:
            raise ReviewError(_busy_message(active), code="conflict")
        now = timezone.now()
        queued = BulkJob.objects.filter(
            pk=job.pk, state__in=[BulkJob.State.FAILED, BulkJob.State.CANCELLED]
        ).update(state=BulkJob.State.QUEUED, attempt="", error="", finished_at=None, updated_at=now)
        job.refresh_from_db()
        if not queued:
            raise ReviewError(
                f"Bulk job {job.pk} is {job.state}: nothing to resume.", code="conflict"
            )
        wb.audit(
            actor=actor_for_user(actor),
            action="review.bulk_job_resumed",
            object_type="bulk_job",
            object_id=job.pk,
            dataset=job.dataset,
            payload=_counts(job),
        )
        transaction.on_commit(lambda: bulk_job_enqueue(job_id=job.pk))
    return job


def _counts(job: BulkJob, **written: Any) -> dict[str, Any]:
    """The job's counts and position for an audit event (``written``: what the transaction
    writes over them)."""
    names = ("total", "decided", "settled", "skipped", "skipped_by_reason", "last_id", "chunks")
    counts = {name: written.get(name, getattr(job, name)) for name in names}
    counts["skipped_by_reason"] = {
        why: n["count"] for why, n in sorted(counts["skipped_by_reason"].items())
    }
    return counts


# --- the run ----------------------------------------------------------------------------------


def bulk_jobs_stale() -> list[int]:
    """Jobs a sweep should (re-)enqueue: queued, or running with no chunk committed, for
    ``SYNTHGATE_BULK_JOB_STALE_SECONDS`` (a lost message, a dead worker). A message merely
    waiting behind others may be doubled; the second run then finds the job taken and stops."""
    before = timezone.now() - timedelta(seconds=settings.SYNTHGATE_BULK_JOB_STALE_SECONDS)
    return list(
        BulkJob.objects.filter(state__in=BulkJob.ACTIVE, updated_at__lt=before)
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )


def bulk_job_run(*, job_id: int) -> BulkJob | None:
    """Take the job and decide its items chunk by chunk until none is left, the job is
    cancelled or taken over, or an error stops it. None when there was nothing to do (gone,
    finished, or run by a live worker). Safe to run twice. A transient database error hands the
    job back to the queue and is raised (the task retries); any other fails the job."""
    attempt = uuid.uuid4().hex
    job = _take(job_id=job_id, attempt=attempt)
    if job is None or job.state != BulkJob.State.RUNNING:
        return job
    try:
        while _chunk(job=job, attempt=attempt):
            pass
    except BulkJobSuperseded:
        logger.info("bulk job %s: cancelled or taken over; stopping", job_id)
        return BulkJob.objects.filter(pk=job_id).first()
    except TRANSIENT:
        logger.warning("bulk job %s: transient error; handing it back", job_id, exc_info=True)
        _release(job_id=job_id, attempt=attempt)
        raise
    except Exception as exc:
        logger.exception("bulk job %s: failed", job_id)
        message = exc.message if isinstance(exc, ReviewError) else f"{type(exc).__name__}: {exc}"
        bulk_job_fail(job_id=job_id, reason=message, attempt=attempt)
    return BulkJob.objects.filter(pk=job_id).first()


def _take(*, job_id: int, attempt: str) -> BulkJob | None:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNTHGATE_BULK_JOB_STALE_SECONDS)
    with write_batch() as wb:
        taken = (
            BulkJob.objects.filter(pk=job_id)
            .filter(
                Q(state=BulkJob.State.QUEUED) | Q(state=BulkJob.State.RUNNING, updated_at__lt=stale)
            )
            .update(
                state=BulkJob.State.RUNNING,
                attempt=attempt,
                started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
                updated_at=now,
                error="",
            )
        )
        if not taken:
            return None
        job = BulkJob.objects.select_related("dataset", "requested_by").get(pk=job_id)
        if not roles.may_bulk_decide_all(job.requested_by, job.dataset):
            # The job decides as the admin who asked; one who lost the role decides nothing.
            _failed(wb, job=job, reason=f"{job.requested_by} may no longer decide in bulk.")
            job.refresh_from_db()
            return job
        wb.audit(
            actor=SYSTEM,
            action="review.bulk_job_started",
            object_type="bulk_job",
            object_id=job.pk,
            dataset=job.dataset,
            payload={"attempt": attempt, **_counts(job)},
        )
    return job


def _progress(job: BulkJob, ids: list[int], outcome: BulkOutcome) -> dict[str, Any]:
    """The job's counts and position once a chunk of ``ids`` decided as ``outcome`` commits."""
    by_reason = {why: {**n, "ids": list(n["ids"])} for why, n in job.skipped_by_reason.items()}
    for why, left in outcome.left_out.items():
        entry = by_reason.setdefault(why, {"count": 0, "ids": []})
        entry["count"] += len(left)
        entry["ids"] = (entry["ids"] + left)[:SKIPPED_IDS_KEPT]
    return {
        "last_id": ids[-1] if ids else job.last_id,
        "decided": job.decided + len(outcome.settled) + len(outcome.recorded),
        "settled": job.settled + len(outcome.settled),
        "skipped": job.skipped + outcome.left_out_count,
        "skipped_by_reason": by_reason,
        "chunks": job.chunks + (1 if ids else 0),
    }


def _chunk(*, job: BulkJob, attempt: str) -> bool:
    """Decide the next chunk of the job's items in one transaction, with the job's progress;
    the last chunk (a short one) also finishes the job. Whether there may be more."""
    size = chunk_size()
    # Read for each chunk, as any decision reads them: a policy changed meanwhile applies from
    # the next chunk on, and a reject reason removed meanwhile fails the job.
    policy, verdict, reason, note = decisions_bulk_validated(
        dataset=job.dataset, verdict=job.verdict, reason=job.reason, note=job.note
    )
    query = ListQuery.of_filters(job.filters)
    with write_batch() as wb:
        now = timezone.now()
        # Under the audit chain lock: a cancel or a takeover either committed before (and this
        # run stops, its chunk undone) or waits for this chunk to commit.
        owned = BulkJob.objects.filter(
            pk=job.pk, state=BulkJob.State.RUNNING, attempt=attempt
        ).update(updated_at=now)
        if not owned:
            raise BulkJobSuperseded()
        ids = selectors.bulk_job_chunk_ids(
            dataset=job.dataset,
            user=job.requested_by,
            query=query,
            after=job.last_id,
            ceiling=job.id_ceiling,
            limit=size,
        )
        outcome = BulkOutcome()
        if ids:
            outcome = decisions_bulk_in(
                wb,
                dataset=job.dataset,
                reviewer=job.requested_by,
                item_ids=ids,
                verdict=verdict,
                reason=reason,
                note=note,
                policy=policy,
            )
        fields = {**_progress(job, ids, outcome), "updated_at": now}
        finished = len(ids) < size
        if finished:
            fields.update(state=BulkJob.State.DONE, finished_at=now)
        BulkJob.objects.filter(pk=job.pk).update(**fields)
        if finished:
            wb.audit(
                actor=SYSTEM,
                action="review.bulk_job_finished",
                object_type="bulk_job",
                object_id=job.pk,
                dataset=job.dataset,
                payload=_counts(job, **fields),
            )
    # Committed: the run goes on from here.
    for name, value in fields.items():
        setattr(job, name, value)
    return not finished


def _release(*, job_id: int, attempt: str) -> None:
    """Hand a running job back to the queue after a transient error (its task retries). If
    the database is away this fails too; the sweep then takes the job over once it is stale."""
    try:
        BulkJob.objects.filter(pk=job_id, state=BulkJob.State.RUNNING, attempt=attempt).update(
            state=BulkJob.State.QUEUED, attempt="", updated_at=timezone.now()
        )
    except Exception:
        logger.warning("bulk job %s: could not hand it back; the sweep will", job_id)


def bulk_job_fail(*, job_id: int, reason: str, attempt: str | None = None) -> None:
    """Mark an active job failed with the reason (when ``attempt`` is given, only if that run
    still owns it), e.g. when its task ran out of retries. It can be resumed."""
    with write_batch() as wb:
        jobs = BulkJob.objects.filter(pk=job_id, state__in=BulkJob.ACTIVE)
        if attempt is not None:
            jobs = jobs.filter(attempt=attempt)
        job = jobs.select_related("dataset").first()
        if job is not None:
            _failed(wb, job=job, reason=reason)


def _failed(wb: WriteBatch, *, job: BulkJob, reason: str) -> None:
    now = timezone.now()
    reason = reason[:2000]
    BulkJob.objects.filter(pk=job.pk).update(
        state=BulkJob.State.FAILED, error=reason, finished_at=now, updated_at=now
    )
    wb.audit(
        actor=SYSTEM,
        action="review.bulk_job_failed",
        object_type="bulk_job",
        object_id=job.pk,
        dataset=job.dataset,
        payload={"reason": reason, **_counts(job)},
    )
