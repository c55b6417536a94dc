"""Workers keep their database connection between tasks, as web workers do between requests,
and drop it when it failed or outlived CONN_MAX_AGE."""

import time

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from config.celery import app, close_old_connections


class _Request:
    def __init__(self, eager: bool) -> None:
        self.is_eager = eager


class _Task:
    def __init__(self, eager: bool = False) -> None:
        self.request = _Request(eager)


def test_celerys_django_fixup_reuses_connections():
    assert DjangoWorkerFixup(app).db_reuse_max >= 100


@pytest.mark.django_db(transaction=True)
def test_a_healthy_young_connection_is_kept_after_a_task():
    connection.ensure_connection()
    raw = connection.connection
    connection.close_at = time.monotonic() + 60

    close_old_connections(sender=_Task())

    assert connection.connection is raw


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("why", ["errored", "too old"])
def test_a_failed_or_old_connection_is_closed_after_a_task(why):
    if why == "errored" and connection.vendor != "postgresql":
        pytest.skip("Django treats an SQLite connection as always usable")
    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60
    if why == "errored":
        connection.errors_occurred = True
        connection.connection.close()  # the server went away
    else:
        connection.close_at = time.monotonic() - 1

    close_old_connections(sender=_Task())

    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_leaves_its_callers_connection_alone():
    connection.ensure_connection()
    raw = connection.connection
    connection.close_at = time.monotonic() - 1

    close_old_connections(sender=_Task(eager=True))

    assert connection.connection is raw
