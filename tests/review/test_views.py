"""Each review page: the allowed case, the wrong method, each refused role; query counts;
htmx partials; security headers."""

import itertools
from pathlib import Path

import pytest
from django.urls import reverse

from corpus.models import AuditEvent, Item, ItemParent
from review.models import Claim, Decision, ReviewPolicy
from review.services.queue import item_claim
from tests.factories import UserFactory
from tests.review.conftest import login, make_item

ROOT = Path(__file__).resolve().parents[2]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def listed_without_role(review_dataset):  # type: ignore[no-untyped-def]
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
ADMIN_READS = ["review:settings", "review:stats"]
ADMIN_WRITES = [
    ("review:policy", {"consensus_approvals": 2, "gold_rate": 0}),
    ("review:reasons", {"reasons": "duplicate: Duplicate"}),
    ("review:quota", {"daily_limit": 10}),
]


def _url(name, slug, item=None):  # type: ignore[no-untyped-def]
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


@pytest.mark.parametrize(("name", "data"), ADMIN_WRITES)
def test_admin_writes_are_for_admins(client, review_dataset, alice, charlie, lead, name, data):
    url = _url(name, "demo")

    assert client.post(url, data).status_code == 302
    assert login(charlie).post(url, data).status_code == 404
    assert login(alice).post(url, data).status_code == 403
    assert login(lead).get(url).status_code == 405
    response = login(lead).post(url, data)
    assert response.status_code == 303
    assert response["Location"] == "/review/demo/settings/"


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


# --- constant query counts -----------------------------------------------------------------------


_serial = itertools.count()


def _rich_item(dataset, parents=3):  # type: ignore[no-untyped-def]
    n = next(_serial)
    near = make_item(dataset, state=Item.State.APPROVED, text=f"the quick brown fox {n} jumps over")
    item = make_item(
        dataset,
        priority=100,
        text=f"so the quick brown fox {n} jumps over it again",
        score={
            "near_duplicate_of": near,
            "near_duplicate_jaccard": 0.7,
            "lexical": {"distinct_1": 0.8, "distinct_2": 0.9},
            "detector_probability": 0.9,
            "detector_name": "d",
        },
    )
    for _ in range(parents):
        ItemParent.objects.create(child=item, parent=make_item(dataset, state=Item.State.APPROVED))
    return item


def _triage_queries(client, django_assert_num_queries, n):  # type: ignore[no-untyped-def]
    from django.db import connection

    Claim.objects.all().delete()
    with django_assert_num_queries(n[connection.vendor]):
        assert client.get("/review/demo/").status_code == 200


def test_triage_page_query_count_is_constant(review_dataset, alice, django_assert_num_queries):
    client = login(alice)
    make_item(review_dataset, text="plain")
    client.get("/review/demo/")  # warms the reference-median cache
    _triage_queries(client, django_assert_num_queries, TRIAGE_QUERIES)

    _rich_item(review_dataset, parents=5)
    for _ in range(20):
        make_item(review_dataset)
    _triage_queries(client, django_assert_num_queries, TRIAGE_QUERIES)


def test_decide_and_next_query_count_is_constant(review_dataset, alice):
    """Part of the count is the corpus's (outcome, feed, audit chain), so the test compares
    runs over different amounts of data instead of pinning a number that is not all ours."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from corpus.models import AuditHead

    AuditHead.objects.get_or_create(pk=1)  # the chain's first append creates it: not our cost
    client = login(alice)
    counts = []
    for size in (2, 30):
        for _ in range(size):
            _rich_item(review_dataset, parents=4)
        held = item_claim(dataset=review_dataset, reviewer=alice).claim
        client.get("/review/demo/")
        url = _url("review:decide", "demo", Item.objects.get(pk=held.item_id))
        with CaptureQueriesContext(connection) as queries:
            assert client.post(url, {"verdict": "approve"}, **HTMX).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] == DECIDE_QUERIES[connection.vendor]


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


def test_list_page_query_count_is_constant(review_dataset, alice, django_assert_num_queries):
    client = login(alice)
    make_item(review_dataset)
    with django_assert_num_queries(LIST_QUERIES):
        client.get("/review/demo/items/")
    for _ in range(60):
        _rich_item(review_dataset, parents=1)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/review/demo/items/")
    assert len(response.context["page"].items) == 50


# Session, user, the dataset (with its policy and the user's roles), then the page's own reads
# (see the views); a new lease appends its audit event (head update, insert: the head row is
# read once, by the lock the request takes before its row locks). On
# PostgreSQL the statements review.sql sends as one query string count once, the next item
# is picked and leased by one INSERT ... SELECT, an approval's feed entry is appended by the
# outcome's UPDATE, a few audit events and the head update are one statement, and a decision
# sends its audit lock with its reads, its INSERT and the outcome with the next lease's
# statements, which also read the leased item for the page. A decision adds itself to the
# reviewer's count of the day (what the quota reads: one row instead of a count of the day's
# decisions): on PostgreSQL with the lease's statements, on SQLite one statement more.
# One of them lists the item's near-duplicate matches (review.selectors.item_matches).
TRIAGE_QUERIES = {"postgresql": 12, "sqlite": 16}
DECIDE_QUERIES = {"postgresql": 9, "sqlite": 20}
LIST_QUERIES = 5


# --- admin pages ---------------------------------------------------------------------------------


def test_settings_page_shows_the_forms(review_dataset, lead):
    response = login(lead).get("/review/demo/settings/")

    assert response.status_code == 200
    assert b"machine_written: Looks machine-written" in response.content
    assert b'id="quota-form"' in response.content


def test_a_bad_policy_is_a_400_with_the_field_error(review_dataset, lead):
    response = login(lead).post(
        "/review/demo/settings/policy", {"consensus_approvals": 12, "gold_rate": 0}
    )

    assert response.status_code == 400
    assert response.context["policy_form"].errors["consensus_approvals"]
    assert not ReviewPolicy.objects.exists()


def test_a_bad_reason_list_is_a_400_with_the_line_at_fault(review_dataset, lead):
    response = login(lead).post("/review/demo/settings/reasons", {"reasons": "dup\nx: y"})

    assert response.status_code == 400
    assert b"Line 1: write it as" in response.content


def test_saving_reasons_changes_the_triage_keys(review_dataset, alice, lead, queued):
    login(lead).post("/review/demo/settings/reasons", {"reasons": "pii: Personal data\nspam: Spam"})

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
