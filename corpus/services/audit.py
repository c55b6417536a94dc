"""The hash-chained, append-only audit log.

Every state change calls ``audit_append`` inside its own transaction. Appends are serialized on
the single ``AuditHead`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions
are serialized by the database), so the chain never forks: each event's ``prev_hash`` is the
hash of the event before it.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from corpus.models import ApiToken, AuditEvent, AuditHead, Dataset

GENESIS_HASH = "0" * 64
SYSTEM = "system"


def actor_for_user(user: Any) -> str:
    return f"user:{user.pk}:{user.get_username()}"


def actor_for_token(token: ApiToken) -> str:
    return f"token:{token.pk}:{token.name}"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_time(time: datetime) -> str:
    return time.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    time: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    dataset_id: int | None,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "time": format_time(time),
        "actor": actor,
        "action": action,
        "object": f"{object_type}:{object_id}",
        "dataset": dataset_id,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


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
    head = audit_lock()
    payload = payload or {}
    # Round-trip through JSON so the hash is computed over exactly what the database returns.
    payload = json.loads(canonical_json(payload))
    seq = head.seq + 1
    now = timezone.now()
    digest = event_hash(
        seq=seq,
        time=now,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        dataset_id=dataset.pk if dataset else None,
        payload=payload,
        prev_hash=head.hash,
    )
    event = AuditEvent(
        seq=seq,
        time=now,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        dataset=dataset,
        payload=payload,
        prev_hash=head.hash,
        hash=digest,
    )
    event.save(force_insert=True)
    AuditHead.objects.filter(pk=1).update(seq=seq, hash=digest)
    head.seq, head.hash = seq, digest
    return event


def audit_verify(*, from_seq: int = 1, batch_size: int = 5000) -> tuple[int, str | None]:
    """Recompute the chain from ``from_seq`` in constant memory.

    Returns (events checked, None) when intact, else (events checked, first problem).
    """
    prev_hash = GENESIS_HASH
    expected_seq = from_seq
    if from_seq > 1:
        before = AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first()
        if before is None:
            return 0, f"event #{from_seq - 1} is missing"
        prev_hash = before
    checked = 0
    last_seq = from_seq - 1
    while True:
        rows = list(
            AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq")[:batch_size].values()
        )
        if not rows:
            break
        for row in rows:
            if row["seq"] != expected_seq:
                return checked, f"event #{expected_seq} is missing (next is #{row['seq']})"
            if row["prev_hash"] != prev_hash:
                return checked, f"event #{row['seq']} does not link to the event before it"
            digest = event_hash(
                seq=row["seq"],
                time=row["time"],
                actor=row["actor"],
                action=row["action"],
                object_type=row["object_type"],
                object_id=row["object_id"],
                dataset_id=row["dataset_id"],
                payload=row["payload"],
                prev_hash=row["prev_hash"],
            )
            if digest != row["hash"]:
                return checked, f"event #{row['seq']} was altered (its hash does not match)"
            prev_hash = row["hash"]
            expected_seq += 1
            checked += 1
        last_seq = rows[-1]["seq"]
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None and head.seq != expected_seq - 1 and from_seq <= head.seq:
        return checked, f"the chain ends at #{expected_seq - 1} but its head says #{head.seq}"
    return checked, None
