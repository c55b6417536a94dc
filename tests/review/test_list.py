"""List mode: filters, sorting, keyset pages, bulk decisions behind a confirmation."""

import pytest

from corpus.models import Item
from review.models import Decision
from review.services.gold import gold_mark
from tests.review.conftest import login, make_item


def _ids(response):
    return [row["id"] for row in response.context["page"].items]


def test_the_list_opens_on_the_queue_in_priority_order(review_dataset, alice, queued):
    make_item(review_dataset, state=Item.State.APPROVED, priority=99)

    response = login(alice).get("/review/demo/items/")

    assert _ids(response) == [q.pk for q in queued]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"band": "high"}, ["hot"]),
        ({"band": "low"}, ["cold"]),
        ({"band": "unscored"}, ["plain"]),
        ({"near_duplicate": "yes"}, ["hot"]),
        ({"degenerate": "yes"}, ["cold"]),
        ({"origin": "human"}, ["cold"]),
        ({"generator": "gpt-x"}, ["hot"]),
        ({"state": "approved"}, ["done"]),
        ({"sort": "detector"}, ["hot", "cold", "plain"]),
        ({"sort": "oldest"}, ["plain", "hot", "cold"]),
        ({"sort": "newest"}, ["cold", "hot", "plain"]),
    ],
)
def test_filters_and_sorts(review_dataset, alice, params, expected):
    plain = make_item(review_dataset, priority=3)
    other = make_item(review_dataset, state=Item.State.APPROVED)
    hot = make_item(
        review_dataset,
        priority=2,
        generator_model="gpt-x",
        score={
            "detector_probability": 0.95,
            "near_duplicate_of": other,
            "near_duplicate_jaccard": 0.6,
        },
    )
    cold = make_item(
        review_dataset,
        priority=1,
        origin="human",
        score={"detector_probability": 0.1, "degenerate": True, "degenerate_reason": "loop"},
    )
    names = {plain.pk: "plain", hot.pk: "hot", cold.pk: "cold", other.pk: "done"}

    response = login(alice).get("/review/demo/items/", params)

    assert response.status_code == 200
    assert [names[i] for i in _ids(response)] == expected


@pytest.mark.parametrize("sort", ["priority", "detector", "oldest", "newest"])
def test_keyset_pages_cover_every_row_once(review_dataset, alice, sort):
    for i in range(120):
        make_item(
            review_dataset, priority=float(i % 7), score={"detector_probability": (i % 5) / 5}
        )
    client = login(alice)

    seen = []
    url = f"/review/demo/items/?sort={sort}"
    while url:
        response = client.get(url if url.startswith("/") else "/review/demo/items/" + url)
        seen += _ids(response)
        url = response.context["next_url"]

    assert len(seen) == len(set(seen)) == 120


def test_a_broken_cursor_is_a_400_with_a_message(review_dataset, alice, queued):
    response = login(alice).get("/review/demo/items/", {"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert b"page link is broken" in response.content


def test_gold_items_are_hidden_from_reviewers_and_flagged_for_admins(
    review_dataset, alice, lead, queued
):
    gold_mark(actor=lead, dataset=review_dataset, item_id=queued[0].pk, expected="approve")

    assert queued[0].pk not in _ids(login(alice).get("/review/demo/items/"))
    admin_page = login(lead).get("/review/demo/items/")
    assert queued[0].pk in _ids(admin_page)
    assert b'class="tag gold"' in admin_page.content


def test_bulk_asks_for_confirmation_stating_the_count(review_dataset, alice, queued):
    data = {"items": [q.pk for q in queued[:3]], "verdict": "reject", "reason": "duplicate"}

    response = login(alice).post("/review/demo/items/bulk", data)

    assert response.status_code == 200
    assert (
        b"Reject <strong>3 items</strong> as \xe2\x80\x9cDuplicate\xe2\x80\x9d?" in response.content
    )
    assert not Decision.objects.exists()


def test_confirmed_bulk_reject_reports_what_it_left_out(review_dataset, alice, bob, queued):
    login(bob).get("/review/demo/")  # bob holds queued[0]
    data = {
        "items": [q.pk for q in queued],
        "verdict": "reject",
        "reason": "duplicate",
        "confirm": "on",
        "back": "/review/demo/items/?state=queued",
    }

    response = login(alice).post("/review/demo/items/bulk", data)

    assert response.status_code == 200
    assert b"Rejected 4 of 5 items." in response.content
    assert b"open on another reviewer" in response.content
    assert response.context["back"] == "/review/demo/items/?state=queued"
    assert Item.objects.filter(state=Item.State.REJECTED).count() == 4


def test_bulk_without_selection_or_reason_is_a_400(review_dataset, alice, queued):
    client = login(alice)

    assert client.post("/review/demo/items/bulk", {"verdict": "approve"}).status_code == 400
    no_reason = client.post(
        "/review/demo/items/bulk", {"items": [queued[0].pk], "verdict": "reject", "confirm": "on"}
    )
    assert no_reason.status_code == 400
    assert b"Choose a reason" in no_reason.content
    assert not Decision.objects.exists()


def test_bulk_back_link_cannot_leave_the_site(review_dataset, alice, queued):
    data = {"items": [queued[0].pk], "verdict": "approve", "back": "//evil.example/x"}

    response = login(alice).post("/review/demo/items/bulk", data)

    assert response.context["back"] == "/review/demo/items/"
