"""The unit of work of the claim / decide / undo / bulk path: ``with write_batch() as wb:``.

It opens the transaction and takes the audit chain lock first, always: the lock's statement is
the first one the transaction sends, and nothing else can reach the database before it
(``StatementBatch.ordered``), so "the audit chain lock, then rows" holds by construction, for
every service that takes ``wb``. The feed numbers approvals under that lock and an export's
snapshot holds it while it fixes its items, which is why every state change must take it first.

- ``wb.add(statement, then)``: a write that rides the next round trip on PostgreSQL (with the
  reads the service sends next, ``wb.send``) and runs at once on SQLite;
- ``wb.audit(...)``: an event, appended with the others once, at commit (one hashing pass, one
  head update), under the lock taken at the start;
- ``wb.head``: the locked audit chain head.

Batches nest: a service that opens one inside another's joins it.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.db import connection, transaction

from corpus.db.batch import Rows, StatementBatch, for_update
from corpus.models import AuditHead, Dataset
from corpus.services.audit import GENESIS_HASH, audit_append_many, audit_lock

_open = threading.local()


@cache
def _head_sql(vendor: str) -> list[str]:
    """What audit_lock() runs, as plain statements that can join a batch. On PostgreSQL, create
    the head row if it is missing (the chain's first event ever, or tables just emptied), then
    lock it. Without the insert, a batch sent before the row exists would lock nothing at its
    start, lock rows, and only then wait for the head: the lock order would not hold, and two
    such units of work could deadlock (a claim and a decision did). With it, a second
    transaction waits at the insert for the first one's row, and the lock that follows (a new
    statement, reading anew) takes it. SQLite serializes write transactions whole (IMMEDIATE):
    the lock alone, and ``audit_lock()`` creates the row the once it is missing."""
    table = connection.ops.quote_name(AuditHead._meta.db_table)
    lock = f"SELECT id, seq, hash FROM {table} WHERE id = 1{for_update()}"
    if vendor != "postgresql":
        return [lock]
    create = (
        f"INSERT INTO {table} (id, seq, hash) VALUES (1, 0, %s)"
        " ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    return [create, lock]


class WriteBatch(StatementBatch):
    def __init__(self) -> None:
        super().__init__()
        self._events: list[dict[str, Any]] = []
        self._head: AuditHead | None = None

    def _lock(self) -> None:
        """Add the audit chain lock's statements, the batch's first ones."""
        *create, lock = _head_sql(self.connection.vendor)
        for statement in create:
            self.add((statement, [GENESIS_HASH]))
        self.add((lock, []), then=self._locked)

    def _locked(self, rows: Rows) -> None:
        if rows:
            self._head = AuditHead.from_db(self.using, ["id", "seq", "hash"], rows[0])
        else:  # SQLite, before the chain's first event ever
            self._head = audit_lock()

    @property
    def head(self) -> AuditHead:
        """The audit chain head, locked by this transaction."""
        self.flush()
        assert self._head is not None  # the lock is the batch's first statement
        return self._head

    def audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str | int,
        payload: dict[str, Any] | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        """An audit event, appended at commit with the batch's others (``audit_append``'s
        arguments; ``payload`` may still be filled in until then, by a ``then``)."""
        self._events.append(
            {
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "payload": payload,
                "dataset": dataset,
            }
        )

    def _commit(self) -> None:
        self.flush()
        if self._events:
            events, self._events = self._events, []
            audit_append_many(events=events, head=self.head, returning=False)


@contextmanager
def write_batch() -> Iterator[WriteBatch]:
    """Open the unit of work (see the module docstring); inside another, join it."""
    current: WriteBatch | None = getattr(_open, "batch", None)
    if current is not None and current.connection.in_atomic_block:
        yield current
        return
    with transaction.atomic():
        wb = WriteBatch()
        _open.batch = wb
        try:
            with wb.ordered():
                wb._lock()
                yield wb
                wb._commit()
        finally:
            _open.batch = None
