"""Lifting SQLite's audit triggers around the flush that ends a transactional test.

On SQLite the append-only triggers refuse DELETE, and Django ends a transactional test by
deleting every row of every table (PostgreSQL truncates, which row triggers do not see). The
root conftest wraps each test's teardown in ``sqlite_guards_lifted``: the triggers are dropped
just before the flush and recreated, from their own stored SQL, just after it.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pytest_django.plugin import blocking_manager_key


def _transactional(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    if {"transactional_db", "live_server", "django_db_reset_sequences"} & set(names):
        return True
    marker = item.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


def _test_database(connection) -> bool:
    """Only ever touch the test database (a test that failed before setting it up leaves the
    connection pointing at the developer's own)."""
    settings = connection.settings_dict
    return str(settings["NAME"]) == str((settings.get("TEST") or {}).get("NAME"))


@contextmanager
def sqlite_guards_lifted(item: pytest.Item) -> Iterator[None]:
    from django.db import connection

    if not _transactional(item) or connection.vendor != "sqlite":
        yield
        return
    blocker = item.config.stash[blocking_manager_key]
    with blocker.unblock():
        if not _test_database(connection):
            saved: list[tuple[str, str]] = []
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name LIKE 'corpus_audit%'"
                )
                saved = cursor.fetchall()
                for name, _ in saved:
                    cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    try:
        yield
    finally:
        if saved:
            with blocker.unblock(), connection.cursor() as cursor:
                cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                present = {name for (name,) in cursor.fetchall()}
                for name, sql in saved:
                    if name not in present:
                        cursor.execute(sql)
