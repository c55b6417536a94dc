"""A bulk decision is the same as deciding its items one by one.

Two identical datasets (the same items in the same order, the same consensus policy, votes,
gold checks, leases and quota): on the first a reviewer decides 500 items in one bulk call, on
the second the same items one call each, in id order. Everything the decisions leave behind
must match item for item: the outcome reported, item states, decision rows, feed entries, audit
payloads, the day's count and the leases.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from corpus.models import AuditEvent, FeedEntry, Item, Score, Source
from review.models import Claim, Decision, ReviewerDay, ReviewPolicy
from review.services.decisions import BulkOutcome, decisions_bulk
from review.services.gold import gold_mark
from review.services.quotas import quota_set
from tests.factories import ItemFactory
from tests.review.conftest import many_items, votes_after_stale_statistics

AUDIT_EVENTS = connection.ops.quote_name(AuditEvent._meta.db_table)
ITEMS = 499  # and one id that is in neither dataset: 500 in the selection
QUOTA = 300  # alice's daily limit: it runs out mid-selection


def _world(dataset: Any, alice: Any, bob: Any, lead: Any, tag: str) -> list[int]:
    """The dataset's items in creation (and id) order, with every kind of item a bulk
    selection meets; the same for any dataset."""
    ReviewPolicy.objects.create(dataset=dataset, consensus_approvals=2, consensus_min_detector=0.8)
    source = Source.objects.create(dataset=dataset, name=f"bulk-{tag}")
    items = Item.objects.bulk_create(
        ItemFactory.build(
            dataset=dataset,
            source=source,
            text=f"{tag} item {i}",
            content_hash=f"{tag}-{i:04d}",
            state=Item.State.APPROVED if i % 97 == 50 else Item.State.QUEUED,
        )
        for i in range(ITEMS)
    )
    # Every fifth item needs two approvals (a detector probability over the rule's 0.8).
    Score.objects.bulk_create(
        Score(
            item=item,
            scorer_version="1",
            detector_probability=0.9 if i % 5 == 0 else 0.1,
        )
        for i, item in enumerate(items)
    )
    ids = [item.pk for item in items]
    # Bob's earlier votes: approvals of consensus items (one more settles them), an approval
    # and a rejection of plain items (settled already).
    decisions_bulk(dataset=dataset, reviewer=bob, item_ids=ids[0::10], verdict="approve")
    decisions_bulk(dataset=dataset, reviewer=bob, item_ids=[ids[1], ids[201]], verdict="approve")
    decisions_bulk(
        dataset=dataset, reviewer=bob, item_ids=[ids[11]], verdict="reject", reason="duplicate"
    )
    # Alice voted on one consensus item already (it waits for a second approval).
    decisions_bulk(dataset=dataset, reviewer=alice, item_ids=[ids[15]], verdict="approve")
    for i in range(3, ITEMS, 50):
        gold_mark(actor=lead, dataset=dataset, item_id=ids[i], expected="approve")
    now = timezone.now()
    # Bob has one item open; alice's own lease on another ends with its decision.
    for i, user in ((7, bob), (8, alice)):
        Claim.objects.create(
            item_id=ids[i],
            dataset=dataset,
            reviewer=user,
            claimed_at=now,
            expires_at=now + timedelta(minutes=10),
        )
    quota_set(actor=lead, dataset=dataset, reviewer=alice, daily_limit=QUOTA)
    return ids


def _merge(outcomes: list[BulkOutcome]) -> BulkOutcome:
    merged = BulkOutcome()
    for outcome in outcomes:
        merged.settled += outcome.settled
        merged.recorded += outcome.recorded
        for why, ids in outcome.left_out.items():
            merged.left_out.setdefault(why, []).extend(ids)
    return merged


def _left(dataset: Any, ids: list[int], outcome: BulkOutcome) -> dict[str, Any]:
    """Everything the decisions left, with each item named by its place in the dataset."""
    at = {item_id: n for n, item_id in enumerate(ids)}
    at[ids[-1]] = "missing"
    decisions = Decision.objects.filter(dataset=dataset)
    decided = dict(decisions.values_list("pk", "item_id"))
    events = []
    for event in AuditEvent.objects.filter(dataset=dataset, action="review.decided").order_by(
        "seq"
    ):
        payload = dict(event.payload)
        # The decision id is the stored decision's (of the reviewer, on that item).
        decision = payload.pop("decision")
        events.append((at[int(event.object_id)], decided.get(decision) == int(event.object_id)))
        events.append(payload)
    return {
        "outcome": (
            [at[i] for i in outcome.settled],
            [at[i] for i in outcome.recorded],
            {why: [at[i] for i in left] for why, left in outcome.left_out.items()},
        ),
        "items": [
            (at[pk], state, reason, decided_by)
            for pk, state, reason, decided_by in Item.objects.filter(dataset=dataset)
            .order_by("pk")
            .values_list("pk", "state", "state_reason", "decided_by")
        ],
        "decisions": sorted(
            (at[d.item_id], d.reviewer_id, d.verdict, d.reason, d.via, d.gold_expected)
            for d in decisions.filter(undone_at__isnull=True)
        ),
        "feed": [
            (at[item_id], kind)
            for item_id, kind in FeedEntry.objects.filter(dataset=dataset)
            .order_by("seq")
            .values_list("item_id", "kind")
        ],
        "audit": events,
        "day": list(
            ReviewerDay.objects.filter(dataset=dataset)
            .order_by("reviewer_id")
            .values_list("reviewer_id", "decided")
        ),
        "leases": sorted(
            (at[c.item_id], c.reviewer_id) for c in Claim.objects.filter(dataset=dataset)
        ),
    }


@pytest.mark.parametrize(("verdict", "reason"), [("approve", ""), ("reject", "duplicate")])
def test_a_bulk_decision_leaves_what_deciding_one_by_one_leaves(
    dataset, other_dataset, alice, bob, lead, verdict, reason
):
    # Given two identical datasets
    other_dataset.reviewers.add(alice, bob)
    worlds = []
    for tag, ds in (("bulk", dataset), ("single", other_dataset)):
        ids = _world(ds, alice, bob, lead, tag)
        worlds.append((ds, ids))
    missing = max(ids) + 1_000_000
    (bulk_ds, bulk_ids), (single_ds, single_ids) = worlds
    bulk_ids.append(missing)
    single_ids.append(missing)

    # When alice decides 500 items in one call on the first, one by one on the second
    bulk = decisions_bulk(
        dataset=bulk_ds, reviewer=alice, item_ids=bulk_ids, verdict=verdict, reason=reason
    )
    single = _merge(
        [
            decisions_bulk(
                dataset=single_ds, reviewer=alice, item_ids=[i], verdict=verdict, reason=reason
            )
            for i in sorted(single_ids)
        ]
    )

    # Then both leave the same things behind, item for item
    left = _left(bulk_ds, bulk_ids, bulk)
    assert left == _left(single_ds, single_ids, single)
    # ... and what they left is what the rules call for
    settled, recorded, left_out = left["outcome"]
    assert set(left_out) == {"missing", "gold", "settled", "held", "voted", "quota"}
    assert left_out["held"] == [7] and left_out["voted"] == [15]
    assert len(settled) + len(recorded) == QUOTA - 1  # alice's earlier vote took one slot
    assert left["day"][0] == (alice.pk, QUOTA)
    assert left["leases"] == [(7, bob.pk)]
    if verdict == "approve":
        assert 10 in settled  # bob's vote and alice's: two approvals
        assert 5 in recorded  # a consensus item with no other vote waits
        # Bob's two approvals, then alice's in item order
        feed = [n for n, _ in left["feed"]]
        assert feed[:2] == [1, 201] and feed[2:] == sorted(settled)
    else:
        assert not recorded  # a rejection settles any item


@pytest.mark.parametrize("size", [5, 200])
def test_a_bulk_decision_sends_as_many_statements_for_any_number_of_items(
    dataset, alice, bob, size
):
    # Given items that need two approvals, some approved by bob already
    ReviewPolicy.objects.create(dataset=dataset, consensus_approvals=2, consensus_min_detector=0.8)
    source = Source.objects.create(dataset=dataset, name="n")
    items = Item.objects.bulk_create(
        ItemFactory.build(dataset=dataset, source=source, content_hash=f"n-{i}")
        for i in range(size)
    )
    Score.objects.bulk_create(
        Score(item=item, scorer_version="1", detector_probability=0.9 if i % 2 else 0.1)
        for i, item in enumerate(items)
    )
    ids = [item.pk for item in items]
    decisions_bulk(dataset=dataset, reviewer=bob, item_ids=ids[1::4], verdict="approve")

    # When alice approves them all
    with CaptureQueriesContext(connection) as queries:
        outcome = decisions_bulk(dataset=dataset, reviewer=alice, item_ids=ids, verdict="approve")

    # Then the statements (round trips on PostgreSQL) do not grow with the selection. (The
    # audit append is not the decisions': on SQLite bulk_create splits its rows by the limit on
    # bound parameters; PostgreSQL copies them, one statement that the count does not see.)
    assert len(outcome.settled) + len(outcome.recorded) == size
    sent = [q["sql"] for q in queries if not q["sql"].startswith(f"INSERT INTO {AUDIT_EVENTS}")]
    assert len(sent) == {"postgresql": 7, "sqlite": 14}[connection.vendor], "\n".join(sent)


def test_the_reviewer_s_own_vote_is_read_per_item_whatever_the_statistics(
    review_dataset, alice, bob
):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL plan")
    from review import sql

    # Given statistics taken when alice had no decisions, and 3,000 of hers since (what a
    # filter-wide job by one admin leaves behind before the next ANALYZE)
    items = many_items(review_dataset, 5000)
    votes_after_stale_statistics(
        review_dataset, before=(bob, items[:2000]), after=(alice, items[2000:])
    )
    ids = [item.pk for item in items[4500:]]

    # When planning what a bulk decision reads of 500 items, and the same without the "+ 0"
    def plan(columns: str) -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                f"EXPLAIN SELECT {columns} FROM {Item._meta.db_table} i"
                f" LEFT JOIN {Score._meta.db_table} s ON s.item_id = i.id WHERE i.id = ANY(%s)",
                [alice.pk, ids],
            )
            return "\n".join(row[0] for row in cursor.fetchall())

    shipped = plan(sql._locked_columns())
    plain = plan(sql._locked_columns().replace("d.reviewer_id + 0", "d.reviewer_id"))

    # Then each item's decisions are probed by item, never alice's whole history
    assert "reviewer_id_" not in shipped and "decision_reviewer_recent" not in shipped, shipped
    assert "reviewer_id_" in plain or "decision_reviewer_recent" in plain, (
        "the planner no longer needs the hint: " + plain
    )
