"""Export requests, previews and builds.

A build runs in three steps, each safe to repeat:

1. Snapshot (one transaction, under the audit chain lock): claim the export (conditional UPDATE
   from ``queued``, or from a ``building`` whose worker went silent), fix the feed position and
   the audit chain head it reflects, apply the policy and write one ``ExportItem`` per candidate.
   Holding the lock means no approval, undo or retraction commits in between, and once this
   commits an undo of an included item is refused (``item_outcome_reopen``).
2. Write (no transaction): stream the included rows in id order into a temporary file as JSON
   lines (PostgreSQL renders them and streams them with COPY, in parallel parts; elsewhere
   they are read in keyset batches and encoded here), hashing the bytes (sha256) and the rows
   (Merkle root) on the way and reporting progress; Parquet is parsed from the same lines into
   row groups. Memory stays at a few blocks whatever the export's size.
3. Finish (one transaction): move the file into the export storage, then mark the export
   ``ready`` with its manifest, conditional on still owning it, and audit ``export.built``
   with the file's sha256 and Merkle root (``verify_export`` checks both against this event).

Any failure marks the export ``failed`` with the reason. A ready export never changes (the
model refuses).
"""

from __future__ import annotations

import abc
import binascii
import contextlib
import hashlib
import io
import itertools
import logging
import math
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self

import orjson
from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from corpus.models import (
    Dataset,
    Export,
    ExportItem,
    ExportPolicy,
    Item,
    Retraction,
    Score,
)
from corpus.scoring import NORMALIZATION_VERSION, SCORER_VERSION
from corpus.scoring import lexical as lexical_stats
from corpus.services.audit import SYSTEM, audit_append, audit_lock
from corpus.services.exports import rows, selection
from corpus.services.exports.merkle import ALGORITHM, MerkleBuilder
from corpus.services.feed import feed_head
from corpus.services.policy import PolicySpec, policy_current

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1


class ExportRequestError(ValueError):
    """Bad input for an export request: ``errors`` are ``{"field", "message"}`` dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


class ExportSuperseded(Exception):
    """Another attempt took the export over (this worker was presumed dead)."""


def export_storage() -> Storage:
    return storages.create_storage(settings.SYNTHGATE_EXPORT_STORAGE)


# --- Requests and previews ------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What an export or preview covers: its mode and, for a delta, the export it follows."""

    mode: str
    since: Export | None
    policy: ExportPolicy | None
    spec: PolicySpec


def _scope(*, dataset: Dataset, mode: str | None, since_id: int | None) -> Scope:
    current = policy_current(dataset=dataset)
    mode = mode or current.spec.mode
    errors = []
    if mode not in Export.Mode.values:
        errors.append({"field": "mode", "message": f"must be one of {Export.Mode.values}"})
    since = None
    if since_id is not None:
        if mode != Export.Mode.DELTA:
            errors.append({"field": "since", "message": "only a delta export follows another"})
        since = Export.objects.filter(
            pk=since_id, dataset=dataset, status=Export.Status.READY
        ).first()
        if since is None:
            errors.append(
                {"field": "since", "message": f"no ready export {since_id} in '{dataset.slug}'"}
            )
    elif mode == Export.Mode.DELTA:
        # By default a delta follows the newest ready export (everything, if there is none).
        since = (
            Export.objects.filter(dataset=dataset, status=Export.Status.READY)
            .order_by("-snapshot_seq", "-id")
            .first()
        )
    if errors:
        raise ExportRequestError(errors)
    return Scope(mode=mode, since=since, policy=current.row, spec=current.spec)


@transaction.atomic
def export_request(
    *,
    dataset: Dataset,
    actor: str,
    format: str = Export.Format.JSONL,
    mode: str | None = None,
    since_id: int | None = None,
) -> Export:
    """Create a queued export under the dataset's current policy; the build starts on commit."""
    errors = []
    if format not in Export.Format.values:
        errors.append({"field": "format", "message": f"must be one of {Export.Format.values}"})
    try:
        scope = _scope(dataset=dataset, mode=mode, since_id=since_id)
    except ExportRequestError as exc:
        errors.extend(exc.errors)
    if errors:
        raise ExportRequestError(errors)
    export = Export.objects.create(
        dataset=dataset,
        format=format,
        mode=scope.mode,
        since=scope.since,
        policy=scope.policy,
        requested_by=actor,
    )
    audit_append(
        actor=actor,
        action="export.requested",
        object_type="export",
        object_id=export.pk,
        dataset=dataset,
        payload={
            "format": format,
            "mode": scope.mode,
            "since": scope.since.pk if scope.since else None,
            "policy_version": scope.policy.version if scope.policy else 0,
        },
    )
    transaction.on_commit(lambda: export_build_enqueue(export_id=export.pk))
    return export


def export_build_enqueue(*, export_id: int) -> None:
    """A broker outage must not fail the (committed) request: the sweep enqueues it later."""
    from corpus.tasks import export_build_task

    try:
        export_build_task.delay(export_id)
    except Exception:
        logger.warning("could not enqueue the build of export %s; the sweep will", export_id)


def export_preview(
    *, dataset: Dataset, mode: str | None = None, since_id: int | None = None
) -> dict[str, Any]:
    """What an export would hold now under the current policy. Reads only."""
    scope = _scope(dataset=dataset, mode=mode, since_id=since_id)
    plan = selection.plan_compute(
        dataset=dataset,
        spec=scope.spec,
        since=selection.Since.of(scope.since),
        thresholds=False,
    )
    blocked = plan.blocked() if scope.spec.on_violation == "block" else []
    kept = plan.kept
    return {
        "dataset": dataset.slug,
        "mode": scope.mode,
        "since": scope.since.pk if scope.since else None,
        "policy_version": scope.policy.version if scope.policy else 0,
        "on_violation": scope.spec.on_violation,
        "available": {"total": plan.available_total, **selection.by_dimension(plan.available)},
        "kept": {"total": 0 if blocked else plan.kept_total, **selection.by_dimension(kept)},
        "left_out": plan.left_out(),
        "blocked": blocked,
        "would_fail": bool(blocked),
    }


# --- Building -------------------------------------------------------------------------------


def exports_stale() -> list[int]:
    """Exports a sweep should (re-)enqueue: queued, or building with no progress, for
    ``SYNTHGATE_EXPORT_STALE_SECONDS`` (a lost message, a dead worker). A message merely
    waiting behind others is not doubled every sweep; if it is, the second run does nothing."""
    before = timezone.now() - timedelta(seconds=settings.SYNTHGATE_EXPORT_STALE_SECONDS)
    return list(
        Export.objects.filter(
            Q(status=Export.Status.QUEUED, created_at__lt=before)
            | Q(status=Export.Status.BUILDING, updated_at__lt=before)
        ).values_list("id", flat=True)[:100]
    )


def export_build(*, export_id: int) -> Export | None:
    """Build a queued export (or take over a stale build). Returns None when there was nothing
    to do: gone, already done, or being built by a live worker. Safe to run twice."""
    attempt = uuid.uuid4().hex
    clock = time.monotonic()
    try:
        snap = _snapshot(export_id=export_id, attempt=attempt)
    except Exception as exc:
        logger.exception("export %s: snapshot failed", export_id)
        _fail(export_id=export_id, attempt=attempt, reason=f"snapshot failed: {exc}")
        return Export.objects.filter(pk=export_id).first()
    if snap is None:
        return None
    export, plan = snap.export, snap.plan
    if export.status == Export.Status.FAILED:
        return export
    snapshot_seconds = 0.0
    tmp_path = None
    stored = None
    try:
        _analyze_rows()
        snapshot_seconds = time.monotonic() - clock
        tmp_path, written = _write(export=export, attempt=attempt)
        write_seconds = time.monotonic() - clock - snapshot_seconds
        manifest = _manifest(export=export, plan=plan, written=written, snap=snap)
        name = f"{export.dataset.slug}/{export.pk}/{export.download_name}"
        storage = export_storage()
        with open(tmp_path, "rb") as fh:
            stored = storage.save(name, _TempFile(fh, tmp_path))
        manifest["file"]["name"] = os.path.basename(stored)
        _finish(export=export, attempt=attempt, written=written, stored=stored, manifest=manifest)
        stored = None
        logger.info(
            "export %s: %d rows, %d bytes; snapshot %.1f s, write %.1f s, manifest and store "
            "%.1f s",
            export_id,
            written.rows,
            written.size,
            snapshot_seconds,
            write_seconds,
            time.monotonic() - clock - snapshot_seconds - write_seconds,
        )
    except ExportSuperseded:
        logger.warning("export %s: taken over by another attempt; stopping", export_id)
        return None
    except Exception as exc:
        logger.exception("export %s: build failed", export_id)
        _fail(export_id=export_id, attempt=attempt, reason=f"{type(exc).__name__}: {exc}")
    finally:
        if tmp_path and os.path.exists(tmp_path):
            os.unlink(tmp_path)
        if stored:
            export_storage().delete(stored)
    return Export.objects.get(pk=export_id)


def _analyze_rows() -> None:
    """Refresh PostgreSQL's statistics of the export rows just written (up to millions): with
    stale ones the planner guesses a handful of rows and picks plans that are quadratic over
    the batches of a large export."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {ExportItem._meta.db_table}")


class _TempFile(File):
    """A finished temporary file: FileSystemStorage moves it into place instead of copying."""

    def __init__(self, file: Any, path: str) -> None:
        super().__init__(file, name=os.path.basename(path))
        self._path = path

    def temporary_file_path(self) -> str:
        return self._path


@dataclass
class Snapshot:
    export: Export
    plan: selection.Plan
    audit_head: dict[str, Any]  # the chain head the snapshot reflects: {"seq", "hash"}
    max_item_id: int = 0  # the largest item id then (a later delta starts above it)


@transaction.atomic
def _snapshot(*, export_id: int, attempt: str) -> Snapshot | None:
    head = audit_lock()
    audit_head = {"seq": head.seq, "hash": head.hash}
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNTHGATE_EXPORT_STALE_SECONDS)
    claimed = (
        Export.objects.filter(pk=export_id)
        .filter(
            Q(status=Export.Status.QUEUED) | Q(status=Export.Status.BUILDING, updated_at__lt=stale)
        )
        .update(
            status=Export.Status.BUILDING,
            attempt=attempt,
            started_at=now,
            updated_at=now,
            rows_written=0,
            error="",
        )
    )
    if not claimed:
        return None
    export = Export.objects.select_related("dataset", "since", "policy").get(pk=export_id)
    # A taken-over build: its predecessor's rows are redone from this snapshot.
    ExportItem.objects.filter(export=export).delete()
    spec = PolicySpec.model_validate(export.policy.spec) if export.policy else PolicySpec()
    since = selection.Since.of(export.since)
    snapshot_seq = feed_head()
    max_item_id = Item.objects.aggregate(last=Max("id"))["last"] or 0
    plan = selection.plan_compute(dataset=export.dataset, spec=spec, since=since, thresholds=True)
    blocked = plan.blocked() if spec.on_violation == "block" else []
    if blocked:
        reason = "blocked by the export policy: " + "; ".join(blocked)
        Export.objects.filter(pk=export_id, attempt=attempt).update(
            status=Export.Status.FAILED, error=reason, finished_at=now, updated_at=now
        )
        audit_append(
            actor=SYSTEM,
            action="export.failed",
            object_type="export",
            object_id=export_id,
            dataset=export.dataset,
            payload={"reason": reason},
        )
        export.refresh_from_db()
        return Snapshot(export=export, plan=plan, audit_head=audit_head, max_item_id=max_item_id)
    included = selection.export_items_write(
        export_id=export.pk, dataset=export.dataset, since=since, plan=plan
    )
    if included != plan.kept_total:
        raise RuntimeError(f"selected {included} rows, the plan said {plan.kept_total}")
    Export.objects.filter(pk=export_id, attempt=attempt).update(
        snapshot_seq=snapshot_seq, rows_total=included, updated_at=timezone.now()
    )
    audit_append(
        actor=SYSTEM,
        action="export.started",
        object_type="export",
        object_id=export_id,
        dataset=export.dataset,
        payload={
            "snapshot_seq": snapshot_seq,
            "audit_head": audit_head,
            "max_item_id": max_item_id,
            "rows": included,
        },
    )
    export.refresh_from_db()
    return Snapshot(export=export, plan=plan, audit_head=audit_head, max_item_id=max_item_id)


@dataclass
class Written:
    rows: int
    size: int
    sha256: str
    merkle_root: str
    sample: list[str]


def _progress(*, export: Export, attempt: str, rows: int) -> None:
    updated = Export.objects.filter(
        pk=export.pk, attempt=attempt, status=Export.Status.BUILDING
    ).update(rows_written=rows, updated_at=timezone.now())
    if not updated:
        raise ExportSuperseded()


_CONTENT_HASH = re.compile(rb'"content_hash"\s*:\s*"([0-9a-f]{64})"')


class _Collector:
    """What the manifest needs from the lines as written: the Merkle leaves (each line's
    content_hash, found near its start: it is the second field) and an even sample of texts."""

    def __init__(self, total: int) -> None:
        self.stride = max(1, math.ceil(total / settings.SYNTHGATE_EXPORT_DIVERSITY_SAMPLE))
        self.merkle = MerkleBuilder()
        self.sample: list[str] = []
        self.rows = 0

    def add(self, lines: list[bytes]) -> None:
        search = _CONTENT_HASH.search
        add_leaf = self.merkle.add_digest
        for line in lines:
            found = search(line, 0, 200)
            if found is None:
                raise RuntimeError(f"row {self.rows + 1} has no content_hash")
            add_leaf(binascii.unhexlify(found.group(1)))
        first = -self.rows % self.stride  # the first index in this block on the stride
        self.sample.extend(orjson.loads(line)["text"] for line in lines[first :: self.stride])
        self.rows += len(lines)


def _write(*, export: Export, attempt: str) -> tuple[str, Written]:
    """Stream the rows into a temporary file in the staging folder."""
    tmp_dir = settings.SYNTHGATE_EXPORT_TMP_DIR
    os.makedirs(tmp_dir, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=tmp_dir, prefix=f"export-{export.pk}-", suffix=".part")
    try:
        return tmp_path, _write_to(export=export, attempt=attempt, fd=fd, tmp_path=tmp_path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


@contextmanager
def _line_blocks(export: Export) -> Iterator[tuple[Iterator[list[bytes]], bool]]:
    """The export's JSON lines in blocks, and whether progress may be written meanwhile.

    On PostgreSQL the rows come from COPY. Outside a transaction it runs on connections of its
    own, so progress updates can go through the usual one while it streams; inside one (a test
    case) it must share this connection, which is busy until the COPY ends.
    """
    batch = settings.SYNTHGATE_EXPORT_BATCH
    if connection.vendor != "postgresql":
        yield rows.python_line_blocks(export_id=export.pk, batch_size=batch), True
        return
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            yield (
                rows.postgres_line_blocks(
                    cursor=cursor.cursor, export_id=export.pk, block_rows=batch
                ),
                False,
            )
        return
    with contextlib.ExitStack() as stack:
        bounds = _stream_bounds(export)
        # Rendering rows as JSON is the database's share of the work, and the larger one. Each
        # part is copied by a thread of its own, on its own connection (so its own server
        # process): the first hands its blocks straight over (two at most in memory), the
        # later ones spool to files meanwhile. This thread only hashes and writes.
        first = stack.enter_context(_Streamer(export, *bounds[0]))
        spools = [stack.enter_context(_Spool(export, lo, hi)) for lo, hi in bounds[1:]]

        def blocks() -> Iterator[list[bytes]]:
            yield from first.blocks()
            for spool in spools:
                yield from spool.blocks(batch)

        yield blocks(), True


def _stream_bounds(export: Export) -> list[tuple[int | None, int | None]]:
    """Item id ranges [lo, hi) splitting the export's rows into ``SYNTHGATE_EXPORT_STREAMS``
    parts of equal size (one part for small exports)."""
    total = export.rows_total or 0
    streams = settings.SYNTHGATE_EXPORT_STREAMS
    if streams < 2 or total < settings.SYNTHGATE_EXPORT_STREAM_MIN_ROWS:
        return [(None, None)]
    ids = (
        ExportItem.objects.filter(export=export, included=True)
        .order_by("item_id")
        .values_list("item_id", flat=True)
    )
    cuts = [ids[total * part // streams] for part in range(1, streams)]
    edges: list[int | None] = [None, *cuts, None]
    return list(itertools.pairwise(edges))


class _CopyThread(abc.ABC):
    """A part of the export copied by a thread of its own, on a connection of its own (so its
    own server process). ``with`` starts it; leaving stops it and waits for it."""

    kind = "copy"

    def __init__(self, export: Export) -> None:
        self.export_id = export.pk
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"export-{export.pk}-{self.kind}", daemon=True
        )

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        own = None
        try:
            own = connections.create_connection(DEFAULT_DB_ALIAS)
            with own.cursor() as cursor:
                self._copy(cursor.cursor)
        except ExportSuperseded:
            pass
        except BaseException as exc:  # raised in the building thread by blocks()
            self._fail(exc)
        finally:
            if own is not None:
                own.close()

    @abc.abstractmethod
    def _copy(self, cursor: Any) -> None:
        """Copy this part's rows, checking ``self.stop`` between blocks."""

    @abc.abstractmethod
    def _fail(self, exc: BaseException) -> None:
        """Hand ``exc`` to the building thread."""


class _Streamer(_CopyThread):
    """One part of the export handed over block by block (two blocks at most in memory)."""

    kind = "stream"

    def __init__(self, export: Export, lo: int | None, hi: int | None) -> None:
        super().__init__(export)
        self.lo, self.hi = lo, hi
        self.handoff: queue.Queue[Any] = queue.Queue(maxsize=1)

    def _put(self, value: Any) -> None:
        while not self.stop.is_set():
            try:
                self.handoff.put(value, timeout=0.2)
                return
            except queue.Full:
                continue
        raise ExportSuperseded("the build stopped")

    def _copy(self, cursor: Any) -> None:
        for block in rows.postgres_line_blocks(
            cursor=cursor,
            export_id=self.export_id,
            block_rows=settings.SYNTHGATE_EXPORT_BATCH,
            lo=self.lo,
            hi=self.hi,
        ):
            self._put(block)
        self._put(None)

    def _fail(self, exc: BaseException) -> None:
        with contextlib.suppress(ExportSuperseded):
            self._put(exc)

    def blocks(self) -> Iterator[list[bytes]]:
        while (value := self.handoff.get()) is not None:
            if isinstance(value, BaseException):
                raise value
            yield value


class _Spool(_CopyThread):
    """One part of the export copied into a temporary file meanwhile."""

    kind = "spool"

    def __init__(self, export: Export, lo: int | None, hi: int | None) -> None:
        super().__init__(export)
        self.sql = rows.postgres_copy_sql(export.pk, lo, hi)
        fd, self.path = tempfile.mkstemp(
            dir=settings.SYNTHGATE_EXPORT_TMP_DIR, prefix=f"export-{export.pk}-", suffix=".spool"
        )
        os.close(fd)
        self.error: BaseException | None = None

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _copy(self, cursor: Any) -> None:
        with open(self.path, "wb") as out, cursor.copy(self.sql) as copy:
            for data in copy:
                if self.stop.is_set():
                    raise ExportSuperseded("the build stopped")
                out.write(data)

    def _fail(self, exc: BaseException) -> None:
        self.error = exc

    def blocks(self, block_rows: int) -> Iterator[list[bytes]]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        with open(self.path, "rb") as spooled:
            block: list[bytes] = []
            for line in spooled:
                block.append(line)
                if len(block) >= block_rows:
                    yield block
                    block = []
            if block:
                yield block


def _write_to(*, export: Export, attempt: str, fd: int, tmp_path: str) -> Written:
    total = export.rows_total or 0
    seen = _Collector(total)
    sha = hashlib.sha256()
    last_progress = time.monotonic()

    def tick(may_write: bool) -> None:
        nonlocal last_progress
        if may_write and time.monotonic() - last_progress >= 1.0:
            _progress(export=export, attempt=attempt, rows=seen.rows)
            last_progress = time.monotonic()

    with _line_blocks(export) as (blocks, may_write):
        if export.format == Export.Format.PARQUET:
            os.close(fd)
            _write_parquet(tmp_path, blocks, seen, lambda: tick(may_write))
            with open(tmp_path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
        else:
            with os.fdopen(fd, "wb") as out:
                for block in blocks:
                    seen.add(block)
                    data = b"".join(block)
                    out.write(data)
                    sha.update(data)
                    tick(may_write)
    if seen.rows != total:
        raise RuntimeError(f"wrote {seen.rows} rows, the snapshot holds {total}")
    _progress(export=export, attempt=attempt, rows=seen.rows)
    return Written(
        rows=seen.rows,
        size=os.path.getsize(tmp_path),
        sha256=sha.hexdigest(),
        merkle_root=seen.merkle.root(),
        sample=seen.sample,
    )


def _write_parquet(path: str, blocks: Iterator[list[bytes]], seen: _Collector, tick: Any) -> None:
    """Parquet from the same JSON lines: pyarrow parses them (in C++, against the export
    schema, refusing any other field) into one row group per
    ``SYNTHGATE_EXPORT_PARQUET_GROUP_ROWS`` rows; memory stays at one row group."""
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    schema = rows.parquet_schema()
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    group: list[bytes] = []

    def flush(writer: Any) -> None:
        data = b"".join(group)
        group.clear()
        # One thread: the database's copy threads are busy on the other cores.
        # Parsed in blocks of 1 MiB: one block of the whole group cost 10 MB more at the peak.
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 20),
            parse_options=parse,
        )
        writer.write_table(table.select(list(rows.COLUMNS)))

    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for block in blocks:
            seen.add(block)
            group.extend(block)
            if len(group) >= settings.SYNTHGATE_EXPORT_PARQUET_GROUP_ROWS:
                flush(writer)
            tick()
        if group:
            flush(writer)


def _versions(export: Export) -> dict[str, dict[str, int]]:
    """Scorer and detector versions of the exported rows (one GROUP BY over a semi-join)."""
    exported = ExportItem.objects.filter(export=export, included=True).values("item_id")
    groups = (
        Score.objects.filter(item_id__in=exported)
        .order_by()
        .values_list("scorer_version", "detector_name", "detector_version")
        .annotate(n=Count("*"))
    )
    scorers: Counter[str] = Counter()
    detectors: Counter[str] = Counter()
    for scorer, detector, version, n in groups:
        scorers[scorer] += n
        if detector:
            detectors[f"{detector} {version}"] += n
    unscored = (export.rows_total or 0) - sum(scorers.values())
    if unscored:
        scorers["(unscored)"] = unscored
    return {"scorer": dict(sorted(scorers.items())), "detectors": dict(sorted(detectors.items()))}


def _diversity(written: Written, export: Export) -> dict[str, Any]:
    """Corpus-level lexical diversity of an even sample of the exported rows (every k-th row),
    and the near-duplicate clusters among the exported rows."""
    out: dict[str, Any] = {"sample_rows": len(written.sample)}
    if written.sample:
        stats = lexical_stats.lexical_stats("\n".join(written.sample))
        out.update(
            compression_ratio=round(stats.compression_ratio, 4),
            distinct_1=round(stats.distinct_1, 4),
            distinct_2=round(stats.distinct_2, 4),
            distinct_3=round(stats.distinct_3, 4),
        )
    exported = ExportItem.objects.filter(export=export, included=True)
    links = Score.objects.filter(
        item_id__in=exported.values("item_id"),
        near_duplicate_of_id__in=exported.values("item_id"),
    ).values_list("item_id", "near_duplicate_of_id")
    out["near_duplicates"] = selection.cluster_summary(links.iterator())
    return out


def _retractions_since(export: Export) -> dict[str, Any]:
    previous = (
        Export.objects.filter(
            dataset=export.dataset,
            status=Export.Status.READY,
            snapshot_seq__lt=export.snapshot_seq,
        )
        .order_by("-snapshot_seq", "-id")
        .first()
    )
    retractions = Retraction.objects.filter(
        dataset=export.dataset,
        feed_seq__gt=previous.snapshot_seq if previous else 0,
        feed_seq__lte=export.snapshot_seq,
    ).order_by("feed_seq")
    limit = settings.SYNTHGATE_EXPORT_MANIFEST_IDS
    listed = list(retractions.values("item_id", "reason", "actor", "created_at")[:limit])
    return {
        "previous_export": previous.pk if previous else None,
        "count": retractions.count(),
        "items": [
            {
                "item_id": r["item_id"],
                "reason": r["reason"],
                "by": r["actor"],
                "at": r["created_at"].isoformat(),
            }
            for r in listed
        ],
    }


def _manifest(
    *, export: Export, plan: selection.Plan, written: Written, snap: Snapshot
) -> dict[str, Any]:
    counts = selection.by_dimension(plan.kept)
    # A dataset may mix prose, chat transcripts and code: say how many of each left.
    counts["kind"] = dict(
        Item.objects.filter(export_rows__export_id=export.pk, export_rows__included=True)
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by("kind")
    )
    rows = written.rows
    origin = counts["origin"]
    left_out = plan.left_out()
    left_out["items"] = selection.left_out_sample(
        export_id=export.pk, per_reason=settings.SYNTHGATE_EXPORT_MANIFEST_IDS
    )
    return {
        "manifest_version": MANIFEST_VERSION,
        "export_id": export.pk,
        "dataset": export.dataset.slug,
        "format": export.format,
        "mode": export.mode,
        "since_export": export.since_id,
        "requested_by": export.requested_by,
        "created_at": export.created_at.isoformat(),
        "built_at": timezone.now().isoformat(),
        "policy": {
            "version": export.policy.version if export.policy else 0,
            "spec": plan.spec.as_json(),
        },
        "snapshot": {
            "feed_seq": export.snapshot_seq,
            "max_item_id": snap.max_item_id,
            "audit_head": snap.audit_head,
        },
        "versions": {
            "normalization": NORMALIZATION_VERSION,
            "scorer_current": SCORER_VERSION,
            **_versions(export),
        },
        "rows": rows,
        "counts": counts,
        "available": {"total": plan.available_total, **selection.by_dimension(plan.available)},
        "synthetic_share": round(origin.get("synthetic", 0) / rows, 6) if rows else 0.0,
        "unknown_share": round(origin.get("unknown", 0) / rows, 6) if rows else 0.0,
        "human_share": round(origin.get("human", 0) / rows, 6) if rows else 0.0,
        "left_out": left_out,
        "diversity": _diversity(written, export),
        "file": {
            "name": "",
            "format": export.format,
            "size": written.size,
            "sha256": written.sha256,
            "row_order": "id ascending",
        },
        "merkle": {"root": written.merkle_root, "leaves": rows, "algorithm": ALGORITHM},
        "retractions_since_previous": _retractions_since(export),
    }


@transaction.atomic
def _finish(
    *, export: Export, attempt: str, written: Written, stored: str, manifest: dict[str, Any]
) -> None:
    now = timezone.now()
    updated = Export.objects.filter(
        pk=export.pk, attempt=attempt, status=Export.Status.BUILDING
    ).update(
        status=Export.Status.READY,
        file=stored,
        size=written.size,
        sha256=written.sha256,
        merkle_root=written.merkle_root,
        manifest=manifest,
        rows_written=written.rows,
        finished_at=now,
        updated_at=now,
    )
    if not updated:
        raise ExportSuperseded()
    audit_append(
        actor=SYSTEM,
        action="export.built",
        object_type="export",
        object_id=export.pk,
        dataset=export.dataset,
        payload={
            "file": stored,
            "size": written.size,
            "sha256": written.sha256,
            "merkle_root": written.merkle_root,
            "rows": written.rows,
            "snapshot_seq": export.snapshot_seq,
        },
    )


def _fail(*, export_id: int, attempt: str, reason: str) -> None:
    """Mark the export failed (if this attempt still owns it, or nobody claimed it yet) and drop
    its rows, so an undo of its items is allowed again."""
    reason = reason[:2000]
    with transaction.atomic():
        export = Export.objects.filter(pk=export_id).select_related("dataset").first()
        if export is None:
            return
        now = timezone.now()
        updated = (
            Export.objects.filter(pk=export_id)
            .filter(
                Q(status=Export.Status.BUILDING, attempt=attempt) | Q(status=Export.Status.QUEUED)
            )
            .update(status=Export.Status.FAILED, error=reason, finished_at=now, updated_at=now)
        )
        if not updated:
            return
        ExportItem.objects.filter(export_id=export_id).delete()
        audit_append(
            actor=SYSTEM,
            action="export.failed",
            object_type="export",
            object_id=export_id,
            dataset=export.dataset,
            payload={"reason": reason},
        )


@transaction.atomic
def export_download_record(
    *, export: Export, actor: str, byte_range: str | None, size: int
) -> None:
    """Audit who downloaded a ready export (and which bytes, for a range request)."""
    audit_append(
        actor=actor,
        action="export.downloaded",
        object_type="export",
        object_id=export.pk,
        dataset=export.dataset,
        payload={"range": byte_range, "bytes": size, "sha256": export.sha256},
    )
