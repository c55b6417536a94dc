"""Anchors: the verified chain head, copied at intervals to a file outside the database.

The hash chain shows any edit that leaves later events in place, but someone who can write the
database could cut off its tail (and move the head row back) or recompute the whole chain over
rewritten events. The anchor file is what such a rewrite cannot reach: every line records a
head the verifier had checked, ``seq``, ``hash``, time and an HMAC over them, and
``audit_check`` compares each anchor with the event now stored at that seq.

Keep the file somewhere the database's writers cannot rewrite (another volume, a host the
application account only appends to, a log shipper that forwards each line). It belongs to one
database: starting from an empty database means starting a new file.

Line format (ASCII, tab-separated, one per line)::

    <seq>\t<hash>\t<ISO time, UTC>\t<hmac-sha256 hex of "seq\thash\ttime">
"""

import fcntl
import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from corpus.models import AuditEvent, AuditHead, AuditVerification

CHUNK = 1000
MAX_LINE = 256


class AnchorFileError(ValueError):
    """The anchor file cannot be trusted as it is; the message says why."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    time: datetime
    # Byte offset where the line starts: how problems point into the file.
    at: int


@dataclass
class AnchorCheck:
    checked: int = 0
    offset: int = 0
    problem: str | None = None
    bad_seq: int | None = None


def anchor_path() -> Path:
    return Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH)


def _key() -> bytes:
    return (settings.SYNTHGATE_AUDIT_ANCHOR_KEY or settings.SECRET_KEY).encode()


def _mac(body: str) -> str:
    return hmac.new(_key(), body.encode("ascii"), hashlib.sha256).hexdigest()


def anchor_write(*, seq: int, digest: str) -> Anchor:
    """Append one anchor line and fsync it. The caller has verified the chain up to ``seq``."""
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    body = f"{seq}\t{digest}\t{now.astimezone(UTC).isoformat(timespec='microseconds')}"
    line = f"{body}\t{_mac(body)}\n"
    # O_APPEND keeps concurrent writers' lines whole; the lock keeps them in seq order with the
    # size we report.
    with open(path, "a", encoding="ascii") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            at = fh.seek(0, os.SEEK_END)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return Anchor(seq=seq, hash=digest, time=now, at=at)


def _parse(raw: bytes, at: int) -> Anchor:
    try:
        text = raw.decode("ascii").rstrip("\n")
        seq_text, digest, time_text, mac = text.split("\t")
        seq = int(seq_text)
        time = datetime.fromisoformat(time_text)
    except ValueError:
        raise AnchorFileError(f"the anchor file is malformed at byte {at}") from None
    if seq < 1 or len(digest) != 64 or time.tzinfo is None:
        raise AnchorFileError(f"the anchor file is malformed at byte {at}")
    if not hmac.compare_digest(mac, _mac(f"{seq_text}\t{digest}\t{time_text}")):
        raise AnchorFileError(
            f"the anchor for #{seq} at byte {at} has a bad signature (the anchor file was "
            "edited, or SYNTHGATE_AUDIT_ANCHOR_KEY changed)"
        )
    return Anchor(seq=seq, hash=digest, time=time, at=at)


def anchors_read(*, offset: int = 0) -> Iterator[tuple[Anchor, int]]:
    """Each complete anchor line from ``offset`` on, with the offset just past it.

    A last line without its newline is a write in progress: it is left for the next reader.
    """
    path = anchor_path()
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < offset:
            raise AnchorFileError(
                f"the anchor file {path} was truncated (it has {size} bytes, {offset} were "
                "verified before)"
            )
        fh.seek(offset)
        at = offset
        previous = 0
        while raw := fh.readline(MAX_LINE):
            if not raw.endswith(b"\n"):
                if len(raw) >= MAX_LINE:
                    raise AnchorFileError(f"the anchor file is malformed at byte {at}")
                return
            anchor = _parse(raw, at)
            if anchor.seq < previous:
                raise AnchorFileError(
                    f"the anchor for #{anchor.seq} at byte {at} comes after one for #{previous}"
                )
            previous = anchor.seq
            at += len(raw)
            yield anchor, at


def _compare(anchors: list[Anchor], result: AnchorCheck, last_good: Anchor | None) -> bool:
    stored = dict(
        AuditEvent.objects.filter(seq__in=[a.seq for a in anchors]).values_list("seq", "hash")
    )
    head_seq = AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    for anchor in anchors:
        when = anchor.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        found = stored.get(anchor.seq)
        if found is None and anchor.seq > head_seq:
            span = (
                f"event #{anchor.seq} was"
                if anchor.seq == head_seq + 1
                else f"events #{head_seq + 1}–#{anchor.seq} were"
            )
            result.bad_seq = head_seq + 1
            result.problem = (
                f"{span} removed from the end: the anchor of {when} records #{anchor.seq}, "
                f"the chain now ends at #{head_seq}"
            )
            return False
        if found is None:
            result.bad_seq = anchor.seq
            result.problem = f"event #{anchor.seq} is missing (it was anchored at {when})"
            return False
        if found != anchor.hash:
            since = f" and after #{last_good.seq}" if last_good else ""
            result.bad_seq = anchor.seq
            result.problem = (
                f"event #{anchor.seq} does not match its anchor of {when}: the chain was "
                f"rewritten at or before #{anchor.seq}{since}"
            )
            return False
        last_good = anchor
        result.checked += 1
    return True


def anchors_check(*, offset: int = 0) -> AnchorCheck:
    """Compare every anchor from byte ``offset`` with the stored events, in chunks (constant
    memory). ``offset`` in the result is how far the file checked out."""
    result = AnchorCheck(offset=offset)
    path = anchor_path()
    if not path.exists():
        anchored = (
            AuditVerification.objects.filter(pk=1).values_list("anchored_seq", flat=True).first()
        )
        if offset or anchored:
            result.problem = (
                f"the anchor file {path} is missing (anchors up to #{anchored or '?'} were "
                "written to it)"
            )
        return result
    chunk: list[Anchor] = []
    chunk_end = offset
    last_good: Anchor | None = None
    try:
        for anchor, end in anchors_read(offset=offset):
            chunk.append(anchor)
            chunk_end = end
            if len(chunk) == CHUNK:
                if not _compare(chunk, result, last_good):
                    return result
                last_good, result.offset, chunk = chunk[-1], chunk_end, []
        if chunk and not _compare(chunk, result, last_good):
            return result
        result.offset = chunk_end
    except AnchorFileError as exc:
        result.problem = str(exc)
    return result
