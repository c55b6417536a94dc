"""The periodic verifier: checkpoints, anchors, the verdict in /healthz and the admin banner."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from config.celery import worker_heartbeat
from corpus.models import AuditEvent, AuditVerification
from corpus.services.anchor import anchors_check
from corpus.services.audit_verify import ALERT_CACHE_KEY, audit_check, audit_verify_incremental
from corpus.tasks import audit_verify_task
from tests.audit.conftest import make_chain, raw


def _anchor_lines() -> list[str]:
    path = Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH)
    return path.read_text().splitlines() if path.exists() else []


def test_the_verifier_checkpoints_and_anchors_the_head(db):
    make_chain(5)

    state = audit_verify_incremental()

    assert (state.ok, state.verified_seq, state.anchored_seq) == (True, 5, 5)
    [line] = _anchor_lines()
    assert line.split("\t")[:2] == ["5", AuditEvent.objects.get(seq=5).hash]


def test_the_next_run_resumes_from_the_checkpoint(db):
    make_chain(5)
    audit_verify_incremental()
    make_chain(3, start=6)

    state = audit_verify_incremental()

    assert state.verified_seq == 8
    # Within the anchor interval: no second anchor line yet.
    assert len(_anchor_lines()) == 1


def test_an_anchor_is_added_once_the_interval_has_passed(db, settings):
    settings.SYNTHGATE_AUDIT_ANCHOR_SECONDS = 0
    make_chain(5)
    audit_verify_incremental()
    make_chain(3, start=6)

    audit_verify_incremental()
    audit_verify_incremental()  # nothing new: no new line

    assert [line.split("\t")[0] for line in _anchor_lines()] == ["5", "8"]


def test_the_incremental_run_only_reads_new_events_and_the_full_run_reads_all(guards):
    make_chain(10)
    audit_verify_incremental()
    guards.lift()
    raw("UPDATE corpus_auditevent SET object_id = 'x' WHERE seq = 2")
    guards.restore()

    assert audit_verify_incremental().ok
    state = audit_verify_incremental(full=True)

    assert (state.ok, state.bad_seq) == (False, 2)
    assert state.full_checked_at is not None


def test_a_checkpoint_row_changed_after_verification_is_named(guards):
    make_chain(10)
    audit_verify_incremental()
    guards.lift()
    raw("UPDATE corpus_auditevent SET hash = %s WHERE seq = 10", ["e" * 64])
    guards.restore()

    state = audit_verify_incremental()

    assert state.bad_seq == 10
    assert state.problem == (
        "event #10 changed after it was verified (its hash is not the one recorded then)"
    )


def test_a_broken_chain_is_recorded_audited_and_published(
    guards, django_capture_on_commit_callbacks
):
    make_chain(6)
    audit_verify_incremental()
    make_chain(4, start=7)
    guards.lift()
    raw("DELETE FROM corpus_auditevent WHERE seq = 8")
    guards.restore()

    with django_capture_on_commit_callbacks(execute=True):
        state = audit_verify_incremental()

    assert not state.ok
    assert state.problem == "event #8 was removed (the chain goes from #7 to #9)"
    assert state.verified_seq == 6
    alert = AuditEvent.objects.get(action="audit.chain_broken")
    assert alert.payload["bad_seq"] == 8
    assert cache.get(ALERT_CACHE_KEY)["problem"] == state.problem


def test_a_repaired_chain_clears_the_verdict(guards, django_capture_on_commit_callbacks):
    events = make_chain(8)
    guards.lift()
    original = AuditEvent.objects.filter(seq=4).values_list("object_id", flat=True).get()
    raw("UPDATE corpus_auditevent SET object_id = 'x' WHERE seq = 4")
    with django_capture_on_commit_callbacks(execute=True):
        assert not audit_verify_incremental().ok

    # When the row is restored (say, from a backup)
    raw("UPDATE corpus_auditevent SET object_id = %s WHERE seq = 4", [original])
    guards.restore()
    with django_capture_on_commit_callbacks(execute=True):
        state = audit_verify_incremental()

    assert state.ok
    assert state.verified_seq == len(events) + 1  # the chain_broken event is part of it now
    assert AuditEvent.objects.filter(action="audit.chain_restored").exists()
    assert cache.get(ALERT_CACHE_KEY) is None


def test_missing_guards_are_reported(guards):
    make_chain(2)
    guards.lift()

    state = audit_verify_incremental()

    assert not state.ok
    assert state.problem.startswith("append-only trigger(s) missing or disabled: corpus_audit")


def test_healthz_is_degraded_not_down_when_the_chain_is_broken(client, guards):
    make_chain(3)
    guards.lift()
    raw("UPDATE corpus_auditevent SET actor = 'x' WHERE seq = 2")
    audit_verify_incremental()
    worker_heartbeat()

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["audit"]["ok"] is False
    assert body["checks"]["audit"]["bad_seq"] == 2
    assert body["checks"]["database"]["ok"] and body["checks"]["worker"]["ok"]


def test_healthz_reports_a_verified_chain(client, db):
    make_chain(3)
    audit_verify_incremental()
    worker_heartbeat()

    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert body["checks"]["audit"]["ok"] is True
    assert body["checks"]["audit"]["verified_seq"] == 3


def test_the_banner_is_shown_to_staff_only(client, admin_user, reviewer):
    cache.set(ALERT_CACHE_KEY, {"problem": "event #8 was removed", "bad_seq": 8, "checked_at": ""})

    client.force_login(admin_user)
    assert "event #8 was removed" in client.get("/").content.decode()
    client.force_login(reviewer)
    assert "event #8 was removed" not in client.get("/").content.decode()


def test_no_banner_while_the_chain_is_whole(client, admin_user):
    client.force_login(admin_user)

    assert "audit trail is broken" not in client.get("/").content.decode()


def test_a_forged_anchor_line_is_caught(db):
    make_chain(3)
    audit_verify_incremental()
    path = Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH)
    seq, digest, when, mac = path.read_text().rstrip("\n").split("\t")
    path.write_text(f"{seq}\t{'a' * 64}\t{when}\t{mac}\n")

    result = anchors_check()

    assert result.problem == (
        "the anchor for #3 at byte 0 has a bad signature (the anchor file was edited, or "
        "SYNTHGATE_AUDIT_ANCHOR_KEY changed)"
    )


def test_a_truncated_anchor_file_is_caught(db, settings):
    settings.SYNTHGATE_AUDIT_ANCHOR_SECONDS = 0
    make_chain(3)
    audit_verify_incremental()
    make_chain(2, start=4)
    audit_verify_incremental()
    audit_verify_incremental()  # reads the second line: the checkpoint is past it
    Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH).write_text("")

    state = audit_verify_incremental()

    assert not state.ok
    assert "was truncated" in state.problem


def test_a_deleted_anchor_file_is_caught(db):
    make_chain(3)
    audit_verify_incremental()
    Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH).unlink()

    report = audit_check()

    assert report.problem.startswith("the anchor file ")
    assert report.problem.endswith("is missing (anchors up to #3 were written to it)")


def test_a_malformed_anchor_file_is_caught(db):
    make_chain(1)
    Path(settings.SYNTHGATE_AUDIT_ANCHOR_PATH).write_text("not an anchor\n")

    assert audit_check().problem == "the anchor file is malformed at byte 0"


def test_the_task_runs_the_verifier(db):
    make_chain(4)

    assert audit_verify_task() == {"ok": True, "verified_seq": 4, "problem": ""}
    assert AuditVerification.objects.get(pk=1).verified_seq == 4


def test_verify_audit_command_reports_an_intact_chain(db, capsys):
    make_chain(4)
    audit_verify_incremental()

    call_command("verify_audit", "--from", "2")

    out = capsys.readouterr().out
    assert out.startswith("audit chain intact: 3 events verified (#2–#4), head #4, 1 anchors")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "0"], "--from must be 1 or more"),
        (["--from", "9"], "--from 9 is past the chain head #4"),
        (["--batch-size", "0"], "--batch-size must be from 1 to 100000"),
        (["--record", "--from", "2"], "--record verifies from its own checkpoint, with anchors"),
    ],
)
def test_verify_audit_command_refuses_bad_options(db, args, message):
    make_chain(4)

    with pytest.raises(CommandError, match=message):
        call_command("verify_audit", *args)


def test_verify_audit_record_updates_the_verdict(db, capsys):
    make_chain(4)

    call_command("verify_audit", "--record")

    assert "intact up to #4 (recorded)" in capsys.readouterr().out
    assert AuditVerification.objects.get(pk=1).verified_seq == 4
