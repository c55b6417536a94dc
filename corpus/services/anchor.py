"""Anchors: the chain head, copied to a file outside the database (and optionally mirrored to a
second file and an HTTP endpoint) at most every ``SYNTHGATE_AUDIT_ANCHOR_EVENTS`` events or
``SYNTHGATE_AUDIT_ANCHOR_SECONDS`` seconds, whichever comes first: events past the last anchor
are the only ones a database writer could cut or rewrite unnoticed, so that tail is kept to
seconds. ``audit_anchor_task`` (beat, every T seconds, and asked for by the append that passes
N events) calls ``anchor_head``.

The hash chain shows any edit that leaves later events in place, but someone who can write the
database could cut off its tail (and move the head row back) or recompute the whole chain over
rewritten events. The anchor file is what such a rewrite cannot reach: every line records a
head, ``seq``, ``hash``, time and an HMAC over them, and ``audit_check`` compares each anchor
with the event now stored at that seq (so the chain up to an anchor is verified against it
whether or not it had been verified when the anchor was written).

Keep the file somewhere the database's writers cannot rewrite (another volume, a host the
application account only appends to, a log shipper that forwards each line). It belongs to one
database: starting from an empty database means starting a new file.

Line format (ASCII, tab-separated, one per line)::

    <seq>\t<hash>\t<ISO time, UTC>\t<hmac-sha256 hex of "seq\thash\ttime">
"""

import fcntl
import hashlib
import hmac
import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from django.conf import settings
from django.utils import timezone

from corpus.models import AuditEvent, AuditHead, AuditVerification

logger = logging.getLogger(__name__)

CHUNK = 1000
MAX_LINE = 256
MIRROR_TIMEOUT_SECONDS = 5


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
    last_seq: int = 0  # the newest anchor checked


def anchor_path() -> Path:
    return Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH)


def _key() -> bytes:
    return (settings.SYNTHGATE_AUDIT_ANCHOR_KEY or settings.SECRET_KEY).encode()


def _mac(body: str) -> str:
    return hmac.new(_key(), body.encode("ascii"), hashlib.sha256).hexdigest()


def _last_seq(fh: IO[str]) -> int:
    """The seq of the file's last complete line (0 for an empty file); read from its tail."""
    size = fh.seek(0, os.SEEK_END)
    if not size:
        return 0
    fh.seek(max(0, size - 2 * MAX_LINE))
    lines = fh.read().split("\n")
    for line in reversed(lines[:-1]):  # the part after the last newline is not a whole line
        head, _, _ = line.partition("\t")
        if head.isdigit():
            return int(head)
    return 0


def _append(path: Path, line: str) -> int:
    with open(path, "a", encoding="ascii") as fh:
        at = fh.seek(0, os.SEEK_END)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    return at


def anchor_write(*, seq: int, digest: str) -> Anchor | None:
    """Append one anchor line (and its mirror copy) and fsync it; None when the file already
    has an anchor at ``seq`` or later (anchors stay in seq order whoever writes them)."""
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    body = f"{seq}\t{digest}\t{now.astimezone(UTC).isoformat(timespec='microseconds')}"
    line = f"{body}\t{_mac(body)}\n"
    # O_APPEND keeps concurrent writers' lines whole; the lock keeps them in seq order with the
    # size we report.
    with open(path, "a+", encoding="ascii") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if _last_seq(fh) >= seq:
                return None
            at = fh.seek(0, os.SEEK_END)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
            mirror = settings.SYNTHGATE_AUDIT_ANCHOR_MIRROR_PATH
            if mirror:
                # Under the main file's lock: the copy gets the lines in the same order.
                try:
                    Path(mirror).parent.mkdir(parents=True, exist_ok=True)
                    _append(Path(mirror), line)
                except OSError as exc:
                    logger.error("could not mirror the audit anchor to %s: %s", mirror, exc)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    anchor = Anchor(seq=seq, hash=digest, time=now, at=at)
    _mirror_post(line)
    return anchor


def _mirror_post(line: str) -> None:
    """POST the anchor to ``SYNTHGATE_AUDIT_ANCHOR_MIRROR_URL`` (JSON; the line's own HMAC is
    repeated in ``X-Synthgate-Signature``). A failure is logged: the file anchor stands."""
    url = settings.SYNTHGATE_AUDIT_ANCHOR_MIRROR_URL
    if not url:
        return
    seq, digest, time, mac = line.rstrip("\n").split("\t")
    body = json.dumps(
        {"seq": int(seq), "hash": digest, "time": time, "hmac": mac, "line": line}
    ).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Synthgate-Signature": mac},
    )
    try:
        with urllib.request.urlopen(request, timeout=MIRROR_TIMEOUT_SECONDS) as response:
            response.read()
    except OSError as exc:
        logger.error("could not post the audit anchor #%s to %s: %s", seq, url, exc)


def anchor_head() -> Anchor | None:
    """Anchor the committed chain head if it is past the last anchor; record it (what
    ``/healthz`` and ``verify_audit`` count the unanchored tail from)."""
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first()
    if head is None or head[0] == 0:
        return None
    written = anchor_write(seq=head[0], digest=head[1])
    if written is not None:
        AuditVerification.objects.get_or_create(pk=1)
        AuditVerification.objects.filter(pk=1, anchored_seq__lt=written.seq).update(
            anchored_seq=written.seq, anchored_at=written.time
        )
    return written


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
        result.last_seq = anchor.seq
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
