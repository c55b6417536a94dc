"""Model instances from the rows of hand-written SQL, as the ORM would build them.

The statements every triage request runs are written by hand (``review/sql.py``: compiling a
queryset with correlated subqueries costs more Python than the database takes to answer). Their
rows become model instances here: each value through the converters the ORM would apply (text to
datetime or JSON on SQLite, ...), then ``Model.from_db``, so an instance is indistinguishable
from one a queryset returned (saved state, deferred fields).
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection, models


@cache
def _loader(
    model: type[models.Model], vendor: str, exclude: tuple[str, ...] = ()
) -> tuple[list[Any], list[str], list[tuple[Any, list[Any]]]]:
    """A model's concrete fields (less ``exclude``, left deferred), their attribute names and,
    per field, the converters the ORM would apply to the value the driver returns."""
    fields = [f for f in model._meta.concrete_fields if f.name not in exclude]
    converters = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        funcs = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        converters.append((column, funcs))
    return fields, [f.attname for f in fields], converters


def width(model: type[models.Model], exclude: tuple[str, ...] = ()) -> int:
    """How many values of a row ``select_columns(model, ..., exclude)`` selects."""
    return len(_loader(model, connection.vendor, exclude)[0])


def select_columns(
    model: type[models.Model], alias: str = "", exclude: tuple[str, ...] = ()
) -> str:
    """``alias.col1, alias.col2, ...``: the model's concrete columns, less ``exclude`` (without
    an alias, the bare names: what a RETURNING clause takes)."""
    fields, _, _ = _loader(model, connection.vendor, exclude)
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{connection.ops.quote_name(f.column)}" for f in fields)


def model_from_row(
    model: type[models.Model], values: Sequence[Any], exclude: tuple[str, ...] = ()
) -> Any:
    """An instance from the values ``select_columns`` selected (excluded fields are deferred:
    reading one costs a query)."""
    _, attnames, converters = _loader(model, connection.vendor, exclude)
    row = []
    for value, (column, funcs) in zip(values, converters, strict=True):
        for func in funcs:
            value = func(value, column, connection)
        row.append(value)
    return model.from_db(connection.alias, attnames, row)


@cache
def _field_loader(model: type[models.Model], vendor: str, name: str) -> tuple[Any, list[Any]]:
    """The selected column of ``model``'s field ``name`` and its converters (``_loader``'s)."""
    fields, _, converters = _loader(model, vendor)
    for field, loader in zip(fields, converters, strict=True):
        if name in (field.name, field.attname):
            return loader
    raise ValueError(f"{model.__name__} has no concrete field {name!r}")


def field_value(model: type[models.Model], name: str, value: Any) -> Any:
    """One selected value of ``model``'s field ``name`` as the ORM would return it."""
    column, funcs = _field_loader(model, connection.vendor, name)
    for func in funcs:
        value = func(value, column, connection)
    return value
