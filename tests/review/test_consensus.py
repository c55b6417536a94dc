"""Consensus: rules that require N approvals from distinct reviewers; any reject rejects."""

import pytest

from corpus.models import AuditEvent, Item
from review.models import Decision, ReviewPolicy
from review.services.consensus import ItemFacts, required_approvals
from review.services.decisions import decision_record, decision_undo, decisions_bulk
from review.services.queue import item_claim
from tests.review.conftest import make_item


def _decide(dataset, user, verdict="approve", reason=""):
    held = item_claim(dataset=dataset, reviewer=user).claim
    return decision_record(
        dataset=dataset, reviewer=user, item_id=held.item_id, verdict=verdict, reason=reason
    )


@pytest.fixture
def policy(review_dataset):
    return ReviewPolicy.objects.create(
        dataset=review_dataset, consensus_approvals=2, consensus_min_detector=0.8
    )


@pytest.mark.parametrize(
    ("probability", "generation", "origin", "needed"),
    [
        (0.9, 1, "synthetic", 2),
        (0.5, 1, "synthetic", 1),
        (None, 1, "synthetic", 1),
        (0.1, 3, "synthetic", 2),
        (0.1, 1, "unknown", 2),
    ],
)
def test_rules_decide_how_many_approvals_an_item_needs(
    review_dataset, probability, generation, origin, needed
):
    policy = ReviewPolicy(
        dataset=review_dataset,
        consensus_approvals=2,
        consensus_min_detector=0.8,
        consensus_min_generation=3,
        consensus_unknown_origin=True,
    )
    score = {"detector_probability": probability} if probability is not None else None
    item = make_item(review_dataset, generation=generation, origin=origin, score=score)

    assert required_approvals(policy=policy, facts=ItemFacts.of(item)) == needed


def test_a_consensus_item_needs_two_distinct_approvals(review_dataset, alice, bob, policy):
    item = make_item(review_dataset, score={"detector_probability": 0.95})

    first = _decide(review_dataset, alice)
    assert Item.objects.get(pk=item.pk).state == Item.State.QUEUED
    assert first.tally.approvers == [alice.pk]

    second = _decide(review_dataset, bob)

    settled = Item.objects.get(pk=item.pk)
    assert second.item_state == settled.state == Item.State.APPROVED
    assert settled.decided_by == sorted([alice.pk, bob.pk])
    payloads = [e.payload for e in AuditEvent.objects.filter(action="review.decided")]
    assert [(p["approvals"], p["required"], p["outcome"]) for p in payloads] == [
        (1, 2, "queued"),
        (2, 2, "approved"),
    ]


def test_any_reject_rejects_a_consensus_item(review_dataset, alice, bob, policy):
    item = make_item(review_dataset, score={"detector_probability": 0.95})
    _decide(review_dataset, alice)

    _decide(review_dataset, bob, verdict="reject", reason="low_quality")

    settled = Item.objects.get(pk=item.pk)
    assert settled.state == Item.State.REJECTED
    assert settled.decided_by == [bob.pk]


def test_an_item_below_the_rules_settles_with_one_approval(review_dataset, alice, policy):
    item = make_item(review_dataset, score={"detector_probability": 0.2})

    _decide(review_dataset, alice)

    assert Item.objects.get(pk=item.pk).state == Item.State.APPROVED


def test_bulk_approve_only_adds_a_vote_on_consensus_items(review_dataset, alice, policy):
    plain = make_item(review_dataset, score={"detector_probability": 0.1})
    strict = make_item(review_dataset, score={"detector_probability": 0.99})

    outcome = decisions_bulk(
        dataset=review_dataset, reviewer=alice, item_ids=[plain.pk, strict.pk], verdict="approve"
    )

    assert (outcome.settled, outcome.recorded) == ([plain.pk], [strict.pk])
    assert Item.objects.get(pk=strict.pk).state == Item.State.QUEUED


def test_undoing_the_deciding_approval_reopens_a_consensus_item(review_dataset, alice, bob, policy):
    item = make_item(review_dataset, score={"detector_probability": 0.95})
    _decide(review_dataset, alice)
    _decide(review_dataset, bob)

    decision_undo(dataset=review_dataset, reviewer=bob)

    reopened = Item.objects.get(pk=item.pk)
    assert reopened.state == Item.State.QUEUED
    # Alice's vote still counts: one more approval from anyone but alice settles it.
    assert Decision.objects.filter(item=item, undone_at__isnull=True).count() == 1
    _decide(review_dataset, bob)
    assert Item.objects.get(pk=item.pk).state == Item.State.APPROVED


def test_undoing_an_approval_does_not_reopen_another_reviewers_rejection(
    review_dataset, alice, bob, policy
):
    item = make_item(review_dataset, score={"detector_probability": 0.95})
    _decide(review_dataset, alice)
    _decide(review_dataset, bob, verdict="reject", reason="unsafe")

    decision_undo(dataset=review_dataset, reviewer=alice)

    kept = Item.objects.get(pk=item.pk)
    assert (kept.state, kept.decided_by) == (Item.State.REJECTED, [bob.pk])
