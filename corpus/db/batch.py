"""Statements sent together, and the SQL that differs between PostgreSQL and SQLite.

A triage keystroke is a handful of small statements, and what its time mostly waits on is the
round trips to the server. On PostgreSQL with psycopg's client-side parameter binding (Django's
default) several statements can go as one query string: one round trip, each statement's rows
read back in order (``run_batch``). ``StatementBatch`` builds on that: a write that nothing reads
back at once is added to the batch and rides the next round trip; elsewhere (SQLite, server-side
binding) it runs at once. Either way the statements reach the database in the order the code
gave them: while a batch is open (``ordered()``) any other query on the connection, an ORM one
included, first sends what is pending.

The vendor branches of the review wing live here too (``for_update``, ``id_array``, ``in_ids``),
so the services and their SQL say what they need and this module says how each database spells
it.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from corpus.db.arrays import pg_int_array

Statement = tuple[str, list[Any]]
Rows = list[tuple[Any, ...]]
Then = Callable[[Rows], None]


def _connection(using: str | None) -> BaseDatabaseWrapper:
    return connections[using or DEFAULT_DB_ALIAS]


def one_string_batches(using: str | None = None) -> bool:
    """Whether several statements can go as one query string: PostgreSQL with client-side
    parameter binding, Django's default (server-side binding takes one statement at a time)."""
    connection = _connection(using)
    return (
        connection.vendor == "postgresql"
        and connection.settings_dict["OPTIONS"].get("server_side_binding") is not True
    )


def run_batch(statements: Sequence[Statement], using: str | None = None) -> list[Rows]:
    """Run statements in order in the caller's transaction and return each one's rows: one
    round trip where ``one_string_batches()``, one by one elsewhere. Every statement must return
    rows (SELECT, or a write with RETURNING)."""
    if not statements:
        return []
    connection = _connection(using)
    with connection.cursor() as cursor:
        if one_string_batches(using):
            sql = "; ".join(statement for statement, _ in statements)
            cursor.execute(sql, [p for _, params in statements for p in params])
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
            return results
        results = []
        for statement, params in statements:
            cursor.execute(statement, params)
            results.append(cursor.fetchall())
        return results


class StatementBatch:
    """Writes that ride the next round trip (see the module docstring). ``add`` takes a
    statement and, optionally, what to do with its rows (``then``: called once they are back,
    in order; raising there rolls the caller's transaction back)."""

    def __init__(self, using: str | None = None) -> None:
        self.connection = _connection(using)
        self.using = self.connection.alias
        # Whether added statements wait for the next round trip (else they run at once).
        self.deferred = one_string_batches(self.using)
        self._pending: list[tuple[Statement, Then | None]] = []

    def add(self, statement: Statement, then: Then | None = None) -> None:
        """Send ``statement`` with the next round trip (at once where statements cannot share
        one); ``then`` gets its rows."""
        self._pending.append((statement, then))
        if not self.deferred:
            self.flush()

    def send(self, *statements: Statement) -> list[Rows]:
        """Send what is pending and ``statements``, in that order, in one round trip where the
        database allows; the rows of ``statements``."""
        pending, self._pending = self._pending, []
        rows = run_batch([s for s, _ in pending] + list(statements), self.using)
        for (_, then), written in zip(pending, rows, strict=False):
            if then is not None:
                then(written)
        return rows[len(pending) :]

    def flush(self) -> None:
        """Send what is pending now."""
        if self._pending:
            self.send()

    @contextmanager
    def ordered(self) -> Iterator[None]:
        """While open, any other query on the connection first sends what is pending, so the
        database sees every statement in the order the code gave it."""

        def before(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
            self.flush()
            return execute(sql, params, many, context)

        with self.connection.execute_wrapper(before):
            yield


# --- what PostgreSQL and SQLite spell differently ------------------------------------------------


def for_update(
    *, of: str | None = None, skip_locked: bool = False, using: str | None = None
) -> str:
    """The row-lock clause of a SELECT (`` FOR UPDATE [OF t] [SKIP LOCKED]``). Empty on SQLite,
    which has no row locks: its write transactions (BEGIN IMMEDIATE) are serialized whole."""
    if _connection(using).vendor != "postgresql":
        return ""
    return " FOR UPDATE" + (f" OF {of}" if of else "") + (" SKIP LOCKED" if skip_locked else "")


def id_array(subquery: str, column: str, using: str | None = None) -> str:
    """An expression for the ids ``subquery`` selects (its ``column``), in its order, as one
    value; ``id_list`` reads it back."""
    if _connection(using).vendor == "postgresql":
        return f"ARRAY({subquery})"
    return f"(SELECT json_group_array({column}) FROM ({subquery}))"


def id_list(value: Any) -> list[int]:
    """The ids of an ``id_array`` value (a list on PostgreSQL, JSON text on SQLite)."""
    if isinstance(value, str):
        value = json.loads(value)
    return [int(i) for i in value or []]


def in_ids(column: str, using: str | None = None) -> str:
    """A condition that ``column`` is one of the ids of one parameter (``ids_param``): a
    selection of 500 items is a short statement whose ids the server parses, not 500
    parameters the driver adapts one by one."""
    if _connection(using).vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def ids_param(ids: Iterable[int], using: str | None = None) -> str:
    """The parameter of an ``in_ids`` condition: an array literal on PostgreSQL, JSON on
    SQLite."""
    if _connection(using).vendor == "postgresql":
        return pg_int_array(ids)
    return "[" + ",".join(map(str, map(int, ids))) + "]"
