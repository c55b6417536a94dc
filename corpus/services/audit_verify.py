"""Verifying the audit chain (``corpus.services.audit`` appends to it).

``audit_check`` recomputes the chain in keyset batches (constant memory) and names the first
event that was altered, removed, inserted or reordered; it also compares the chain with the
head row and with the anchors written outside the database (``corpus.services.anchor``).
``audit_verify_incremental`` is what the periodic task runs: it resumes from a stored checkpoint,
records the verdict that ``/healthz`` and the admin banner show, and anchors the verified head.
"""

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Subquery
from django.utils import timezone

from corpus.models import AuditEvent, AuditHead, AuditVerification
from corpus.services.audit import GENESIS_HASH, SYSTEM, audit_append, event_hash

logger = logging.getLogger(__name__)

# The cache key the verifier sets while the chain is broken; the admin banner reads only this,
# so pages cost no extra database query.
ALERT_CACHE_KEY = "synthgate:audit:alert"

# The database triggers that make the tables append-only (migration 0006): the verifier reports
# any that are missing or disabled.
GUARD_TRIGGERS = {
    "postgresql": (
        "corpus_auditevent_append_only",
        "corpus_auditeventitem_append_only",
        "corpus_audithead_forward_only",
    ),
    "sqlite": (
        "corpus_auditevent_no_update",
        "corpus_auditevent_no_delete",
        "corpus_auditeventitem_no_update",
        "corpus_auditeventitem_no_delete",
        "corpus_audithead_no_rewind",
        "corpus_audithead_no_delete",
    ),
}


_FIELDS = (
    "seq",
    "time",
    "actor",
    "action",
    "object_type",
    "object_id",
    "dataset_id",
    "payload",
    "prev_hash",
    "hash",
)


def _digest(row: tuple[Any, ...], seq: int | None = None) -> str:
    return event_hash(
        seq=row[0] if seq is None else seq,
        time=row[1],
        actor=row[2],
        action=row[3],
        object_type=row[4],
        object_id=row[5],
        dataset_id=row[6],
        payload=row[7],
        prev_hash=row[8],
    )


def _seq_of_hash(digest: str) -> int | None:
    return AuditEvent.objects.filter(hash=digest).values_list("seq", flat=True).first()


def _diagnose(
    row: tuple[Any, ...], expected: int, prev_hash: str, after: tuple[Any, ...] | None
) -> tuple[int, str]:
    """Name what happened at the first place the chain breaks: (the event to blame, why).

    ``row`` is the row found where event #``expected`` should be, ``prev_hash`` the hash of the
    event before it, ``after`` the row after it (if any). Each event's hash covers its own seq
    and its predecessor's hash, which is what tells the cases apart.
    """
    seq, own_prev, own_hash = row[0], row[8], row[9]
    if seq != expected:
        if seq == expected + 1:
            return expected, (
                f"event #{expected} was removed (the chain goes from #{expected - 1} to #{seq})"
            )
        return expected, (
            f"events #{expected}–#{seq - 1} were removed (the chain goes from "
            f"#{expected - 1} to #{seq})"
        )
    authentic = _digest(row) == own_hash
    linked = own_prev == prev_hash
    if linked:
        # The link holds but the content does not: edited in place, unless the rows after it
        # were shifted up to make room for it (then the next row still hashes as #seq).
        if (
            after is not None
            and after[0] == seq + 1
            and after[8] == prev_hash
            and _digest(after, seq=seq) == after[9]
        ):
            return seq, (
                f"event #{seq} was inserted (#{seq + 1} was written as #{seq} and "
                f"links to #{seq - 1})"
            )
        return seq, f"event #{seq} was altered (its hash does not match its content)"
    if authentic:
        # This row is genuine at #seq, so the row before it is not the one it was chained to.
        return seq - 1, f"event #{seq - 1} was replaced (#{seq} links to a different event)"
    origin = _seq_of_hash(own_prev)
    if origin is not None:
        if origin == seq - 2 and _digest(row, seq=seq - 1) == own_hash:
            return seq - 1, (
                f"event #{seq - 1} was inserted (#{seq} was written as #{seq - 1} "
                f"and links to #{seq - 2})"
            )
        for written_as in (origin + 1, origin):
            if written_as != seq and _digest(row, seq=written_as) == own_hash:
                return seq, f"event #{seq} is out of order (it was written as #{written_as})"
    elif _digest(row, seq=seq + 1) == own_hash:
        return seq, (
            f"event #{seq} was removed (the events after it were renumbered: the one "
            f"now at #{seq} was written as #{seq + 1})"
        )
    return seq, f"event #{seq} was altered (its hash and its link to #{seq - 1} do not match)"


@dataclass
class AuditReport:
    """What one verification pass found. ``problem`` is None when everything checked out."""

    checked: int = 0
    problem: str | None = None
    bad_seq: int | None = None
    from_seq: int = 1
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    head_seq: int = 0
    anchors_checked: int = 0
    anchors_offset: int = 0
    anchored_seq: int = 0  # the newest anchor checked: events past it are not anchored yet
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _fail(report: AuditReport, bad_seq: int | None, problem: str) -> AuditReport:
    report.bad_seq, report.problem = bad_seq, problem
    return report


# PostgreSQL hands over the time already in ``format_time``'s form and the payload as text for
# orjson: a third of the per-event cost of the ORM path, which counts over millions of events.
_PG_FETCH = (
    "SELECT seq, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
    "actor, action, object_type, object_id, dataset_id, payload::text, prev_hash, hash "
    "FROM corpus_auditevent WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s"
)


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # integers beyond 64 bits: the stdlib takes them
        return json.loads(text)


def _fetch(after_seq: int, upto_seq: int, limit: int) -> list[tuple[Any, ...]]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PG_FETCH, [after_seq, upto_seq, limit])
            return [(*row[:7], _loads(row[7]), *row[8:]) for row in cursor.fetchall()]
    return list(
        AuditEvent.objects.filter(seq__gt=after_seq, seq__lte=upto_seq)
        .order_by("seq")
        .values_list(*_FIELDS)[:limit]
    )


def _batches(after_seq: int, upto_seq: int, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows from ``after_seq`` to ``upto_seq`` in seq order, one seq range at a time.

    Ranges (``seq > a AND seq <= a + size``), not ``ORDER BY seq LIMIT n`` over the rest of the
    table: the planner then always reads a batch through the primary key, even on a freshly
    loaded table without statistics, where the open-ended form sorts everything left on every
    batch. A range may come back short or empty where rows are missing; the caller names the
    gap at the first row after it.

    On PostgreSQL outside a transaction, a second connection reads the next range while this
    thread hashes the current one. Rows never change once written, so both connections agree
    on everything up to the head read at the start. Inside a transaction (tests, callers
    holding locks) it reads inline: a second connection would not see the transaction's rows.
    """
    ranges = ((a, min(a + size, upto_seq)) for a in range(after_seq, upto_seq, size))
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        for low, high in ranges:
            if rows := _fetch(low, high, size):
                yield rows
        return
    with ThreadPoolExecutor(max_workers=1) as reader:
        try:
            first = next(ranges, None)
            pending = reader.submit(_fetch, *first, size) if first else None
            while pending is not None:
                rows = pending.result()
                following = next(ranges, None)
                pending = reader.submit(_fetch, *following, size) if following else None
                if rows:
                    yield rows
        finally:
            # The reader thread's own connection.
            reader.submit(connections.close_all).result()


def audit_check(
    *,
    from_seq: int = 1,
    prev_hash: str | None = None,
    batch_size: int = 5000,
    anchors: bool = True,
    anchors_offset: int = 0,
) -> AuditReport:
    """Recompute the chain from ``from_seq`` to the head, in constant memory.

    ``prev_hash`` is the trusted hash of event ``from_seq - 1`` (a verifier's checkpoint): when
    given, the stored event must still carry it. Then the chain's end is compared with the head
    row, and (``anchors``) every anchor from byte ``anchors_offset`` of the anchor file with the
    events it recorded, which is what shows a cut-off tail or a rewritten table.
    """
    from corpus.services import anchor

    if from_seq < 1:
        raise ValueError("from_seq must be 1 or more")
    report = AuditReport(from_seq=from_seq, last_seq=from_seq - 1, anchors_offset=anchors_offset)
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first()
    head_seq, head_hash = head if head else (0, GENESIS_HASH)
    report.head_seq = head_seq
    if from_seq > 1:
        before = AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first()
        if before is None:
            return _fail(report, from_seq - 1, f"event #{from_seq - 1} is missing")
        if prev_hash is not None and before != prev_hash:
            return _fail(
                report,
                from_seq - 1,
                f"event #{from_seq - 1} changed after it was verified (its hash is not the one "
                "recorded then)",
            )
        prev_hash = before
    else:
        prev_hash = GENESIS_HASH
    report.last_hash = prev_hash
    expected = from_seq
    for rows in _batches(from_seq - 1, head_seq, batch_size):
        for i, row in enumerate(rows):
            if row[0] != expected or row[8] != prev_hash or _digest(row) != row[9]:
                after = rows[i + 1] if i + 1 < len(rows) else None
                if after is None:
                    following = _fetch(row[0], head_seq, 1)
                    after = following[0] if following else None
                bad_seq, problem = _diagnose(row, expected, prev_hash, after)
                return _fail(report, bad_seq, problem)
            prev_hash = row[9]
            expected += 1
            report.checked += 1
        report.last_seq, report.last_hash = expected - 1, prev_hash

    # The end of the chain must be the head, and nothing may sit beyond the head.
    last = report.last_seq
    if last < head_seq:
        missing = f"#{last + 1}" if last + 1 == head_seq else f"#{last + 1}–#{head_seq}"
        return _fail(
            report,
            last + 1,
            f"event{'s' if last + 1 < head_seq else ''} {missing} "
            f"{'were' if last + 1 < head_seq else 'was'} removed from the end (the chain head "
            f"says #{head_seq})",
        )
    if last == head_seq and head_seq >= from_seq and report.last_hash != head_hash:
        return _fail(
            report, last, f"event #{last} was replaced (it does not match the chain head's hash)"
        )
    # One statement, one snapshot: an append that commits meanwhile moves the head with its row.
    beyond = (
        AuditEvent.objects.filter(seq__gt=Subquery(AuditHead.objects.filter(pk=1).values("seq")))
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    if beyond is not None:
        return _fail(
            report, beyond, f"event #{beyond} was inserted beyond the chain head (not appended)"
        )
    if anchors:
        outcome = anchor.anchors_check(offset=anchors_offset)
        report.anchors_checked = outcome.checked
        report.anchors_offset = outcome.offset
        report.anchored_seq = outcome.last_seq
        if outcome.problem:
            return _fail(report, outcome.bad_seq, outcome.problem)
    return report


def audit_verify(*, from_seq: int = 1, batch_size: int = 5000) -> tuple[int, str | None]:
    """Recompute the chain from ``from_seq`` in constant memory, anchors included.

    Returns (events checked, None) when intact, else (events checked, first problem).
    """
    report = audit_check(from_seq=from_seq, batch_size=batch_size)
    return report.checked, report.problem


def audit_guards_missing() -> list[str]:
    """The append-only triggers that are missing or disabled in this database."""
    expected = GUARD_TRIGGERS.get(connection.vendor)
    if not expected:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' "
                "AND tgname = ANY(%s)",
                [list(expected)],
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {name for (name,) in cursor.fetchall()}
    return [name for name in expected if name not in present]


def _alert_publish(state: AuditVerification) -> None:
    """Tell the admin banner; a cache outage must not stop verification."""
    try:
        if state.ok:
            cache.delete(ALERT_CACHE_KEY)
        else:
            cache.set(
                ALERT_CACHE_KEY,
                {
                    "problem": state.problem,
                    "bad_seq": state.bad_seq,
                    "checked_at": state.checked_at.isoformat() if state.checked_at else None,
                },
                timeout=None,
            )
    except Exception as exc:  # noqa: BLE001 - the banner is best effort; /healthz reads the DB
        logger.warning("could not publish the audit alert to the cache: %s", exc)


def audit_verify_incremental(*, full: bool = False) -> AuditVerification:
    """Verify what was appended since the last checkpoint (or everything, ``full``), record the
    verdict, and anchor the verified head when the anchor interval has passed.

    The chain is read outside any transaction (a full pass over millions of events must not hold
    one open); the verdict is written under a lock on the verification row, with an audit event
    when the chain turns broken or whole again.
    """
    from corpus.services import anchor

    state, _ = AuditVerification.objects.get_or_create(pk=1)
    if full:
        report = audit_check(from_seq=1, anchors_offset=0)
    else:
        report = audit_check(
            from_seq=state.verified_seq + 1,
            prev_hash=state.verified_hash if state.verified_seq else None,
            anchors_offset=state.anchors_offset,
        )
    missing = audit_guards_missing()
    if report.ok and missing:
        report.problem = (
            "append-only trigger(s) missing or disabled: "
            + ", ".join(missing)
            + " (apply migration corpus 0006 again, or ENABLE TRIGGER)"
        )
    now = timezone.now()
    with transaction.atomic():
        state = AuditVerification.objects.select_for_update().get(pk=1)
        was_ok = state.ok
        state.checked_at = now
        if full:
            state.full_checked_at = now
        if report.ok:
            state.ok, state.problem, state.bad_seq = True, "", None
            if report.last_seq >= state.verified_seq:
                state.verified_seq, state.verified_hash = report.last_seq, report.last_hash
                state.anchors_offset = report.anchors_offset
        else:
            state.ok, state.problem, state.bad_seq = False, report.problem or "", report.bad_seq
        if state.ok != was_ok:
            try:
                # A savepoint: a forged row sitting where the next event goes (past the head)
                # makes this insert fail, and the verdict must still be recorded.
                with transaction.atomic():
                    audit_append(
                        actor=SYSTEM,
                        action="audit.chain_restored" if state.ok else "audit.chain_broken",
                        object_type="audit",
                        object_id=str(state.bad_seq or state.verified_seq),
                        payload={
                            "problem": state.problem,
                            "bad_seq": state.bad_seq,
                            "verified_seq": state.verified_seq,
                        },
                    )
            except IntegrityError:
                logger.error("could not append the audit verdict to a damaged chain")
        state.save()
        transaction.on_commit(lambda: _alert_publish(state))
    if state.ok and state.verified_seq > state.anchored_seq:
        due = state.anchored_at is None or (
            (now - state.anchored_at).total_seconds() >= settings.SYNTHGATE_AUDIT_ANCHOR_SECONDS
        )
        if due:
            written = anchor.anchor_write(seq=state.verified_seq, digest=state.verified_hash)
            if written is not None:  # else the anchor task got there first
                AuditVerification.objects.filter(pk=1, anchored_seq__lt=written.seq).update(
                    anchored_seq=written.seq, anchored_at=written.time
                )
                state.anchored_seq, state.anchored_at = written.seq, written.time
    return state
