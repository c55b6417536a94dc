"""Each review page: the allowed case, the wrong method, each refused role; query counts;
htmx partials; security headers."""

from pathlib import Path

import pytest
from django.urls import reverse

from corpus.models import AuditEvent, Item, ItemParent
from review.models import Claim, Decision, ReviewPolicy
from tests.factories import UserFactory
from tests.review.conftest import login, make_item

ROOT = Path(__file__).resolve().parents[2]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def listed_without_role(review_dataset):
    """On the dataset's reviewers but not in the reviewer group."""
    user = UserFactory(username="dave")
    review_dataset.reviewers.add(user)
    return user


# --- who may do what -----------------------------------------------------------------------------

READS = [
    ("review:triage", {}),
    ("review:list", {}),
    ("review:item", {"item": True}),
]
WRITES = [
    ("review:decide", {"item": True}, {"verdict": "approve"}),
    ("review:skip", {"item": True}, {}),
    ("review:undo", {}, {}),
    ("review:renew", {"item": True}, {}),
    ("review:bulk", {}, {"items": ["1"], "verdict": "approve"}),
]
ADMIN_READS = ["settings:page", "review:stats"]
ADMIN_WRITES = [
    ("settings:review-policy", {"consensus_approvals": 2, "gold_rate": 0}, "review-policy"),
    ("settings:reasons", {"reasons": "duplicate: Duplicate"}, "reasons"),
    ("settings:quota", {"daily_limit": 10}, "quotas"),
]


def _url(name, slug, item=None):
    args = [slug] + ([item.pk] if item is not None else [])
    return reverse(name, args=args)


@pytest.mark.parametrize(("name", "opts"), READS)
def test_reads_allowed_for_a_reviewer_refused_otherwise(
    client, review_dataset, alice, charlie, listed_without_role, queued, name, opts
):
    url = _url(name, "demo", queued[0] if opts else None)

    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert login(charlie).get(url).status_code == 404
    assert login(listed_without_role).get(url).status_code == 404
    assert login(alice).post(url).status_code == 405
    assert login(alice).get(url).status_code == 200


@pytest.mark.parametrize(("name", "opts", "data"), WRITES)
def test_writes_allowed_for_a_reviewer_refused_otherwise(
    client, review_dataset, alice, charlie, queued, name, opts, data
):
    url = _url(name, "demo", queued[0] if opts else None)

    assert client.post(url, data).status_code == 302
    assert login(charlie).post(url, data).status_code == 404
    assert login(alice).get(url).status_code == 405


@pytest.mark.parametrize("name", ADMIN_READS)
def test_admin_pages_are_for_admins(client, review_dataset, alice, charlie, lead, admin_user, name):
    url = _url(name, "demo")

    assert client.get(url).status_code == 302
    assert login(charlie).get(url).status_code == 404
    assert login(alice).get(url).status_code == 403
    assert login(lead).post(url).status_code == 405
    assert login(lead).get(url).status_code == 200
    assert login(admin_user).get(url).status_code == 200


@pytest.mark.parametrize(("name", "data", "section"), ADMIN_WRITES)
def test_admin_writes_are_for_admins(
    client, review_dataset, alice, charlie, lead, name, data, section
):
    url = _url(name, "demo")

    assert client.post(url, data).status_code == 302
    assert login(charlie).post(url, data).status_code == 404
    assert login(alice).post(url, data).status_code == 403
    assert login(lead).get(url).status_code == 405
    response = login(lead).post(url, data)
    assert response.status_code == 303
    assert response["Location"] == f"/datasets/demo/settings/#{section}"


def test_gold_marking_is_for_admins(review_dataset, alice, lead, queued):
    url = _url("review:gold", "demo", queued[0])
    data = {"action": "mark", "expected": "reject"}

    assert login(alice).post(url, data).status_code == 403
    assert login(lead).get(url).status_code == 405
    assert login(lead).post(url, data).status_code == 303
    assert Item.objects.get(pk=queued[0].pk).is_gold


def test_gold_marking_without_a_verdict_is_a_400(review_dataset, lead, queued):
    response = login(lead).post(_url("review:gold", "demo", queued[0]), {"action": "mark"})

    assert response.status_code == 400
    assert b"Choose the verdict" in response.content


def test_the_dashboard_lists_only_the_users_datasets(review_dataset, other_dataset, alice, queued):
    response = login(alice).get("/review/")

    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(r.dataset.slug, r.queued, r.decided_today) for r in rows] == [("demo", 5, 0)]
    assert login(alice).post("/review/").status_code == 405


def test_the_dashboard_explains_a_missing_role(review_dataset, listed_without_role):
    response = login(listed_without_role).get("/review/")

    assert b"do not have the reviewer role" in response.content


# --- triage flow ---------------------------------------------------------------------------------


def test_triage_claims_and_shows_the_next_item(review_dataset, alice, queued):
    response = login(alice).get("/review/demo/")

    assert response.status_code == 200
    assert response.context["item"].pk == queued[0].pk
    assert Claim.objects.get().reviewer == alice
    assert b'hx-trigger="every 60s"' in response.content
    assert "HX-Request" in response["Vary"]


def test_approve_without_javascript_redirects_to_the_next_item(review_dataset, alice, queued):
    client = login(alice)
    client.get("/review/demo/")

    response = client.post(_url("review:decide", "demo", queued[0]), {"verdict": "approve"})

    assert response.status_code == 303
    assert response["Location"] == "/review/demo/"
    page = client.get("/review/demo/")
    assert page.context["item"].pk == queued[1].pk
    assert f"Approved item {queued[0].pk}.".encode() in page.content


def test_approve_over_htmx_swaps_in_the_next_item(review_dataset, alice, queued):
    client = login(alice)
    client.get("/review/demo/")

    response = client.post(_url("review:decide", "demo", queued[0]), {"verdict": "approve"}, **HTMX)

    assert response.status_code == 200
    assert not response.content.lstrip().startswith(b"<!doctype")
    assert response.content.lstrip().startswith(b'<section id="triage"')
    assert response.context["item"].pk == queued[1].pk
    assert Item.objects.get(pk=queued[0].pk).state == Item.State.APPROVED


def test_reject_without_a_reason_is_a_400_that_keeps_the_item(review_dataset, alice, queued):
    client = login(alice)
    client.get("/review/demo/")

    response = client.post(_url("review:decide", "demo", queued[0]), {"verdict": "reject"}, **HTMX)

    assert response.status_code == 400
    assert b"Choose a reason" in response.content
    assert response.context["item"].pk == queued[0].pk
    assert not Decision.objects.exists()


def test_a_decision_on_an_item_not_held_is_a_409(review_dataset, alice, bob, queued):
    login(bob).get("/review/demo/")  # bob holds queued[0]

    response = login(alice).post(
        _url("review:decide", "demo", queued[0]), {"verdict": "approve"}, **HTMX
    )

    assert response.status_code == 409
    assert b"no longer hold" in response.content


def test_skip_and_undo_over_htmx(review_dataset, alice, queued):
    client = login(alice)
    client.get("/review/demo/")
    client.post(_url("review:decide", "demo", queued[0]), {"verdict": "approve"}, **HTMX)

    skipped = client.post(_url("review:skip", "demo", queued[1]), **HTMX)
    assert skipped.context["item"].pk == queued[2].pk

    undone = client.post(_url("review:undo", "demo"), **HTMX)
    assert undone.status_code == 200
    assert undone.context["item"].pk == queued[0].pk
    assert b"Undone: your approval" in undone.content
    assert AuditEvent.objects.filter(action="review.undone").count() == 1


def test_the_lease_poll_renews_and_stops_once_the_lease_is_gone(review_dataset, alice, queued):
    client = login(alice)
    client.get("/review/demo/")
    url = _url("review:renew", "demo", queued[0])

    assert client.post(url, **HTMX).status_code == 200
    Claim.objects.all().delete()
    gone = client.post(url, **HTMX)
    assert gone.status_code == 286  # htmx stops polling
    assert b"went back to the queue" in gone.content


def test_the_quota_message_is_a_page_not_an_error(review_dataset, alice, lead, queued):
    from review.services.quotas import quota_set

    quota_set(actor=lead, dataset=review_dataset, reviewer=None, daily_limit=1)
    client = login(alice)
    client.get("/review/demo/")
    client.post(_url("review:decide", "demo", queued[0]), {"verdict": "approve"})

    response = client.get("/review/demo/")

    assert response.status_code == 200
    assert b"today&#x27;s quota" in response.content or b"today's quota" in response.content
    assert b"daily limit is 1" in response.content


def test_item_text_is_escaped_and_whitespace_kept(review_dataset, alice):
    make_item(review_dataset, text='<script>alert(1)</script>\n  <img src=x onerror="x()">')

    content = login(alice).get("/review/demo/").content

    assert b"<script>alert" not in content
    assert (
        b"&lt;script&gt;alert(1)&lt;/script&gt;\n  &lt;img src=x onerror=&quot;x()&quot;&gt;"
        in content
    )


def test_a_long_text_is_folded(review_dataset, alice):
    make_item(review_dataset, text="word " * 2000)

    response = login(alice).get("/review/demo/")

    assert response.context["text_folded"]
    assert b"Show the remaining" in response.content


def test_votes_on_an_open_item_stay_hidden_from_reviewers(review_dataset, alice, bob, lead):
    ReviewPolicy.objects.create(
        dataset=review_dataset, consensus_approvals=2, consensus_min_generation=0
    )
    item = make_item(review_dataset)
    client = login(alice)
    client.get("/review/demo/")
    client.post(_url("review:decide", "demo", item), {"verdict": "approve"})

    assert login(bob).get(_url("review:item", "demo", item)).context["decisions"] is None
    assert len(login(lead).get(_url("review:item", "demo", item)).context["decisions"]) == 1


def test_security_headers(review_dataset, alice, queued):
    response = login(alice).get("/review/demo/")

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


def test_csrf_is_enforced_on_htmx_posts(review_dataset, alice, queued):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get("/review/demo/")
    token = page.context["csrf_token"]
    url = _url("review:decide", "demo", queued[0])

    assert client.post(url, {"verdict": "approve"}, **HTMX).status_code == 403
    ok = client.post(url, {"verdict": "approve"}, HTTP_X_CSRFTOKEN=str(token), **HTMX)
    assert ok.status_code == 200
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\''.encode() in page.content


def test_review_templates_and_code_never_mark_text_safe():
    sources = list((ROOT / "templates" / "review").glob("*.html")) + list(
        (ROOT / "review").rglob("*.py")
    )
    for path in sources:
        text = path.read_text()
        assert "|safe" not in text, path
        assert "mark_safe" not in text, path
        assert "style=" not in text, path
        assert "<script>" not in text, path


# The query counts of these pages are pinned in tests/review/test_round_trips.py.


def test_the_triage_page_links_the_parents_in_order(review_dataset, alice):
    item = make_item(review_dataset, priority=100)
    parents = [make_item(review_dataset, state=Item.State.APPROVED) for _ in range(3)]
    for parent in reversed(parents):
        ItemParent.objects.create(child=item, parent=parent)

    response = login(alice).get("/review/demo/")

    assert response.context["item"].pk == item.pk
    assert response.context["parent_ids"] == [p.pk for p in parents]
    for parent in parents:
        assert f'href="/review/demo/items/{parent.pk}/"'.encode() in response.content


# --- admin pages ---------------------------------------------------------------------------------


def test_the_old_settings_address_redirects_to_the_settings_page(review_dataset, alice, lead):
    assert login(alice).get("/review/demo/settings/").status_code == 403
    response = login(lead).get("/review/demo/settings/")

    assert response.status_code == 301
    assert response["Location"] == "/datasets/demo/settings/"


def test_settings_page_shows_the_forms(review_dataset, lead):
    response = login(lead).get("/datasets/demo/settings/")

    assert response.status_code == 200
    assert b"machine_written: Looks machine-written" in response.content
    assert b'id="quota-form"' in response.content


def test_settings_page_states_what_share_of_ingest_the_lm_queue_keeps_up_with(
    review_dataset, lead, settings, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from corpus.services import lm_scoring
    from dashboard.models import DashboardDay

    # Given the LM detector on, no batch scored yet, and a busiest day of 86,400 items (1/s)
    settings.SYNTHGATE_LM_DETECTOR = True
    settings.SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE = 0.2
    today = timezone.localtime().date()
    DashboardDay.objects.create(dataset=review_dataset, day=today, ingested=86_400)
    DashboardDay.objects.create(dataset=review_dataset, day=today - timedelta(days=1), ingested=10)
    page = login(lead).get("/datasets/demo/settings/").content.decode()
    # Then the page says the rate is assumed from the setting
    assert "assumed (<code>SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE</code>" in page
    assert "0.20 texts/s per core" in page

    # When a two-core worker has measured 0.25 texts per core-second
    class Worker:
        version, precision, device = "v1", "bf16", "cpu"

    monkeypatch.setattr(lm_scoring.os, "sched_getaffinity", lambda pid: {0, 1})
    lm_scoring.record_throughput(texts=10, seconds=40.0, detector=Worker())
    page = login(lead).get("/datasets/demo/settings/").content.decode()
    # Then it states the measured rate, its total and the share of ingest it keeps up with
    assert "measured 0.25 texts/s per core x 2 = 0.5 texts/s, 50% of the busiest day" in page
    assert "(1.00 items/s); the rest is sampled" in page


def test_a_bad_policy_is_a_400_with_the_field_error(review_dataset, lead):
    response = login(lead).post(
        "/datasets/demo/settings/review-policy", {"consensus_approvals": 12, "gold_rate": 0}
    )

    assert response.status_code == 400
    assert response.context["policy_form"].errors["consensus_approvals"]
    assert not ReviewPolicy.objects.exists()


def test_a_bad_reason_list_is_a_400_with_the_line_at_fault(review_dataset, lead):
    response = login(lead).post("/datasets/demo/settings/reasons", {"reasons": "dup\nx: y"})

    assert response.status_code == 400
    assert b"Line 1: write it as" in response.content


def test_saving_reasons_changes_the_triage_keys(review_dataset, alice, lead, queued):
    login(lead).post(
        "/datasets/demo/settings/reasons", {"reasons": "pii: Personal data\nspam: Spam"}
    )

    page = login(alice).get("/review/demo/")

    assert [r["key"] for r in page.context["reasons"]] == ["pii", "spam"]
    assert b'data-digit="2"' in page.content and b'data-digit="3"' not in page.content


def test_the_reviewer_page_shows_rates_and_timing(review_dataset, alice, lead, queued):
    from datetime import timedelta

    from django.utils import timezone

    client = login(alice)
    for _ in range(2):
        client.get("/review/demo/")
        Claim.objects.update(claimed_at=timezone.now() - timedelta(seconds=30))
        held = Claim.objects.get().item_id
        client.post(
            _url("review:decide", "demo", Item.objects.get(pk=held)), {"verdict": "approve"}
        )

    response = login(lead).get("/review/demo/reviewers/", {"days": 7})

    row = response.context["rows"][0]
    assert (row.username, row.decisions, row.approval_rate) == ("alice", 2, 1.0)
    assert row.median_seconds == pytest.approx(30, abs=3)
    assert b"100%" in response.content
    assert login(lead).get("/review/demo/reviewers/", {"days": 3}).status_code == 400


def test_an_expired_session_sends_htmx_to_the_login_page(client, review_dataset, queued):
    response = client.post(
        _url("review:decide", "demo", queued[0]),
        {"verdict": "approve"},
        HTTP_HX_CURRENT_URL="http://testserver/review/demo/",
        **HTMX,
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Freview%2Fdemo%2F"
