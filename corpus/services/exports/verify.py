"""Recompute an export's hashes and compare them with its manifest and the audit log.

Checks, in this order, stopping at the first mismatch (which is what gets reported):

1. the manifest against the ``export.built`` audit event (sha256, Merkle root, rows, size), and
   that event against the chain (its own hash recomputed, and the next event links to it);
2. every row: it parses, its ``content_hash`` is the sha256 of its normalized text, and ids
   ascend (rows are written in id order, so a swapped row shows here);
3. the row count, the Merkle root over the rows' content hashes, the file size and its sha256.

A flipped byte inside a text fails at 2 (that row's hash), anywhere else at the latest at 3
(the file's sha256); a truncated file fails at 2 (a cut row) or 3 (fewer rows).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from corpus.models import AuditEvent
from corpus.scoring import NORMALIZATION_VERSION
from corpus.scoring.text import content_hash
from corpus.services.audit import event_hash
from corpus.services.exports.merkle import MerkleBuilder


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _audit_problem(manifest: dict[str, Any], event: AuditEvent | None) -> str | None:
    if event is None:
        return "the audit log has no export.built event for this export"
    recomputed = event_hash(
        seq=event.seq,
        time=event.time,
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        dataset_id=event.dataset_id,
        payload=event.payload,
        prev_hash=event.prev_hash,
    )
    if recomputed != event.hash:
        return f"audit event #{event.seq} (export.built) was altered"
    following = AuditEvent.objects.filter(seq=event.seq + 1).values_list("prev_hash", flat=True)
    if following and following[0] != event.hash:
        return f"audit event #{event.seq + 1} does not link to the export.built event"
    payload = event.payload
    pairs = [
        ("sha256", manifest.get("file", {}).get("sha256"), payload.get("sha256")),
        ("Merkle root", manifest.get("merkle", {}).get("root"), payload.get("merkle_root")),
        ("row count", manifest.get("rows"), payload.get("rows")),
        ("size", manifest.get("file", {}).get("size"), payload.get("size")),
    ]
    for what, in_manifest, audited in pairs:
        if in_manifest != audited:
            return (
                f"the manifest's {what} ({in_manifest}) differs from the audit log's "
                f"({audited}, event #{event.seq})"
            )
    return None


def _jsonl_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(row number, row) per line; a row that does not parse comes back as the error text."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                yield number, "the row is cut off (no line end: a truncated file?)"
                return
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, f"not valid JSON ({exc})"
                continue
            yield number, row if isinstance(row, dict) else "not a JSON object"


def _parquet_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    import pyarrow.parquet as pq

    number = 0
    try:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=5000, columns=["id", "text", "content_hash"]):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except Exception as exc:  # pyarrow raises several types for damaged files
        yield number + 1, f"the Parquet file cannot be read ({type(exc).__name__}: {exc})"


def _row_problem(number: int, row: dict[str, Any], previous_id: int | None) -> str | None:
    item_id, text, digest = row.get("id"), row.get("text"), row.get("content_hash")
    where = f"row {number} (item {item_id})"
    if not isinstance(item_id, int) or not isinstance(text, str) or not isinstance(digest, str):
        return f"row {number} lacks an integer id, a text or a content_hash"
    if content_hash(text) != digest:
        return f"{where}: its content_hash does not match its text"
    if previous_id is not None and item_id <= previous_id:
        return f"{where}: out of order (rows ascend by id; the row before is item {previous_id})"
    return None


def _file_sha256(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def export_verify_file(
    *, path: str, manifest: dict[str, Any], built_event: AuditEvent | None, check_audit: bool
) -> VerifyResult:
    """Verify the export file at ``path`` against ``manifest`` (and the audit log)."""
    if check_audit:
        problem = _audit_problem(manifest, built_event)
        if problem:
            return VerifyResult(rows=0, problem=problem)
    normalization = manifest.get("versions", {}).get("normalization")
    if normalization != NORMALIZATION_VERSION:
        return VerifyResult(
            rows=0,
            problem=f"the export was hashed with text normalization {normalization!r}; this "
            f"Synthgate normalizes with {NORMALIZATION_VERSION!r} and cannot recompute its hashes",
        )
    fmt = manifest.get("file", {}).get("format") or manifest.get("format")
    rows = _parquet_rows(path) if fmt == "parquet" else _jsonl_rows(path)
    merkle = MerkleBuilder()
    previous_id: int | None = None
    count = 0
    for number, row in rows:
        if isinstance(row, str):
            return VerifyResult(rows=count, problem=f"row {number}: {row}")
        problem = _row_problem(number, row, previous_id)
        if problem:
            return VerifyResult(rows=count, problem=problem)
        merkle.add(row["content_hash"])
        previous_id = row["id"]
        count += 1
    expected_rows = manifest.get("rows")
    if count != expected_rows:
        return VerifyResult(
            rows=count, problem=f"the file has {count} rows, the manifest says {expected_rows}"
        )
    root = merkle.root()
    if root != manifest.get("merkle", {}).get("root"):
        return VerifyResult(
            rows=count,
            problem=f"the Merkle root of the rows ({root}) differs from the manifest's "
            f"({manifest.get('merkle', {}).get('root')})",
        )
    size = os.path.getsize(path)
    if size != manifest.get("file", {}).get("size"):
        return VerifyResult(
            rows=count,
            problem=f"the file is {size} bytes, the manifest says {manifest['file'].get('size')}",
        )
    digest = _file_sha256(path)
    if digest != manifest.get("file", {}).get("sha256"):
        return VerifyResult(
            rows=count,
            problem=f"the file's sha256 ({digest}) differs from the manifest's "
            f"({manifest['file'].get('sha256')})",
        )
    return VerifyResult(rows=count, problem=None)


def built_event_for(export_id: int) -> AuditEvent | None:
    return (
        AuditEvent.objects.filter(
            action="export.built", object_type="export", object_id=str(export_id)
        )
        .order_by("-seq")
        .first()
    )
