"""Anchors with no window (issue 14.5): an anchor at most every N events or T seconds, mirrored
to a second file and an HTTP endpoint when asked, and verify_audit says how many events are
past the last anchor."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from corpus.models import AuditVerification
from corpus.services import anchor, audit
from corpus.services.audit_verify import audit_check
from corpus.tasks import audit_anchor_task
from tests.audit.conftest import make_chain, raw

pytestmark = pytest.mark.django_db


def _lines(path) -> list[str]:  # type: ignore[no-untyped-def]
    return path.read_text().splitlines() if path.exists() else []


def test_the_anchor_task_is_scheduled_every_few_seconds():
    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-anchor"]

    assert entry["task"] == "corpus.tasks.audit_anchor_task"
    assert entry["schedule"] <= 10


def test_the_anchor_task_anchors_the_head_once(settings):
    make_chain(7)

    assert audit_anchor_task() == 7
    assert audit_anchor_task() is None  # nothing new: no second line
    lines = _lines(anchor.anchor_path())
    assert len(lines) == 1 and lines[0].startswith("7\t")
    assert AuditVerification.objects.get(pk=1).anchored_seq == 7


def test_a_cut_tail_is_caught_once_the_tick_has_anchored_it(guards):
    # given events anchored by the periodic tick, with no verification run at all
    events = make_chain(6)
    audit_anchor_task()
    guards.lift()
    # when someone with SQL access cuts the last events and moves the head back
    raw("DELETE FROM corpus_auditevent WHERE seq > 4")
    raw("UPDATE corpus_audithead SET seq = 4, hash = %s", [events[3].hash])
    assert audit_check(anchors=False).ok
    # then the anchor names the cut
    report = audit_check()
    assert report.bad_seq == 5
    assert "removed from the end" in report.problem


def test_an_append_past_n_events_asks_for_an_anchor(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.SYNTHGATE_AUDIT_ANCHOR_EVENTS = 10
    monkeypatch.setattr(audit, "_anchor_asked_at", 0)
    asked = []
    monkeypatch.setattr(audit, "_anchor_request", lambda: asked.append(audit_anchor_task()))

    with django_capture_on_commit_callbacks(execute=True):
        make_chain(9)
    assert asked == []
    with django_capture_on_commit_callbacks(execute=True):
        make_chain(3, start=10)

    assert asked == [12]
    assert _lines(anchor.anchor_path())[-1].startswith("12\t")


def test_anchors_stay_in_seq_order_whoever_writes_them():
    make_chain(5)
    assert anchor.anchor_write(seq=5, digest="a" * 64) is not None

    assert anchor.anchor_write(seq=3, digest="b" * 64) is None
    assert anchor.anchor_write(seq=5, digest="c" * 64) is None
    assert len(_lines(anchor.anchor_path())) == 1


def test_anchors_are_mirrored_to_a_second_file(settings, tmp_path):
    settings.SYNTHGATE_AUDIT_ANCHOR_MIRROR_PATH = str(tmp_path / "elsewhere" / "anchors.log")
    make_chain(3)
    audit_anchor_task()
    make_chain(2, start=4)
    audit_anchor_task()

    assert _lines(tmp_path / "elsewhere" / "anchors.log") == _lines(anchor.anchor_path())
    assert len(_lines(anchor.anchor_path())) == 2


def test_anchors_are_posted_signed_to_an_http_endpoint(settings):
    received: list[tuple[dict, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers["X-Synthgate-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    settings.SYNTHGATE_AUDIT_ANCHOR_MIRROR_URL = f"http://127.0.0.1:{server.server_port}/anchors"
    try:
        make_chain(4)
        audit_anchor_task()
        thread.join(10)
    finally:
        server.server_close()

    [(body, signature)] = received
    assert body["seq"] == 4 and body["hmac"] == signature
    assert body["line"] == _lines(anchor.anchor_path())[0] + "\n"
    # The signature is the anchor's HMAC: the receiver can check it with the anchor key.
    assert anchor._mac(f"{body['seq']}\t{body['hash']}\t{body['time']}") == signature


def test_an_unreachable_http_mirror_does_not_stop_the_file_anchor(settings):
    settings.SYNTHGATE_AUDIT_ANCHOR_MIRROR_URL = "http://127.0.0.1:9/nowhere"
    make_chain(2)

    assert audit_anchor_task() == 2
    assert len(_lines(anchor.anchor_path())) == 1


def test_verify_audit_reports_the_events_past_the_last_anchor():
    make_chain(5)
    audit_anchor_task()
    make_chain(3, start=6)
    out = StringIO()

    call_command("verify_audit", stdout=out)

    assert "3 events past the last anchor (#5)" in out.getvalue()
