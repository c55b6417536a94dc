"""Each way of tampering with the log is caught, and the right event is named."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from corpus.models import AuditEvent, AuditHead
from corpus.services.audit_verify import audit_check, audit_verify, audit_verify_incremental
from tests.audit.conftest import forge, make_chain, move, raw, rehash_from


def test_an_intact_chain_verifies(db):
    # Given ten appended events
    make_chain(10)

    # When it is verified
    checked, problem = audit_verify()

    # Then every event checked out
    assert (checked, problem) == (10, None)


def test_an_edited_payload_is_named(guards):
    make_chain(10)
    guards.lift()

    raw("UPDATE corpus_auditevent SET object_id = %s WHERE seq = 5", ["tampered"])

    report = audit_check()
    assert report.bad_seq == 5
    assert report.problem == "event #5 was altered (its hash does not match its content)"
    assert report.checked == 4


def test_an_edited_json_payload_is_named(guards):
    make_chain(10)
    guards.lift()
    from django.db.models import QuerySet

    # The ORM refuses; the base QuerySet (what a script could call) does not, with guards off.
    QuerySet.update(AuditEvent.objects.filter(seq=3), payload={"n": 3, "note": "rewritten"})

    report = audit_check()
    assert (report.bad_seq, report.problem) == (
        3,
        "event #3 was altered (its hash does not match its content)",
    )


def test_a_deleted_row_is_named(guards):
    make_chain(10)
    guards.lift()

    raw("DELETE FROM corpus_auditevent WHERE seq = 5")

    report = audit_check()
    assert report.bad_seq == 5
    assert report.problem == "event #5 was removed (the chain goes from #4 to #6)"


def test_deleted_rows_renumbered_to_close_the_gap_are_named(guards):
    make_chain(10)
    guards.lift()

    # Given event #5 deleted and the rows after it moved down to hide the gap
    raw("DELETE FROM corpus_auditevent WHERE seq = 5")
    for seq in range(6, 11):
        move(seq, seq - 1)

    report = audit_check()
    assert report.bad_seq == 5
    assert report.problem.startswith("event #5 was removed (the events after it were renumbered")


def test_an_inserted_row_is_named(guards):
    events = make_chain(10)
    guards.lift()

    # Given the rows from #5 shifted up and a well-formed forgery put in at #5
    for seq in range(10, 4, -1):
        move(seq, seq + 1)
    forge(seq=5, prev_hash=events[3].hash)

    report = audit_check()
    assert report.bad_seq == 5
    assert report.problem == "event #5 was inserted (#6 was written as #5 and links to #4)"


def test_an_inserted_row_with_a_bad_hash_is_named(guards):
    events = make_chain(10)
    guards.lift()
    for seq in range(10, 4, -1):
        move(seq, seq + 1)
    forged = forge(seq=5, prev_hash=events[3].hash)
    raw("UPDATE corpus_auditevent SET hash = %s WHERE seq = 5", ["f" * 64])
    assert forged.seq == 5

    report = audit_check()
    assert report.bad_seq == 5
    assert report.problem == "event #5 was inserted (#6 was written as #5 and links to #4)"


def test_a_row_inserted_past_the_head_is_named(guards):
    events = make_chain(10)
    guards.lift()

    forge(seq=11, prev_hash=events[-1].hash)

    report = audit_check()
    assert report.bad_seq == 11
    assert report.problem == "event #11 was inserted beyond the chain head (not appended)"


@pytest.mark.parametrize(("first", "second"), [(4, 7), (4, 5)])
def test_reordered_rows_are_named(guards, first, second):
    make_chain(10)
    guards.lift()

    # Given two events swapped
    move(first, -1)
    move(second, first)
    move(-1, second)

    report = audit_check()
    assert report.bad_seq == first
    assert report.problem == f"event #{first} is out of order (it was written as #{second})"


def test_a_row_replaced_with_a_recomputed_hash_is_named(guards):
    make_chain(10)
    guards.lift()

    # Given #6 rewritten and given a correct hash, but the events after it left alone
    raw("UPDATE corpus_auditevent SET object_id = 'x' WHERE seq = 6")
    event = AuditEvent.objects.filter(seq=6).values()[0]
    from corpus.services.audit import event_hash

    digest = event_hash(
        seq=6,
        time=event["time"],
        actor=event["actor"],
        action=event["action"],
        object_type=event["object_type"],
        object_id="x",
        dataset_id=None,
        payload=event["payload"],
        prev_hash=event["prev_hash"],
    )
    raw("UPDATE corpus_auditevent SET hash = %s WHERE seq = 6", [digest])

    report = audit_check()
    assert report.bad_seq == 6
    assert report.problem == "event #6 was replaced (#7 links to a different event)"


def test_a_tail_cut_off_with_the_head_left_behind_is_named(guards):
    make_chain(10)
    guards.lift()

    raw("DELETE FROM corpus_auditevent WHERE seq >= 9")

    report = audit_check()
    assert report.bad_seq == 9
    assert report.problem == "events #9–#10 were removed from the end (the chain head says #10)"


def test_a_tail_cut_off_behind_the_anchor_is_named(guards):
    # Given a verified, anchored chain of ten events
    events = make_chain(10)
    state = audit_verify_incremental()
    assert state.anchored_seq == 10
    guards.lift()

    # When the last three events are deleted and the head moved back to match: a consistent
    # chain of seven events, as far as the database alone can tell
    raw("DELETE FROM corpus_auditevent WHERE seq >= 8")
    raw("UPDATE corpus_audithead SET seq = 7, hash = %s", [events[6].hash])
    assert audit_check(anchors=False).ok

    # Then the anchor shows it
    report = audit_check()
    assert report.bad_seq == 8
    assert report.problem.startswith("events #8–#10 were removed from the end: the anchor of ")
    assert report.problem.endswith("records #10, the chain now ends at #7")


def test_a_whole_rewritten_table_is_named_by_the_anchor(guards):
    make_chain(10)
    audit_verify_incremental()
    guards.lift()

    # When event #3 is edited and every hash from it on recomputed, head included
    raw("UPDATE corpus_auditevent SET object_id = 'rewritten' WHERE seq = 3")
    last = rehash_from(3)
    raw("UPDATE corpus_audithead SET hash = %s", [last])
    assert audit_check(anchors=False).ok

    report = audit_check()
    assert report.bad_seq == 10
    assert "event #10 does not match its anchor of " in report.problem
    assert report.problem.endswith("the chain was rewritten at or before #10")


def test_verify_from_a_later_event_skips_the_ones_before(guards):
    make_chain(10)
    guards.lift()
    raw("UPDATE corpus_auditevent SET object_id = 'x' WHERE seq = 2")

    assert audit_check(from_seq=5).ok
    assert audit_check(from_seq=2).bad_seq == 2


def test_verify_audit_command_names_the_event_and_exits_non_zero(guards):
    make_chain(10)
    guards.lift()
    raw("DELETE FROM corpus_auditevent WHERE seq = 7")

    with pytest.raises(CommandError) as failure:
        call_command("verify_audit")

    assert str(failure.value) == (
        "audit chain broken: event #7 was removed (the chain goes from #6 to #8) "
        "(6 events verified before it)"
    )


def test_the_head_cannot_move_back_while_guarded(db):
    make_chain(3)
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        raw("UPDATE corpus_audithead SET seq = 1")
    assert AuditHead.objects.get(pk=1).seq == 3
