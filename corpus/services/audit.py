"""The hash-chained, append-only audit log.

Every state change calls ``audit_append`` (or ``audit_append_many``) inside its own transaction.
Appends are serialized on the single ``AuditHead`` row (``SELECT ... FOR UPDATE`` on PostgreSQL;
on SQLite every write transaction is ``BEGIN IMMEDIATE``, so the database serializes them), so
the chain never forks: each event's ``prev_hash`` is the hash of the event before it, and the
head row names the last one.

``audit_check`` recomputes the chain in keyset batches (constant memory) and names the first
event that was altered, removed, inserted or reordered; it also compares the chain with the
head row and with the anchors written outside the database (``corpus.services.anchor``).
``audit_verify_incremental`` is what the periodic task runs: it resumes from a stored checkpoint,
records the verdict that ``/healthz`` and the admin banner show, and anchors the verified head.
"""

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Subquery
from django.utils import timezone

from corpus.db.copy import copy_rows
from corpus.models import (
    ApiToken,
    AuditEvent,
    AuditEventItem,
    AuditHead,
    AuditVerification,
    Dataset,
)

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
SYSTEM = "system"
ANONYMOUS = "anonymous"

# Where an event names the items it concerns, for item timelines (``AuditEventItem``): its object
# when that is an item, and these payload keys when the object is an item, a dataset or an export
# (a list of ids, or a mapping keyed by id as ``items.scored`` writes ``auto_rejected``).
ITEM_OBJECT_TYPES = ("item", "dataset", "export")
ITEM_PAYLOAD_KEYS = frozenset(
    {
        "item",
        "item_id",
        "items",
        "item_ids",
        "created",
        "queued",
        "auto_rejected",
        "score_failed",
        "rescored",
        "approved",
        "rejected",
        "reopened",
        "retracted",
    }
)
MAX_ACTOR = 200
MAX_NAME = 64

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


def actor_for_user(user: Any) -> str:
    return f"user:{user.pk}:{user.get_username()}"


def actor_for_token(token: ApiToken) -> str:
    return f"token:{token.pk}:{token.name}"


# The json module's string encoder with ensure_ascii=False, as canonical_json uses it.
_json_str = encode_basestring


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_time(time: datetime | str) -> str:
    """UTC, microseconds: ``2026-01-31T12:00:00.000000+00:00``. A string is taken as already in
    this form (the verifier has PostgreSQL format it)."""
    if isinstance(time, str):
        return time
    return time.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    time: datetime | str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    dataset_id: int | None,
    payload: dict[str, Any],
    prev_hash: str,
    payload_json: str | None = None,
) -> str:
    """sha256 of the event's canonical JSON: ``canonical_json`` of ``{"seq", "time", "actor",
    "action", "object": "type:id", "dataset", "payload", "prev_hash"}``.

    Written out key by key (in sorted order, strings escaped by the json module's own encoder)
    so that an append can pass the payload's canonical text it already has
    (``payload_json``) instead of serializing it again; the result is byte for byte the
    ``canonical_json`` of that dict (tests/audit/test_append.py checks it).
    """
    if payload_json is None:
        payload_json = canonical_json(payload).decode()
    body = (
        f'{{"action":{_json_str(action)},"actor":{_json_str(actor)},'
        f'"dataset":{"null" if dataset_id is None else int(dataset_id)},'
        f'"object":{_json_str(f"{object_type}:{object_id}")},"payload":{payload_json},'
        f'"prev_hash":{_json_str(prev_hash)},"seq":{int(seq)},'
        f'"time":{_json_str(format_time(time))}}}'
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def event_item_ids(*, object_type: str, object_id: str, payload: Mapping[str, Any]) -> list[int]:
    """The items an event concerns (see ``ITEM_PAYLOAD_KEYS``), sorted, without repeats."""
    ids: set[int] = set()
    if object_type == "item" and (own := _as_id(object_id)) is not None:
        ids.add(own)
    if object_type in ITEM_OBJECT_TYPES:
        for key in ITEM_PAYLOAD_KEYS & payload.keys():
            value = payload[key]
            if isinstance(value, list):
                candidates: Iterable[Any] = value
            elif isinstance(value, dict):
                candidates = value.keys()
            else:
                candidates = (value,)
            ids.update(i for i in map(_as_id, candidates) if i is not None)
    return sorted(ids)


class AuditHeadMoved(RuntimeError):
    """An append was given a chain head that is not the current one (see ``audit_append_many``)."""


def audit_lock() -> AuditHead:
    """Take the chain-head lock now, for the rest of the caller's transaction.

    Callers that need their own inserts to get ids in commit order (ingest does, so keyset
    cursors never skip a row committed late) take it before inserting. Requires an open
    transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_lock() needs an open transaction")
    head, _ = AuditHead.objects.select_for_update().get_or_create(pk=1)
    return head


def audit_head() -> dict[str, Any]:
    """The committed chain head, ``{"seq", "hash"}``: what export manifests record."""
    head = AuditHead.objects.filter(pk=1).values("seq", "hash").first()
    return dict(head) if head else {"seq": 0, "hash": GENESIS_HASH}


@dataclass(frozen=True)
class _Prepared:
    actor: str
    action: str
    object_type: str
    object_id: str
    dataset: Dataset | None
    payload: dict[str, Any]
    # canonical_json(payload), kept for the hash and the insert.
    payload_json: str
    item_ids: list[int]


def _check_numbers(value: Any) -> None:
    """Refuse floats that would not survive PostgreSQL's jsonb unchanged: NaN and infinities
    (refused there) and integral floats of 1e16 or more (``1e+16`` comes back as an integer),
    either of which would make a stored event fail its own hash."""
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e16:
            raise ValueError(f"an audit payload cannot hold the float {value!r}; use a string")
    elif isinstance(value, dict):
        for item in value.values():
            _check_numbers(item)
    elif isinstance(value, list):
        for item in value:
            # Most lists are ids (an ingest event names a thousand): skip the call for those.
            if not isinstance(item, int | str):
                _check_numbers(item)


def _prepare(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    payload: dict[str, Any] | None = None,
    dataset: Dataset | None = None,
) -> _Prepared:
    object_id = str(object_id)
    for name, value, limit in (
        ("actor", actor, MAX_ACTOR),
        ("action", action, MAX_NAME),
        ("object_type", object_type, MAX_NAME),
        ("object_id", object_id, MAX_NAME),
    ):
        if not isinstance(value, str) or not value or len(value) > limit:
            raise ValueError(f"audit {name} must be a string of 1 to {limit} characters")
    if payload is not None and not isinstance(payload, dict):
        raise TypeError("an audit payload is a dict")
    # Round-trip through JSON so the hash is computed over exactly what the database returns.
    text = canonical_json(payload or {})
    clean = json.loads(text)
    _check_numbers(clean)
    return _Prepared(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        dataset=dataset,
        payload=clean,
        payload_json=text.decode(),
        # An event whose object is the item is found through the object index already; only
        # the other items it names need index rows (one insert fewer per review decision).
        item_ids=[
            i
            for i in event_item_ids(object_type=object_type, object_id=object_id, payload=clean)
            if not (object_type == "item" and str(i) == object_id)
        ],
    )


def audit_append(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    payload: dict[str, Any] | None = None,
    dataset: Dataset | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change it records."""
    return audit_append_many(
        events=[
            {
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "payload": payload,
                "dataset": dataset,
            }
        ]
    )[0]


_COPY_EVENTS = (
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
# AuditEvent's concrete fields in declaration order: from_db() then takes Model.__init__'s fast
# positional path.
_ATTNAMES = [f.attname for f in AuditEvent._meta.concrete_fields]


def _copy_rows(values: list[tuple[Any, ...]], refs: list[tuple[int, int]]) -> None:
    """Insert with COPY: every append queues on the head lock, and COPY costs a fraction of
    ``bulk_create``'s per-row work (which escapes its text arrays in Python, value by value)."""
    copy_rows(AuditEvent, _COPY_EVENTS, values)
    if refs:
        copy_rows(AuditEventItem, ("item_id", "event_id"), refs)


# Appends up to this size go as one statement on PostgreSQL (``_append_small``); larger ones
# (ingest's, a thousand ids) by COPY.
SMALL_APPEND_EVENTS = 20
SMALL_APPEND_REFS = 100


def _append_small(
    *,
    from_seq: int,
    seq: int,
    digest: str,
    values: list[tuple[Any, ...]],
    refs: list[tuple[int, int]],
) -> bool:
    """PostgreSQL: move the head from ``from_seq`` to (``seq``, ``digest``) and insert the
    events and their item rows, in one statement. The inserts only happen if the guarded head
    update did (they read its result), so False means nothing was written."""
    q = connection.ops.quote_name
    event_row = "(%s, %s::timestamptz, %s, %s, %s, %s, %s::bigint, %s::jsonb, %s, %s)"
    sql = (
        f"WITH moved AS (UPDATE {q(AuditHead._meta.db_table)} SET seq = %s, hash = %s"
        " WHERE id = 1 AND seq = %s RETURNING id),"
        f" events AS (INSERT INTO {q(AuditEvent._meta.db_table)} (seq, time, actor, action,"
        " object_type, object_id, dataset_id, payload, prev_hash, hash)"
        f" SELECT v.* FROM (VALUES {', '.join([event_row] * len(values))}) v"
        " WHERE EXISTS (SELECT 1 FROM moved) RETURNING seq)"
    )
    params: list[Any] = [seq, digest, from_seq]
    for row in values:
        params.extend(row)
    if refs:
        sql += (
            f", refs AS (INSERT INTO {q(AuditEventItem._meta.db_table)} (item_id, event_id)"
            f" SELECT r.* FROM (VALUES {', '.join(['(%s::bigint, %s::bigint)'] * len(refs))}) r"
            " WHERE EXISTS (SELECT 1 FROM moved))"
        )
        for ref in refs:
            params.extend(ref)
    sql += " SELECT COUNT(*) FROM events"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] == len(values)


def audit_append_many(
    *, events: Sequence[Mapping[str, Any]], head: AuditHead | None = None
) -> list[AuditEvent]:
    """Append several events under one acquisition of the head lock, in the given order.

    Each mapping takes ``audit_append``'s keyword arguments. Must run inside the transaction of
    the changes they record. Validation, canonical payloads and item ids are worked out before
    taking the lock; under it come the hashing, the head update and the insert (on PostgreSQL
    one statement for a few events, COPY for many), and then whatever the caller does until it
    commits: every append of a busy system queues on that lock, so it is kept short.

    ``head``: what ``audit_lock()`` returned earlier in this same transaction (a caller that
    had to take the lock first, for lock order), which spares reading the locked row again.
    Appends keep it current. The head update is guarded (``seq`` must still be the one the
    chain was extended from), so a head object that is stale, or was not locked in this
    transaction, raises ``AuditHeadMoved`` instead of forking the chain.
    """
    prepared = [_prepare(**spec) for spec in events]
    if not prepared:
        return []
    dataset_field = AuditEvent._meta.get_field("dataset")
    if head is None:
        head = audit_lock()
    elif not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_append_many(head=...) needs the transaction that locked it")
    # Taken under the lock, so time never goes backwards along the chain.
    now = timezone.now()
    seq, prev_hash = head.seq, head.hash
    values: list[tuple[Any, ...]] = []
    refs: list[tuple[int, int]] = []
    for event in prepared:
        seq += 1
        dataset_id = event.dataset.pk if event.dataset else None
        digest = event_hash(
            seq=seq,
            time=now,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            dataset_id=dataset_id,
            payload=event.payload,
            prev_hash=prev_hash,
            payload_json=event.payload_json,
        )
        values.append(
            (
                seq,
                now,
                event.actor,
                event.action,
                event.object_type,
                event.object_id,
                dataset_id,
                event.payload_json,
                prev_hash,
                digest,
            )
        )
        refs.extend((item_id, seq) for item_id in event.item_ids)
        prev_hash = digest
    if connection.vendor == "postgresql" and (
        len(values) <= SMALL_APPEND_EVENTS and len(refs) <= SMALL_APPEND_REFS
    ):
        # A few events (a review decision, a login): the guarded head update and the inserts
        # are one statement, one round trip instead of an UPDATE and a COPY.
        written = _append_small(
            from_seq=head.seq, seq=seq, digest=prev_hash, values=values, refs=refs
        )
    else:
        # The head moves first, guarded: it must still be where this chain segment starts.
        written = bool(AuditHead.objects.filter(pk=1, seq=head.seq).update(seq=seq, hash=prev_hash))
        if written and connection.vendor == "postgresql":
            _copy_rows(values, refs)
    if not written:
        raise AuditHeadMoved(
            f"the audit chain head is no longer at #{head.seq}: append under the lock "
            "taken by audit_lock() in this transaction"
        )
    if connection.vendor == "postgresql":
        rows = [
            AuditEvent.from_db(connection.alias, _ATTNAMES, (*row[:7], event.payload, *row[8:]))
            for row, event in zip(values, prepared, strict=True)
        ]
    else:
        rows = [
            AuditEvent(**dict(zip(_ATTNAMES, (*row[:7], event.payload, *row[8:]), strict=True)))
            for row, event in zip(values, prepared, strict=True)
        ]
        AuditEvent.objects.bulk_create(rows)
        if refs:
            AuditEventItem.objects.bulk_create(
                [AuditEventItem(item_id=i, event_id=e) for i, e in refs], batch_size=1000
            )
    for row, event in zip(rows, prepared, strict=True):
        if event.dataset is not None:
            dataset_field.set_cached_value(row, event.dataset)
    head.seq, head.hash = seq, prev_hash
    return rows


# Verification -----------------------------------------------------------------------------

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
            AuditVerification.objects.filter(pk=1, anchored_seq__lt=written.seq).update(
                anchored_seq=written.seq, anchored_at=written.time
            )
            state.anchored_seq, state.anchored_at = written.seq, written.time
    return state
