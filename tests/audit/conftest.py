"""Helpers for the audit tests: build a chain, and lift the append-only triggers inside one
test's transaction so a test can tamper with the log the way an intruder with SQL access would
(the test's rollback, or the end of the transactional test, restores them)."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from corpus.models import AuditEvent
from corpus.services.audit import SYSTEM, audit_append_many, event_hash

TABLES = ("corpus_auditevent", "corpus_auditeventitem", "corpus_audithead")


def make_chain(count: int, *, start: int = 1) -> list[AuditEvent]:
    """``count`` events that name no items (so tampering leaves no dangling index rows)."""
    with transaction.atomic():
        return audit_append_many(
            events=[
                {
                    "actor": SYSTEM,
                    "action": "test.event",
                    "object_type": "test",
                    "object_id": str(i),
                    "payload": {"n": i, "note": f"event {i}"},
                }
                for i in range(start, start + count)
            ]
        )


def raw(sql: str, params: Any = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def move(old_seq: int, new_seq: int) -> None:
    raw("UPDATE corpus_auditevent SET seq = %s WHERE seq = %s", [new_seq, old_seq])


def forge(*, seq: int, prev_hash: str, note: str = "forged") -> AuditEvent:
    """Insert a well-formed event (correct hash over its content) at ``seq``."""
    event = AuditEvent.objects.get(seq=1)
    payload = {"n": seq, "note": note}
    digest = event_hash(
        seq=seq,
        time=event.time,
        actor=SYSTEM,
        action="test.event",
        object_type="test",
        object_id=str(seq),
        dataset_id=None,
        payload=payload,
        prev_hash=prev_hash,
    )
    forged = AuditEvent(
        seq=seq,
        time=event.time,
        actor=SYSTEM,
        action="test.event",
        object_type="test",
        object_id=str(seq),
        payload=payload,
        prev_hash=prev_hash,
        hash=digest,
    )
    forged.save(force_insert=True)
    return forged


def rehash_from(seq: int) -> str:
    """Recompute every hash from ``seq`` on (a careful rewrite); returns the new last hash."""
    prev = AuditEvent.objects.filter(seq=seq - 1).values_list("hash", flat=True).first()
    prev = prev or "0" * 64
    for row in AuditEvent.objects.filter(seq__gte=seq).order_by("seq").values():
        digest = event_hash(
            seq=row["seq"],
            time=row["time"],
            actor=row["actor"],
            action=row["action"],
            object_type=row["object_type"],
            object_id=row["object_id"],
            dataset_id=row["dataset_id"],
            payload=row["payload"],
            prev_hash=prev,
        )
        raw(
            "UPDATE corpus_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
            [prev, digest, row["seq"]],
        )
        prev = digest
    return prev


class Guards:
    def __init__(self) -> None:
        self.saved: list[tuple[str, str]] = []

    def lift(self) -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # ALTER TABLE refuses while deferred foreign-key checks are pending: run them.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for table in TABLES:
                    cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            else:
                cursor.execute(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name LIKE 'corpus_audit%'"
                )
                self.saved = cursor.fetchall()
                for name, _ in self.saved:
                    cursor.execute(f'DROP TRIGGER "{name}"')

    def restore(self) -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for table in TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            else:
                for _, sql in self.saved:
                    cursor.execute(sql)
                self.saved = []


@pytest.fixture
def guards(db) -> Iterator[Guards]:
    lifted = Guards()
    yield lifted
