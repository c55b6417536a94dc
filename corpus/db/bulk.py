"""Bulk INSERT and lookup for hot paths: PostgreSQL ``COPY``, with ids reserved from the table's
sequence, and ``= ANY(array)`` lookups.

``QuerySet.bulk_create`` spends most of its time in Python: a model instance per row, then every
value of every field prepared through the field API and rendered into one large SQL statement.
For the ingest of 1000 items of 1 KB that was about 200 ms of CPU per request, several times what
PostgreSQL needs to store them (bench/RESULTS.md). Here rows are plain dicts keyed by field
``attname`` (fields left out take their default) and go through ``COPY ... FROM STDIN``
(``corpus.db.copy.copy_rows``), whose values psycopg renders with its C dumpers.

When every column is of a type listed in ``_BINARY`` (the item table's are), COPY uses the binary
format: PostgreSQL then reads each value by its length instead of scanning it for delimiters and
escapes and parsing it from text (timestamps, numbers, the 1 KB texts), about 30% of the
backend's CPU for the COPY, and the rows are built with less Python per value (JSON goes to
orjson without a wrapper). Other tables keep the text format.

Ids come from ``nextval`` on the table's own sequence, as an INSERT would take them, so they stay
unique and increasing; a caller that holds a lock while inserting (ingest holds the audit lock)
still gets ids in commit order. Other databases (SQLite) use ``bulk_create``.

``values_in`` is the lookup side: ``filter(x__in=...)`` over a thousand keys costs the ORM and
psycopg a placeholder per key (building the lookup, then splitting and quoting the SQL, about
4 ms of CPU per ingest request); one array parameter per column costs about 1 ms.
"""

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from functools import partial
from operator import attrgetter, is_not, itemgetter
from typing import Any, cast

import orjson
from django.db import connections, models, router
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone

from corpus.db.copy import column_of, copy_rows

# Field types whose Python value psycopg writes in COPY's text format exactly as Django would
# store it; any other field goes through its own get_db_prep_save.
_AS_IS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.DateTimeField,
    models.ForeignKey,
)


def _json(value: Any) -> str | None:
    # jsonb parses the text; orjson is an order of magnitude faster than json.dumps.
    return None if value is None else orjson.dumps(value).decode()


def _choice(value: Any) -> Any:
    # A TextChoices member is a str subclass: store its value, never its enum name.
    return value if value is None or type(value) is str else str(value)


# Fields COPY's binary format takes, with the column type psycopg dumps their values as. The
# value psycopg gets must then be of the type's own Python class (int, str, float, bool, aware
# datetime, JSON-serializable object), which is what these fields' values are; the converters
# below settle the exceptions (choices members, naive datetimes).
_BINARY = {
    "bigint",
    "integer",
    "smallint",
    "varchar",
    "text",
    "jsonb",
    "boolean",
    "double precision",
    "timestamp with time zone",
}
_BINARY_FIELDS = (*_AS_IS, models.JSONField)


def _column_type(field: models.Field, connection: Any) -> str | None:
    """The binary COPY type of ``field``'s column, or None when it goes as text."""
    if not isinstance(field, _BINARY_FIELDS) or getattr(field, "encoder", None) is not None:
        return None
    db_type = (field.db_type(connection) or "").split("(")[0]
    return db_type if db_type in _BINARY else None


def _aware(value: Any) -> Any:
    # As Django stores a naive datetime (or a date) under USE_TZ: in the default time zone.
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else timezone.make_aware(value)
    if isinstance(value, date):
        return timezone.make_aware(datetime.combine(value, time()))
    return value


def _needed(convert: Callable[[Any], Any], column: list[Any]) -> bool:
    """Whether ``convert`` changes any value of ``column``. Checked per column with C loops
    (map, set, all), which costs a fraction of a Python call per value: ingest's choices are
    plain strings and its datetimes aware, so their converters do not run at all."""
    if convert is _choice:
        return not set(map(type, column)) <= {str, type(None)}
    if convert is _aware:
        present = list(filter(partial(is_not, None), column))
        return not (
            set(map(type, present)) <= {datetime} and all(map(attrgetter("tzinfo"), present))
        )
    return True


def _converter(field: models.Field, connection: Any) -> Callable[[Any], Any] | None:
    """How a value of ``field`` becomes a COPY value; None when it goes as it is."""
    if isinstance(field, models.JSONField) and field.encoder is None:
        return _json
    if isinstance(field, models.CharField | models.TextField) and field.choices:
        return _choice
    if isinstance(field, _AS_IS):
        return None
    return lambda v: field.get_db_prep_save(v, connection)


def _binary_converter(field: models.Field) -> Callable[[Any], Any] | None:
    """How a value of ``field`` becomes a binary COPY value; None when it goes as it is. JSON
    goes as it is too: _JsonbBinaryDumper encodes it."""
    if isinstance(field, models.CharField | models.TextField) and field.choices:
        return _choice
    if isinstance(field, models.DateTimeField):
        return _aware
    return None


def bulk_insert(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys, each a field ``attname``) in the caller's
    transaction; returns the new primary keys in row order when the model has an auto primary
    key, else an empty list. Database errors surface as Django's (IntegrityError, ...)."""
    if not rows:
        return []
    db = router.db_for_write(model)
    connection = connections[db]
    meta = model._meta
    pk = meta.pk
    auto_pk = isinstance(pk, models.AutoField)
    given = rows[0].keys()
    fields = [
        f
        for f in meta.concrete_fields
        if f.column
        and not getattr(f, "generated", False)
        and not (auto_pk and f is pk)
        # A database default is the database's to fill in.
        and (f.attname in given or f.db_default is NOT_PROVIDED)
    ]
    unknown = set(given) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {sorted(unknown)}")
    if connection.vendor != "postgresql":
        created = model._default_manager.using(db).bulk_create(
            [model(**row) for row in rows], batch_size=500
        )
        return [obj.pk for obj in created] if auto_pk else []
    present = [f for f in fields if f.attname in given]
    missing = [f for f in fields if f.attname not in given]
    types = [_column_type(f, connection) for f in present + missing]
    binary = all(types) and (not auto_pk or _column_type(pk, connection) is not None)

    def converter(f: models.Field) -> Callable[[Any], Any] | None:
        return _binary_converter(f) if binary else _converter(f, connection)

    pick = itemgetter(*(f.attname for f in present))
    single = len(present) == 1
    converters = [
        (position, convert)
        for position, f in enumerate(present)
        if (convert := converter(f)) is not None
        and (not binary or _needed(convert, list(map(itemgetter(f.attname), rows))))
    ]
    # Defaults of the fields left out are taken once per call: for ingest they are constants or
    # fresh empty containers (state_reason, decided_by, ...), never per-row values.
    tail = []
    for f in missing:
        convert = converter(f)
        default = f.get_default()
        tail.append(default if convert is None else convert(default))
    names = [f.attname for f in present] + [f.attname for f in missing]
    ids: list[int] = []
    if auto_pk:
        with connection.cursor() as cursor:
            # The sequence is looked up once, in a subquery: as an argument of nextval() the
            # (stable, not immutable) pg_get_serial_sequence ran for every row, about 2.5 ms of
            # the backend's CPU per 1,000 ids.
            cursor.execute(
                "SELECT nextval((SELECT pg_get_serial_sequence(%s, %s))::regclass) "
                "FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(rows)],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
        names.insert(0, pk.attname)
        types.insert(0, _column_type(pk, connection))

    def values() -> Iterator[list[Any]]:
        # Values are picked out of each row in one C call; only the few fields that need it go
        # through a Python converter. This loop is the hot path of ingest.
        for position, row in enumerate(rows):
            out = [pick(row)] if single else list(pick(row))
            for index, convert in converters:
                out[index] = convert(out[index])
            if auto_pk:
                out.insert(0, ids[position])
            yield out + tail if tail else out

    copy_rows(model, names, values(), binary_types=cast(list[str], types) if binary else None)
    return ids


def values_in(model: type[models.Model], fields: Sequence[str], **where: Any) -> list[tuple]:
    """``model.objects.filter(**where).values_list(*fields)`` as a list, for the lookups of a
    bulk write. ``where`` takes only ``name`` (equals), ``name__in`` (a collection; on PostgreSQL
    one array parameter, ``= ANY(%s)``) and ``name__isnull`` (a bool), each ``name`` a concrete
    field's name or attname; ``fields`` are attnames."""
    for key in where:
        if key.partition("__")[2] not in ("", "in", "isnull"):
            raise ValueError(f"values_in does not take the lookup {key!r}")
    db = router.db_for_read(model)
    connection = connections[db]
    if connection.vendor != "postgresql":
        return list(model._default_manager.using(db).filter(**where).values_list(*fields))
    meta = model._meta
    quote = connection.ops.quote_name
    conditions: list[str] = []
    params: list[Any] = []
    for key, value in where.items():
        name, _, lookup = key.partition("__")
        column = quote(column_of(model, name))
        if lookup == "":
            conditions.append(f"{column} = %s")
            params.append(value)
        elif lookup == "in":
            if not isinstance(value, Collection) or isinstance(value, str | bytes):
                raise TypeError(f"{key} takes a collection of values")
            if not value:
                return []  # as the ORM: an empty IN matches nothing, without a query
            conditions.append(f"{column} = ANY(%s)")
            params.append(list(value))
        else:  # isnull
            conditions.append(f"{column} IS {'' if value else 'NOT '}NULL")
    columns = ", ".join(quote(column_of(model, f)) for f in fields)
    sql = f"SELECT {columns} FROM {quote(meta.db_table)}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def values_by_key(
    model: type[models.Model],
    key: Sequence[str],
    keys: Collection[tuple],
    fields: Sequence[str],
    **where: Any,
) -> list[tuple]:
    """For each tuple of ``keys`` (values of the ``key`` attnames, a unique key of ``model``)
    that matches a row also matching ``where`` (equals and ``__isnull`` only), the key's values
    followed by the row's ``fields``.

    On PostgreSQL each key is one probe of the unique index: a LATERAL subquery with equality on
    every column of the key, which the planner can only answer with that index, whatever its
    statistics say. ``values_in``'s ``a = ANY(...) AND b = ANY(...)`` is planned on statistics,
    and on a table that grew since it was last analyzed the planner used the index for ``a``
    alone and filtered every row of the source (589 ms per ingest request at 100k items, where
    the probes take about 2 ms; bench/RESULTS.md, "Ingest as the corpus grows")."""
    for name in where:
        if name.partition("__")[2] not in ("", "isnull"):
            raise ValueError(f"values_by_key does not take the lookup {name!r}")
    keys = [tuple(k) for k in keys]
    if not keys:
        return []
    db = router.db_for_read(model)
    connection = connections[db]
    meta = model._meta
    if connection.vendor != "postgresql":
        wanted = set(keys)
        lookups = {f"{column}__in": {k[i] for k in keys} for i, column in enumerate(key)}
        rows = model._default_manager.using(db).filter(**lookups, **where)
        return [row for row in rows.values_list(*key, *fields) if tuple(row[: len(key)]) in wanted]
    quote = connection.ops.quote_name
    conditions: list[str] = []
    params: list[Any] = [[k[i] for k in keys] for i in range(len(key))]
    for i, column in enumerate(key):
        conditions.append(f"t.{quote(column_of(model, column))} = k.c{i}")
    for name, value in where.items():
        column, _, lookup = name.partition("__")
        target = f"t.{quote(column_of(model, column))}"
        if lookup == "isnull":
            conditions.append(f"{target} IS {'' if value else 'NOT '}NULL")
        else:
            conditions.append(f"{target} = %s")
            params.append(value)
    # Integers as bigint, the rest as text: no length or precision, so nothing is truncated.
    unnest = ", ".join(
        "%s::bigint[]" if isinstance(keys[0][i], int) else "%s::text[]" for i in range(len(key))
    )
    aliases = ", ".join(f"c{i}" for i in range(len(key)))
    inner = ", ".join(quote(column_of(model, f)) for f in fields)
    outer = ", ".join(f"t.{quote(column_of(model, f))}" for f in fields)
    sql = (
        f"SELECT {', '.join(f'k.c{i}' for i in range(len(key)))}, {outer} "
        f"FROM unnest({unnest}) AS k({aliases}) "
        f"CROSS JOIN LATERAL (SELECT {inner} FROM {quote(meta.db_table)} t "
        f"WHERE {' AND '.join(conditions)} LIMIT 1) t"
    )
    # The where params follow the arrays in the SQL text: arrays first, then where's values.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
