"""``copy_rows``: the one COPY writer every bulk insert goes through (ingest's items and links,
score rows, audit events and their item rows, an export's selection).

COPY costs PostgreSQL a fraction of what multi-row INSERTs do, and psycopg renders its values
with its C dumpers. Tables and columns are named by the model and its fields' attnames, so a
rename cannot leave a writer behind. PostgreSQL only: callers keep their portable path
(``bulk_create``) for other databases.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.db import connections, models, router
from psycopg.adapt import Dumper
from psycopg.pq import Format


class _JsonbBinaryDumper(Dumper):
    """jsonb in COPY's binary format, for a column set_types() named jsonb: the format's version
    byte, then orjson's encoding. One call per value; psycopg's own dumper makes three and
    json.dumps is an order of magnitude slower than orjson."""

    format = Format.BINARY
    oid = 3802  # jsonb

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + orjson.dumps(obj)


def column_of(model: type[models.Model], name: str) -> str:
    """The column of ``model``'s concrete field ``name`` (a field name or attname)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise ValueError(f"{model.__name__}.{name} is not a concrete field")
    return field.column


def copy_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    binary_types: Sequence[str] | None = None,
) -> None:
    """``COPY`` ``rows`` (value sequences in the order of ``fields``, each a concrete field's
    name or attname) into ``model``'s table, in the caller's transaction. Values go as psycopg
    dumps them in COPY's text format, or, given ``binary_types`` (the PostgreSQL type of each
    column), in the binary format, where every value must be of its type's own Python class
    and JSON goes through orjson. Database errors surface as Django's (IntegrityError, ...)."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        raise RuntimeError("copy_rows() is PostgreSQL's COPY; use bulk_create elsewhere")
    quote = connection.ops.quote_name
    names = ", ".join(quote(column_of(model, name)) for name in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"
    if binary_types is not None:
        sql += " (FORMAT BINARY)"
    with connection.wrap_database_errors, connection.cursor() as cursor:
        raw = cursor.cursor
        if binary_types is not None:
            # For this cursor only, and only where a column's type says jsonb.
            raw.adapters.register_dumper(None, _JsonbBinaryDumper)
        with raw.copy(sql) as copy:
            if binary_types is not None:
                copy.set_types(list(binary_types))
            for row in rows:
                copy.write_row(row)
