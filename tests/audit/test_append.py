"""Appending: one linear chain, batching, the item index, and the append-only guards."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from corpus.models import AuditEvent, AuditEventItem, AuditHead
from corpus.services.audit import (
    GENESIS_HASH,
    SYSTEM,
    AuditHeadMoved,
    audit_append,
    audit_append_many,
    audit_head,
    audit_lock,
    event_item_ids,
)
from corpus.services.audit_verify import audit_verify
from tests.audit.conftest import make_chain, raw


def test_appends_link_each_event_to_the_one_before(db):
    with transaction.atomic():
        first = audit_append(actor=SYSTEM, action="test.a", object_type="test", object_id=1)
        second = audit_append(actor=SYSTEM, action="test.b", object_type="test", object_id=2)

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert audit_head() == {"seq": 2, "hash": second.hash}


def test_append_many_chains_a_batch_under_one_lock(db, django_assert_num_queries):
    make_chain(2)
    specs = [
        {"actor": SYSTEM, "action": "test.batch", "object_type": "test", "object_id": i}
        for i in range(50)
    ]

    # Lock, insert events, update head: the batch costs the same few statements as one event
    # (plus the savepoint pair of the atomic block).
    with django_assert_num_queries(5), transaction.atomic():
        events = audit_append_many(events=specs)

    assert [e.seq for e in events] == list(range(3, 53))
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert audit_verify() == (52, None)


def test_a_small_append_is_one_statement_under_the_lock(db):
    """A review decision's few events: the head update, the events and their item rows go in
    one statement on PostgreSQL (two elsewhere, plus the item rows), and chain as any other."""
    make_chain(2)
    specs = [
        {
            "actor": SYSTEM,
            "action": "test.small",
            "object_type": "dataset",
            "object_id": "demo",
            "payload": {"items": [7, 8 + i]},
        }
        for i in range(3)
    ]
    with transaction.atomic():
        head = audit_lock()
        with CaptureQueriesContext(connection) as queries:
            events = audit_append_many(events=specs, head=head)

    writes = 1 if connection.vendor == "postgresql" else 3
    assert len(queries.captured_queries) == writes
    assert [e.seq for e in events] == [3, 4, 5]
    refs = sorted(AuditEventItem.objects.values_list("item_id", "event_id"))
    assert refs == sorted([(7, 3), (8, 3), (7, 4), (9, 4), (7, 5), (10, 5)])
    assert audit_head() == {"seq": 5, "hash": events[-1].hash}
    assert audit_verify() == (5, None)


def test_append_many_of_nothing_appends_nothing(db):
    with transaction.atomic():
        assert audit_append_many(events=[]) == []
    assert not AuditEvent.objects.exists()


def _spec(i):
    return {"actor": SYSTEM, "action": "test.held", "object_type": "test", "object_id": i}


def test_append_many_with_the_head_already_locked_does_not_read_it_again(db):
    make_chain(2)
    with transaction.atomic():
        audit_lock()
        with CaptureQueriesContext(connection) as relocking:
            audit_append_many(events=[_spec(1)])
        head = audit_lock()
        with CaptureQueriesContext(connection) as given:
            first = audit_append_many(events=[_spec(2)], head=head)
            # The head object is kept current: it serves the next append of the transaction.
            second = audit_append_many(events=[_spec(3)], head=head)

    heads = [q["sql"] for q in given.captured_queries if "corpus_audithead" in q["sql"]]
    assert not any("FOR UPDATE" in sql for sql in heads)
    assert len(given.captured_queries) == 2 * (len(relocking.captured_queries) - 1)
    assert (first[0].seq, second[0].seq) == (4, 5)
    assert second[0].prev_hash == first[0].hash
    assert audit_head() == {"seq": 5, "hash": second[0].hash}
    assert audit_verify() == (5, None)


def test_append_many_refuses_a_head_that_moved(db):
    make_chain(2)
    with transaction.atomic():
        head = audit_lock()
        moved = audit_append(actor=SYSTEM, action="test.a", object_type="test", object_id=9)
        with pytest.raises(AuditHeadMoved, match="no longer at #2"), transaction.atomic():
            audit_append_many(events=[_spec(1)], head=head)

    # Nothing forked: the chain is the one event appended under the lock.
    assert AuditEvent.objects.count() == 3
    assert audit_head() == {"seq": 3, "hash": moved.hash}
    assert audit_verify() == (3, None)


def test_append_many_with_a_head_needs_a_transaction(transactional_db):
    with transaction.atomic():
        head = audit_lock()
    with pytest.raises(RuntimeError, match="needs the transaction that locked it"):
        audit_append_many(events=[_spec(1)], head=head)
    assert not AuditEvent.objects.exists()


def test_append_outside_a_transaction_is_refused(transactional_db):
    # An event must commit with the change it records: without a transaction it could not.
    with pytest.raises(RuntimeError, match="needs an open transaction"):
        audit_append(actor=SYSTEM, action="test.a", object_type="test", object_id=1)

    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"actor": ""}, "audit actor must be a string of 1 to 200 characters"),
        ({"action": "x" * 65}, "audit action must be a string of 1 to 64 characters"),
        ({"object_id": "y" * 65}, "audit object_id must be a string of 1 to 64 characters"),
    ],
)
def test_bad_events_are_refused_before_anything_is_written(db, spec, message):
    event = {"actor": SYSTEM, "action": "test.a", "object_type": "test", "object_id": 1, **spec}

    with pytest.raises(ValueError, match=message), transaction.atomic():
        audit_append(**event)

    assert audit_head()["seq"] == 0
    assert not AuditEvent.objects.exists()


def test_events_index_the_items_they_name(db):
    with transaction.atomic():
        scored = audit_append(
            actor=SYSTEM,
            action="items.scored",
            object_type="dataset",
            object_id="demo",
            payload={"queued": [4, 5], "auto_rejected": {"6": "exact_duplicate"}, "errors": {}},
        )
        decided = audit_append(
            actor=SYSTEM, action="review.decided", object_type="item", object_id=5
        )
        audit_append(
            actor=SYSTEM,
            action="demo.users_seeded",
            object_type="user",
            object_id="alice",
            payload={"created": ["alice"]},
        )

    # The decision is found by its object; the index holds the items named in payloads.
    refs = sorted(AuditEventItem.objects.values_list("item_id", "event_id"))
    assert refs == [(4, scored.seq), (5, scored.seq), (6, scored.seq)]
    from corpus.selectors_audit import AuditFilters, audit_event_list

    about_five = audit_event_list(filters=AuditFilters(object_type="item", object_id="5"))
    assert [e.seq for e in about_five] == [scored.seq, decided.seq]


def test_a_large_append_indexes_every_item_under_its_own_event(db):
    # Ingest's shape: one event naming a thousand items, past the one-statement size, so
    # PostgreSQL takes the COPY path. Nothing in the database checks event_id there (migration
    # 0013), so the rows must come out right from audit_append_many itself.
    ids = list(range(1000, 2200))
    with transaction.atomic():
        before = audit_append(actor=SYSTEM, action="demo.x", object_type="dataset", object_id="d")
        event = audit_append(
            actor=SYSTEM,
            action="items.ingested",
            object_type="dataset",
            object_id="demo",
            payload={"items": ids},
        )

    refs = AuditEventItem.objects.values_list("item_id", "event_id")
    assert sorted(refs) == [(i, event.seq) for i in ids]
    assert event.seq == before.seq + 1
    assert audit_verify()[1] is None


@pytest.mark.postgres
def test_the_item_index_has_no_database_foreign_key_on_postgresql(db):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's catalog")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'corpus_auditeventitem'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone()[0] == 0


def test_item_ids_come_only_from_ids(db):
    assert event_item_ids(
        object_type="export", object_id="3", payload={"items": [1, "2", True, -4, "x", None]}
    ) == [1, 2]
    assert event_item_ids(object_type="token", object_id="3", payload={"items": [1]}) == []


def test_the_model_refuses_updates_and_deletes(db):
    [event] = make_chain(1)

    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(seq=1).update(actor="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(seq=1).delete()
    with pytest.raises(PermissionError):
        event.delete()
    event.actor = "someone else"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        AuditEventItem.objects.all().delete()
    assert AuditEvent.objects.get(seq=1).actor == SYSTEM


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE corpus_auditevent SET actor = 'intruder' WHERE seq = 1",
        "DELETE FROM corpus_auditevent WHERE seq = 1",
        "UPDATE corpus_auditeventitem SET item_id = 99",
        "DELETE FROM corpus_auditeventitem",
        "UPDATE corpus_audithead SET seq = 0",
        "DELETE FROM corpus_audithead",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(db, sql):
    # Given an event that names an item in its payload (so the index table has a row too)
    with transaction.atomic():
        audit_append(
            actor=SYSTEM,
            action="items.scored",
            object_type="dataset",
            object_id="demo",
            payload={"queued": [7]},
        )
    assert AuditEventItem.objects.count() == 1

    # When raw SQL tries to change the log, the trigger refuses (on SQLite and PostgreSQL)
    with pytest.raises(IntegrityError, match="append-only|never moves back"), transaction.atomic():
        raw(sql)

    assert AuditEvent.objects.get(seq=1).actor == SYSTEM
    assert AuditHead.objects.get(pk=1).seq == 1


@pytest.mark.postgres
def test_the_postgresql_trigger_refuses_update_and_delete(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    make_chain(2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'corpus_auditevent'::regclass "
            "AND NOT tgisinternal"
        )
        assert [name for (name,) in cursor.fetchall()] == ["corpus_auditevent_append_only"]
    for sql in (
        "UPDATE corpus_auditevent SET payload = '{}'::jsonb",
        "DELETE FROM corpus_auditevent WHERE seq = 2",
    ):
        with (
            pytest.raises(IntegrityError, match="audit events are append-only"),
            transaction.atomic(),
        ):
            raw(sql)
    assert AuditEvent.objects.count() == 2


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"b": 1, "a": [1, 2.5, None, True], "nested": {"z": "ü", "y": {"x": -0.0}}},
        {"quote": 'say "hi"\n\t\\', "control": "\x00\x1f\u2028", "emoji": "🦉", "e": 1e-07},
        {"big": 12345678901234567890, "small": 1e15, "list": [[], {}]},
    ],
)
def test_event_hash_is_the_hash_of_the_canonical_json(payload):
    # The hash is written out key by key for speed; it must stay exactly this definition.
    import hashlib
    from datetime import UTC, datetime

    from corpus.services.audit import canonical_json, event_hash, format_time

    time = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    fields = {
        "seq": 42,
        "actor": 'user:1:"al\\ice"',
        "action": "review.decided",
        "object_type": "item",
        "object_id": "7",
        "dataset_id": 3,
        "payload": payload,
        "prev_hash": "a" * 64,
    }
    reference = {
        "seq": 42,
        "time": format_time(time),
        "actor": fields["actor"],
        "action": fields["action"],
        "object": "item:7",
        "dataset": 3,
        "payload": payload,
        "prev_hash": "a" * 64,
    }

    expected = hashlib.sha256(canonical_json(reference)).hexdigest()
    assert event_hash(time=time, **fields) == expected
    assert event_hash(time=format_time(time), **{**fields, "dataset_id": None}) == (
        hashlib.sha256(canonical_json({**reference, "dataset": None})).hexdigest()
    )
    assert (
        event_hash(time=time, payload_json=canonical_json(payload).decode(), **fields) == expected
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e16, -3e20])
def test_payload_floats_that_postgresql_would_change_are_refused(db, value):
    with pytest.raises(ValueError, match="cannot hold the float"), transaction.atomic():
        audit_append(
            actor=SYSTEM, action="test.a", object_type="test", object_id=1, payload={"x": [value]}
        )
