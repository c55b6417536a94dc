"""Many values as few parameters: PostgreSQL array literals and ``unnest``, SQLite VALUES lists.

psycopg adapts a list parameter element by element in Python; a statement with a placeholder per
value costs the driver a parse of every placeholder. These helpers turn a column of values into
one parameter (PostgreSQL) so a batch of a thousand rows is a short statement.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of ints, floats, strings or None, for one ``%s::type[]``.

    psycopg adapts a list parameter element by element in Python, about 4 us each: with several
    500-element arrays per batch that was a tenth of the batch's CPU. One string is adapted at
    once and the server parses it. Strings are double-quoted with backslash escapes, so any
    text (commas, braces, quotes) survives; floats use repr, which round-trips exactly.
    """
    out = []
    for value in values:
        if value is None:
            out.append("NULL")
        elif isinstance(value, str):
            out.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, bool):
            raise TypeError("no booleans in array literals")
        elif isinstance(value, int):
            out.append(str(int(value)))
        elif isinstance(value, float):
            out.append(repr(float(value)))
        elif isinstance(value, datetime):
            out.append('"' + value.isoformat() + '"')
        else:
            raise TypeError(f"cannot put {type(value).__name__} in an array literal")
    return "{" + ",".join(out) + "}"


def pg_int_array(values: Iterable[int]) -> str:
    """``pg_array`` of a column of ints (the ids), without its per-value type dispatch."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


# What SQLite must read as text: a CAST to these names would give the value NUMERIC affinity
# (a timestamp's text would become its year), and these are stored as text there.
_SQLITE_TYPES = {"TIMESTAMPTZ": "TEXT", "JSONB": "TEXT"}


def _sql_type(sql_type: str) -> str:
    """PostgreSQL's type name as the connection's database spells it."""
    if connection.vendor == "postgresql":
        return sql_type
    return _SQLITE_TYPES.get(sql_type, sql_type)


def values_source(rows: list[tuple[Any, ...]], types: list[str]) -> tuple[str, list[Any]]:
    """A ``WITH v(...) AS (...)`` source for rows of the given SQL types, and its parameters.

    PostgreSQL takes one array parameter per column: a short statement whatever the row count,
    which its driver parses once (a VALUES list of 2,000 placeholders cost milliseconds of
    client CPU to parse on every batch). SQLite takes a VALUES list. Types are PostgreSQL's
    names (``TIMESTAMPTZ`` and ``JSONB`` included; their values as the field's
    ``get_db_prep_save`` gives them, JSON as text).
    """
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        columns = zip(*rows, strict=True)
        return f"SELECT * FROM unnest({arrays})", [
            pg_int_array(c) if t == "BIGINT" else pg_array(c)
            for c, t in zip(columns, types, strict=True)
        ]
    row = "(" + ", ".join(f"CAST(%s AS {_sql_type(t)})" for t in types) + ")"
    return f"VALUES {', '.join([row] * len(rows))}", [value for r in rows for value in r]


def typed_param(sql_type: str) -> str:
    """One parameter marker (``%s``) cast to ``sql_type``, PostgreSQL's name for it as
    ``values_source`` takes it (spelt for SQLite there)."""
    return f"CAST(%s AS {_sql_type(sql_type)})"
