"""The round-trip budget of the claim / decide / undo / bulk path, in one place.

Each request below is counted twice over data of different sizes, so a count that grows with
the queue fails, and pinned: on PostgreSQL every count is a round trip to the server (the
statements a unit of work sends as one query string count once; BEGIN and COMMIT are not
counted), on SQLite a statement. Part of each count is the corpus's (outcome, feed, audit
chain): a change to either side that adds a round trip shows here first.
"""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from corpus.models import AuditHead, Item, ItemParent
from review.models import Claim, Decision, ReviewPolicy
from review.services.decisions import decision_record, decisions_bulk
from review.services.queue import item_claim
from tests.review.conftest import login, make_item

HTMX = {"HTTP_HX_REQUEST": "true"}

# Session, user, the dataset (with its policy and the user's roles), then the page's own reads;
# a new lease takes the audit chain lock in the round trip that picks and leases the next item
# (one INSERT ... SELECT) and reads it for the page, and appends its audit event at commit
# (head update and insert, one statement on PostgreSQL). Every page that shows an item also
# lists its near-duplicate matches (corpus.selectors.item_matches): one statement.
TRIAGE = {"postgresql": 11, "sqlite": 15}
# A decision sends the audit chain lock with its reads (quota, the end of the lease, the item's
# row lock); its INSERT, the reviewer's count of the day and the outcome (with an approval's
# feed entry) ride with the next lease's statements, which also read the leased item.
DECIDE_AND_NEXT = {"postgresql": 9, "sqlite": 19}
# Undo re-renders the triage page with the item back in the reviewer's hands.
UNDO = {"postgresql": 29, "sqlite": 30}
SKIP = {"postgresql": 17, "sqlite": 22}
# Bulk decisions: the same count for any number of items. The quota and every item's row lock
# (with what a decision reads of it) go with the audit chain lock; the decisions' INSERT, the
# outcomes, the approvals' feed entries, the day's count and the end of the reviewer's leases
# are one statement each, sent together at commit on PostgreSQL. Items that already have other
# reviewers' votes add one read (their live decisions, all in one), whatever their number.
BULK = {"postgresql": 8, "sqlite": 16}
BULK_WITH_VOTES = {"postgresql": 9, "sqlite": 17}
LIST = {"postgresql": 5, "sqlite": 5}

_serial = itertools.count()


def _rich_item(dataset, parents=3):
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


def _count(call):
    with CaptureQueriesContext(connection) as queries:
        response = call()
    return len(queries), response


@pytest.fixture
def chain(db):
    AuditHead.objects.get_or_create(pk=1)  # the chain's first append creates it: not our cost


def _grow(dataset, size):
    for _ in range(size):
        _rich_item(dataset, parents=4)


@pytest.mark.parametrize("size", [2, 30])
def test_triage_page(review_dataset, alice, chain, size):
    client = login(alice)
    make_item(review_dataset, text="plain")
    client.get("/review/demo/")  # warms the reference-median cache
    _grow(review_dataset, size)
    Claim.objects.all().delete()

    count, response = _count(lambda: client.get("/review/demo/"))

    assert response.status_code == 200
    assert count == TRIAGE[connection.vendor]


@pytest.mark.parametrize("size", [2, 30])
def test_decide_and_next(review_dataset, alice, chain, size):
    _grow(review_dataset, size)
    client = login(alice)
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    client.get("/review/demo/")
    url = reverse("review:decide", args=["demo", held.item_id])

    count, response = _count(lambda: client.post(url, {"verdict": "approve"}, **HTMX))

    assert response.status_code == 200
    assert Item.objects.get(pk=held.item_id).state == Item.State.APPROVED
    assert count == DECIDE_AND_NEXT[connection.vendor]


@pytest.mark.parametrize("size", [2, 30])
def test_skip(review_dataset, alice, chain, size):
    _grow(review_dataset, size)
    client = login(alice)
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    client.get("/review/demo/")
    url = reverse("review:skip", args=["demo", held.item_id])

    count, response = _count(lambda: client.post(url, **HTMX))

    assert response.status_code == 200
    assert count == SKIP[connection.vendor]


@pytest.mark.parametrize("size", [2, 30])
def test_undo(review_dataset, alice, chain, size):
    _grow(review_dataset, size)
    client = login(alice)
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    decision_record(
        dataset=review_dataset,
        reviewer=alice,
        item_id=held.item_id,
        verdict="reject",
        reason="duplicate",
    )
    client.get("/review/demo/")

    count, response = _count(lambda: client.post(reverse("review:undo", args=["demo"]), **HTMX))

    assert response.status_code == 200
    assert Item.objects.get(pk=held.item_id).state == Item.State.QUEUED
    assert count == UNDO[connection.vendor]


@pytest.mark.parametrize("size", [2, 30])
def test_bulk_decision(review_dataset, alice, chain, size):
    _grow(review_dataset, size)
    ids = [make_item(review_dataset).pk for _ in range(size)]
    client = login(alice)
    url = reverse("review:bulk", args=["demo"])

    count, response = _count(
        lambda: client.post(
            url, {"items": [str(i) for i in ids], "verdict": "approve", "confirm": "on"}
        )
    )

    assert response.status_code in (200, 302)
    assert Decision.objects.filter(item_id__in=ids).count() == len(ids)
    assert count == BULK[connection.vendor]


@pytest.mark.parametrize("size", [2, 30])
def test_bulk_decision_on_consensus_items_with_votes(review_dataset, alice, bob, chain, size):
    # Given items that need two approvals, half of them approved by bob already
    ReviewPolicy.objects.create(
        dataset=review_dataset, consensus_approvals=2, consensus_min_generation=0
    )
    _grow(review_dataset, size)
    ids = [make_item(review_dataset).pk for _ in range(size)]
    decisions_bulk(dataset=review_dataset, reviewer=bob, item_ids=ids[::2], verdict="approve")
    client = login(alice)
    url = reverse("review:bulk", args=["demo"])

    # When alice approves them all
    count, response = _count(
        lambda: client.post(
            url, {"items": [str(i) for i in ids], "verdict": "approve", "confirm": "on"}
        )
    )

    # Then bob's items settle, the others wait, in as many round trips whatever their number
    assert response.status_code == 200
    states = dict(Item.objects.filter(pk__in=ids).values_list("id", "state"))
    assert [states[i] for i in ids] == ["approved", "queued"] * (size // 2)
    assert count == BULK_WITH_VOTES[connection.vendor]


@pytest.mark.parametrize("size", [2, 60])
def test_list_page(review_dataset, alice, chain, size):
    client = login(alice)
    _grow(review_dataset, size)

    count, response = _count(lambda: client.get("/review/demo/items/"))

    assert response.status_code == 200
    assert len(response.context["page"].items) == min(size, 50)
    assert count == LIST[connection.vendor]
