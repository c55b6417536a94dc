"""The hash-chained, append-only audit log.

Every state change calls ``audit_append`` (or ``audit_append_many``) inside its own transaction.
Appends are serialized on the single ``AuditHead`` row (``SELECT ... FOR UPDATE`` on PostgreSQL;
on SQLite every write transaction is ``BEGIN IMMEDIATE``, so the database serializes them), so
the chain never forks: each event's ``prev_hash`` is the hash of the event before it, and the
head row names the last one.

Verification (recomputing the chain, anchors) lives in ``corpus.services.audit_verify``.
"""

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from corpus.db.copy import copy_rows
from corpus.models import (
    ApiToken,
    AuditEvent,
    AuditEventItem,
    AuditHead,
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
        "matched",
    }
)
MAX_ACTOR = 200
MAX_NAME = 64


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


def storable_text(value: str) -> str:
    """``value`` with what PostgreSQL cannot store written as escapes: a NUL as the six
    characters ``\\u0000``, a lone surrogate as ``\\udXXX``. Audit events record what was
    attempted (a username with a NUL in it, say): they must never fail to be stored."""
    if "\x00" in value:
        value = value.replace("\x00", "\\u0000")
    if value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


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
    object_id = storable_text(str(object_id))
    actor = storable_text(actor) if isinstance(actor, str) else actor
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
    try:
        text = canonical_json(payload or {})
    except UnicodeEncodeError:  # a lone surrogate somewhere in the payload
        text = b"\\u0000"
    if b"\\u0000" in text:  # a NUL (or a false alarm: a literal backslash-u0000)
        text = canonical_json(_storable(payload or {}))
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
    *,
    events: Sequence[Mapping[str, Any]],
    head: AuditHead | None = None,
    returning: bool = True,
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

    ``returning=False``: the caller does not use the events (a unit of work appending at
    commit), so on PostgreSQL no model instance is built for them (a 500-item bulk decision
    spent about 5 ms on that) and the result is empty.
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
    if connection.vendor == "postgresql" and not returning:
        rows = []
    elif connection.vendor == "postgresql":
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
    for row, event in zip(rows, prepared if rows else (), strict=True):
        if event.dataset is not None:
            dataset_field.set_cached_value(row, event.dataset)
    head.seq, head.hash = seq, prev_hash
    _anchor_when_due(seq)
    return rows


# The head seq at which this process last asked for an anchor. Per process, so an append costs
# no query for it; the anchor task then reads the committed head and writes one line if the
# file is behind (several processes asking at once write one anchor, the rest find it there).
_anchor_asked_at = 0


def _anchor_when_due(seq: int) -> None:
    """Every ``SYNTHGATE_AUDIT_ANCHOR_EVENTS`` events, ask for an anchor once this commits
    (beat asks every ``SYNTHGATE_AUDIT_ANCHOR_SECONDS`` too, for a quiet chain)."""
    global _anchor_asked_at
    every = settings.SYNTHGATE_AUDIT_ANCHOR_EVENTS
    if every <= 0 or seq - _anchor_asked_at < every:
        return
    _anchor_asked_at = seq
    transaction.on_commit(_anchor_request)


def _anchor_request() -> None:
    from celery import current_app

    try:
        current_app.send_task("corpus.tasks.audit_anchor_task")
    except Exception:  # noqa: BLE001 - after commit: the periodic anchor still comes
        logger.warning("could not ask for an audit anchor; the periodic one will follow")


_MOVED_TO_VERIFY = frozenset(
    {
        "ALERT_CACHE_KEY",
        "GUARD_TRIGGERS",
        "AuditReport",
        "audit_check",
        "audit_guards_missing",
        "audit_verify",
        "audit_verify_incremental",
    }
)


def __getattr__(name: str) -> Any:
    """Verification moved to ``corpus.services.audit_verify``; code written before the split
    that imports it from here still gets it (imported lazily: that module imports this one)."""
    if name in _MOVED_TO_VERIFY:
        from corpus.services import audit_verify

        return getattr(audit_verify, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
