"""Alerts: fire once, clear once, audited, in /healthz and the banner, posted to a signed
webhook (a real HTTP server on 127.0.0.1), and the thresholds form."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import reverse

from corpus.models import AuditEvent
from dashboard.models import Alert, AlertRules
from dashboard.services import alerts as alert_service
from dashboard.services.alerts import alert_rules_set, alerts_cache_key, alerts_evaluate
from dashboard.services.rollup import dashboard_rollup
from dashboard.tasks import alert_webhook_task
from tests.dashboard.conftest import NOW

pytestmark = pytest.mark.django_db

SECRET = "test-webhook-secret"
FORM = "dashboard/_alerts_form.html"


class Receiver:
    """A local webhook endpoint: answers the queued statuses in turn (then 200), keeps what it
    got."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def rolled(board, settings):  # type: ignore[no-untyped-def]
    settings.SYNTHGATE_ALERT_WEBHOOK_SECRET = SECRET
    dashboard_rollup(dataset=board["dataset"], now=NOW)
    return board


@pytest.fixture
def enqueued(monkeypatch):  # type: ignore[no-untyped-def]
    """The webhook tasks sent to the broker, as (alert id, event)."""
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(alert_webhook_task, "delay", lambda *args: sent.append(args))
    return sent


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _rules(dataset, **values):  # type: ignore[no-untyped-def]
    base = {
        "max_synthetic_share": None,
        "min_tail_coverage": None,
        "max_near_duplicate_rate": None,
        "max_backlog_minutes": None,
        "webhook_url": "",
    }
    return alert_rules_set(dataset=dataset, actor="user:1:admin", values={**base, **values})


def test_alert_fires_once_clears_once_and_reaches_the_webhook(
    rolled, receiver, enqueued, client, django_capture_on_commit_callbacks
):
    ds = rolled["dataset"]
    # synthetic share of approved is 2/3: above 0.5 fires
    with django_capture_on_commit_callbacks(execute=True):
        _rules(ds, max_synthetic_share=0.5, webhook_url=receiver.url)
    [alert] = Alert.objects.filter(dataset=ds)
    assert alert.kind == "synthetic_share" and alert.is_open
    assert alert.reason == "synthetic share of the approved set is 66.7%, above 50.0%"
    # still crossed on the next evaluations: no second alert, no second event
    with django_capture_on_commit_callbacks(execute=True):
        alerts_evaluate(dataset=ds)
        alerts_evaluate(dataset=ds)
    assert Alert.objects.filter(dataset=ds).count() == 1
    assert len(_events("alert.fired")) == 1
    assert enqueued == [(alert.pk, "alert.fired")]

    # /healthz says degraded, with the reason, and still answers 200
    health = client.get("/healthz")
    body = health.json()
    assert health.status_code in (200, 503)
    assert body["checks"]["alerts"]["ok"] is False
    assert body["checks"]["alerts"]["open"][0]["reason"] == alert.reason
    if all(body["checks"][k]["ok"] for k in ("database", "redis", "worker")):
        assert body["status"] == "degraded"

    # the threshold moves above the value: cleared once
    with django_capture_on_commit_callbacks(execute=True):
        _rules(ds, max_synthetic_share=0.8, webhook_url=receiver.url)
        alerts_evaluate(dataset=ds)
    alert.refresh_from_db()
    assert not alert.is_open
    assert len(_events("alert.cleared")) == 1
    assert enqueued == [(alert.pk, "alert.fired"), (alert.pk, "alert.cleared")]
    assert client.get("/healthz").json()["checks"]["alerts"] == {"ok": True, "open": []}

    # the tasks deliver both events, signed
    for alert_id, event in enqueued:
        assert alert_webhook_task.apply(args=(alert_id, event)).get() == 200
    assert [r["headers"]["X-Synthgate-Event"] for r in receiver.received] == [
        "alert.fired",
        "alert.cleared",
    ]
    for request in receiver.received:
        body = request["body"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request["headers"]["X-Synthgate-Signature"], expected)
        document = json.loads(body)
        assert document["dataset"] == "demo"
        assert document["alert"]["kind"] == "synthetic_share"
        assert document["alert"]["id"] == alert.pk
    assert json.loads(receiver.received[1]["body"])["alert"]["cleared_at"] is not None


def test_webhook_retries_a_failing_receiver_then_delivers(rolled):
    failing = Receiver(statuses=[500, 503])
    try:
        _rules(rolled["dataset"], max_synthetic_share=0.5, webhook_url=failing.url)
        alert = Alert.objects.get(dataset=rolled["dataset"])
        assert alert_webhook_task.apply(args=(alert.pk, "alert.fired")).get() == 200
        assert len(failing.received) == 3
    finally:
        failing.close()


def test_webhook_gives_up_after_its_retries_and_says_so(rolled, settings):
    failing = Receiver(statuses=[500] * 20)
    try:
        _rules(rolled["dataset"], max_synthetic_share=0.5, webhook_url=failing.url)
        alert = Alert.objects.get(dataset=rolled["dataset"])
        assert alert_webhook_task.apply(args=(alert.pk, "alert.fired")).get() == "failed"
        assert len(failing.received) == alert_webhook_task.max_retries + 1
        [event] = _events("alert.webhook_failed")
        assert event.payload["error"].startswith("HTTP 500")
    finally:
        failing.close()


def test_a_refused_webhook_is_not_retried(rolled):
    refusing = Receiver(statuses=[404])
    try:
        _rules(rolled["dataset"], max_synthetic_share=0.5, webhook_url=refusing.url)
        alert = Alert.objects.get(dataset=rolled["dataset"])
        assert alert_webhook_task.apply(args=(alert.pk, "alert.fired")).get() == 404
        assert len(refusing.received) == 1
    finally:
        refusing.close()


def test_every_kind_of_threshold(rolled):
    ds = rolled["dataset"]
    _rules(
        ds,
        min_tail_coverage=0.7,  # coverage 0.6
        max_near_duplicate_rate=0.5,  # gen-x 2/3
        max_backlog_minutes=60,  # pending since DAY - 30 min: far older than an hour
    )
    open_alerts = {(a.kind, a.subject): a for a in Alert.objects.filter(dataset=ds)}
    assert set(open_alerts) == {
        ("tail_coverage", ""),
        ("near_duplicate_rate", "gen-x"),
        ("scoring_backlog", ""),
    }
    assert open_alerts[("tail_coverage", "")].reason == "tail coverage is 60.0%, below 70.0%"
    # turning the thresholds off clears them
    _rules(ds)
    assert not Alert.objects.filter(dataset=ds, cleared_at__isnull=True).exists()
    assert len(_events("alert.cleared")) == 3


def test_banner_on_the_dataset_pages(rolled, client, alice, django_capture_on_commit_callbacks):
    ds = rolled["dataset"]
    with django_capture_on_commit_callbacks(execute=True):
        _rules(ds, max_synthetic_share=0.5)
    assert cache.get(alerts_cache_key("demo"))
    client.force_login(alice)
    for url in (reverse("dashboard:dataset", args=["demo"]), reverse("review:list", args=["demo"])):
        page = client.get(url).content.decode()
        assert "synthetic share of the approved set is 66.7%" in page, url
    # not on pages of other datasets or without a dataset
    assert "synthetic share of the approved" not in client.get("/review/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        _rules(ds, max_synthetic_share=0.9)
    page = client.get(reverse("review:list", args=["demo"])).content.decode()
    assert "synthetic share of the approved" not in page


def test_rule_changes_are_audited_with_before_and_after(rolled):
    _rules(rolled["dataset"], max_synthetic_share=0.5)
    _rules(rolled["dataset"], max_synthetic_share=0.5)  # no change, no event
    [event] = _events("alert_rules.changed")
    assert event.payload["changed"] == {"max_synthetic_share": [None, 0.5]}
    assert event.actor == "user:1:admin"
    assert AlertRules.objects.get(dataset=rolled["dataset"]).version == 1


# --- the form ------------------------------------------------------------------------------------


def _url() -> str:
    return reverse("dashboard:alerts", args=["demo"])


def test_form_saves_through_htmx_with_a_notice(rolled, client, admin_user):
    client.force_login(admin_user)
    assert client.get(_url()).status_code == 200
    response = client.post(
        _url(),
        {"max_synthetic_share": "0.5", "min_tail_coverage": "", "max_backlog_minutes": "30"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith("<form") and 'id="alerts-form"' in page
    assert "Saved: alert rules version 1." in page
    rules = AlertRules.objects.get(dataset=rolled["dataset"])
    assert (rules.max_synthetic_share, rules.max_backlog_minutes) == (0.5, 30)
    assert len(_events("alert_rules.changed")) == 1


def test_form_answers_400_with_field_errors_and_saves_nothing(rolled, client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        _url(),
        {"max_synthetic_share": "1.5", "max_backlog_minutes": "-3", "webhook_url": "ftp://x"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="max_synthetic_share-error"' in page
    assert "less than or equal to 1" in page
    assert 'id="max_backlog_minutes-error"' in page
    assert 'id="webhook_url-error"' in page
    assert "Nothing was saved" in page
    assert not AlertRules.objects.filter(dataset=rolled["dataset"]).exists()
    assert _events("alert_rules.changed") == []


def test_form_refuses_a_webhook_without_a_secret(rolled, client, admin_user, settings):
    settings.SYNTHGATE_ALERT_WEBHOOK_SECRET = ""
    client.force_login(admin_user)
    response = client.post(_url(), {"webhook_url": "https://example.org/hook"})
    assert response.status_code == 400
    assert "SYNTHGATE_ALERT_WEBHOOK_SECRET" in response.content.decode()


def test_form_without_javascript_redirects_after_saving(rolled, client, admin_user):
    client.force_login(admin_user)
    response = client.post(_url(), {"min_tail_coverage": "0.3"})
    assert response.status_code == 303 and response["Location"] == _url()


def test_form_is_for_admins_only(rolled, client, alice, outsider):
    client.force_login(alice)
    assert client.get(_url()).status_code == 403
    assert client.post(_url(), {"min_tail_coverage": "0.3"}).status_code == 403
    client.force_login(outsider)
    assert client.get(_url()).status_code == 404
    client.logout()
    assert client.get(_url()).status_code == 302


def test_form_wrong_method(rolled, client, admin_user):
    client.force_login(admin_user)
    assert client.put(_url()).status_code == 405


def test_service_rechecks_ranges(rolled):
    with pytest.raises(alert_service.AlertRulesError) as caught:
        _rules(rolled["dataset"], min_tail_coverage=2.0)
    assert "min_tail_coverage" in caught.value.errors
