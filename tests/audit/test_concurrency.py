"""Many writers at once still make one linear chain: appends serialize on the head row."""

import threading

import pytest
from django.db import connection, connections, transaction

from corpus.models import AuditEvent
from corpus.services.audit import SYSTEM, audit_append, audit_append_many
from corpus.services.audit_verify import audit_verify

WRITERS = 8
TRANSACTIONS = 25


def _writer(index: int, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        barrier.wait()
        for n in range(TRANSACTIONS):
            with transaction.atomic():
                if n % 5 == 4:
                    audit_append_many(
                        events=[
                            {
                                "actor": f"writer:{index}",
                                "action": "test.batch",
                                "object_type": "test",
                                "object_id": f"{index}-{n}-{k}",
                            }
                            for k in range(3)
                        ]
                    )
                else:
                    audit_append(
                        actor=f"writer:{index}",
                        action="test.single",
                        object_type="test",
                        object_id=f"{index}-{n}",
                    )
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connections.close_all()


def _run_writers() -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(WRITERS)
    threads = [threading.Thread(target=_writer, args=(i, barrier, errors)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.postgres
def test_concurrent_writers_on_postgresql_make_one_linear_chain(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: row locks between real concurrent sessions")
    with transaction.atomic():
        audit_append(actor=SYSTEM, action="test.start", object_type="test", object_id=0)

    errors = _run_writers()

    assert errors == []
    per_writer = (TRANSACTIONS // 5) * 3 + TRANSACTIONS - TRANSACTIONS // 5
    expected = 1 + WRITERS * per_writer
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, expected + 1)
    )
    assert audit_verify() == (expected, None)
    # Every writer's own events are in its own order along the chain.
    for index in range(WRITERS):
        ids = list(
            AuditEvent.objects.filter(actor=f"writer:{index}")
            .order_by("seq")
            .values_list("object_id", flat=True)
        )
        assert len(ids) == per_writer
        assert [i.split("-")[1] for i in ids] == sorted((i.split("-")[1] for i in ids), key=int)


def test_concurrent_writers_on_sqlite_make_one_linear_chain(transactional_db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite: IMMEDIATE transactions serialize the writers")

    errors = _run_writers()

    assert errors == []
    count = AuditEvent.objects.count()
    assert count == WRITERS * ((TRANSACTIONS // 5) * 3 + TRANSACTIONS - TRANSACTIONS // 5)
    assert audit_verify() == (count, None)
