"""The unit of work of the review path (``corpus.services.write_batch``) and the statement batch
under it (``corpus.db.batch``)."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from corpus.db.batch import StatementBatch, one_string_batches
from corpus.models import AuditEvent, AuditHead, FeedEntry, Item
from corpus.services.write_batch import write_batch
from tests.factories import ItemFactory


def _select_state(item_id):
    table = connection.ops.quote_name(Item._meta.db_table)
    return f"SELECT state FROM {table} WHERE id = %s", [item_id]


def _set_state(item_id, state):
    table = connection.ops.quote_name(Item._meta.db_table)
    return f"UPDATE {table} SET state = %s WHERE id = %s RETURNING id", [state, item_id]


def test_the_audit_chain_lock_is_the_first_statement_of_every_batch(dataset):
    AuditHead.objects.get_or_create(pk=1)
    item = ItemFactory(dataset=dataset)

    with CaptureQueriesContext(connection) as queries, write_batch() as wb:
        # An ORM read first: the lock still goes before it.
        Item.objects.filter(pk=item.pk).exists()
        wb.add(_set_state(item.pk, "approved"))

    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert AuditHead._meta.db_table in statements[0]
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in statements[0]
    assert wb.head.pk == 1


def test_an_added_write_is_seen_by_any_later_query_and_rides_the_next_round_trip(dataset):
    AuditHead.objects.get_or_create(pk=1)
    item = ItemFactory(dataset=dataset, state="queued")
    seen = []

    with CaptureQueriesContext(connection) as queries, write_batch() as wb:
        wb.add(_set_state(item.pk, "rejected"), then=seen.append)
        # The ORM sees it (the pending write goes first) ...
        state = Item.objects.values_list("state", flat=True).get(pk=item.pk)
        wb.add(_set_state(item.pk, "approved"))
        # ... and a read sent through the batch carries what is pending in its round trip.
        [[(read,)]] = wb.send(_select_state(item.pk))

    assert state == "rejected" and read == "approved" and seen == [[(item.pk,)]]
    if one_string_batches():
        # lock + first write, the ORM read, second write + read: three round trips.
        sent = [q for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
        assert len(sent) == 3, [q["sql"][:60] for q in sent]


def test_events_are_appended_once_at_commit_and_not_at_all_on_rollback(dataset):
    item = ItemFactory(dataset=dataset)
    before = AuditEvent.objects.count()

    with write_batch() as wb:
        for n in range(3):
            wb.audit(actor="system", action="test.event", object_type="item", object_id=n)
        assert AuditEvent.objects.count() == before  # not yet: at commit
    with pytest.raises(RuntimeError), write_batch() as wb:
        wb.add(_set_state(item.pk, "approved"))
        wb.audit(actor="system", action="test.lost", object_type="item", object_id=item.pk)
        raise RuntimeError("changed my mind")

    assert AuditEvent.objects.count() == before + 3
    assert not AuditEvent.objects.filter(action="test.lost").exists()
    assert Item.objects.get(pk=item.pk).state != "approved"


def test_a_batch_opened_inside_another_joins_it(dataset):
    with write_batch() as outer:
        with write_batch() as inner:
            inner.audit(actor="system", action="test.inner", object_type="item", object_id=1)
        assert inner is outer
        assert not AuditEvent.objects.filter(action="test.inner").exists()
    assert AuditEvent.objects.filter(action="test.inner").count() == 1


def test_a_refusal_in_then_rolls_the_unit_of_work_back(dataset):
    from corpus.services.items import ItemStateError, item_outcome_set

    item = ItemFactory(dataset=dataset, state="approved")
    other = ItemFactory(dataset=dataset, state="queued")

    with pytest.raises(ItemStateError), write_batch() as wb:
        item_outcome_set(wb, item_id=other.pk, state="approved", reviewer_ids=[1])
        item_outcome_set(wb, item_id=item.pk, state="approved", reviewer_ids=[1])

    assert Item.objects.get(pk=other.pk).state == "queued"
    assert not FeedEntry.objects.exists()


def test_a_statement_batch_outside_a_unit_of_work_runs_at_once_where_it_cannot_wait(dataset):
    item = ItemFactory(dataset=dataset, state="queued")
    batch = StatementBatch()

    batch.add(_set_state(item.pk, "rejected"))
    if batch.deferred:
        assert Item.objects.get(pk=item.pk).state == "queued"
        batch.flush()
    assert Item.objects.get(pk=item.pk).state == "rejected"


def _lock_item_sql(item_id):
    table = connection.ops.quote_name(Item._meta.db_table)
    return f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [item_id]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_audit_chain_lock_comes_first_even_before_the_chain_has_a_head_row(dataset):
    """The chain's first events ever (or the first after the tables were emptied): the head row
    does not exist yet. A second unit of work must still wait for the first at its very first
    statement, not lock rows and only then wait for the head (two of those deadlocked: a
    decision holding the new head waited for an item row that a racing claim had locked
    before it waited for the head)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serializes write transactions whole")
    item = ItemFactory(dataset=dataset)
    # No head row, as before the chain's first event. TRUNCATE, as the test flush does: a
    # DELETE of a head that moved is refused (migration 0006). No event is appended below.
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {connection.ops.quote_name(AuditHead._meta.db_table)}")
    first_holds, second_sent, release = (threading.Event() for _ in range(3))
    errors = []

    def first():
        try:
            with write_batch() as wb:
                wb.flush()  # the head row, created by this transaction, not committed yet
                first_holds.set()
                release.wait(20)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def second():
        try:
            first_holds.wait(20)
            with write_batch() as wb:
                second_sent.set()
                wb.send(_lock_item_sql(item.pk))  # the head lock, then the item's row
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    try:
        assert second_sent.wait(20)
        time.sleep(0.5)  # time for the second batch to lock the item, were it not waiting
        # The item row is free: the second unit of work is waiting for the head, holding nothing.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_lock_item_sql(item.pk)[0] + " NOWAIT", [item.pk])
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert AuditHead.objects.count() == 1
