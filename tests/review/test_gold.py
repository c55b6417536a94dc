"""Gold items: mixed in at a rate, never settled by review, measured per reviewer."""

import pytest
from django.utils import timezone

from corpus.models import AuditEvent, Item
from review.models import GoldItem, ReviewPolicy
from review.selectors import day_start, reviewer_stats
from review.services import ReviewError
from review.services.decisions import decision_record
from review.services.gold import gold_mark, gold_unmark
from review.services.queue import item_claim
from tests.review.conftest import make_item


@pytest.fixture
def gold_item(review_dataset, lead):
    item = make_item(review_dataset, priority=-10)
    gold_mark(actor=lead, dataset=review_dataset, item_id=item.pk, expected="reject")
    return item


def test_marking_gold_flags_the_item_for_the_corpus_and_audits(review_dataset, lead, gold_item):
    assert Item.objects.get(pk=gold_item.pk).is_gold
    assert GoldItem.objects.get().expected == "reject"
    assert AuditEvent.objects.filter(action="review.gold_marked").count() == 1


def test_gold_is_served_at_the_dataset_rate(review_dataset, alice, gold_item, queued, monkeypatch):
    ReviewPolicy.objects.create(dataset=review_dataset, gold_rate=0.5)
    import review.services.queue as queue

    monkeypatch.setattr(queue._random, "random", lambda: 0.4)  # under the rate: gold
    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == gold_item.pk


def test_gold_is_not_served_above_the_rate(review_dataset, alice, gold_item, queued, monkeypatch):
    ReviewPolicy.objects.create(dataset=review_dataset, gold_rate=0.5)
    import review.services.queue as queue

    monkeypatch.setattr(queue._random, "random", lambda: 0.6)
    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == queued[0].pk


def test_without_a_gold_rate_gold_items_stay_out_of_the_queue(review_dataset, alice, gold_item):
    assert item_claim(dataset=review_dataset, reviewer=alice).status == "empty"


def test_a_gold_answer_never_settles_the_item(review_dataset, alice, bob, gold_item, monkeypatch):
    import review.services.queue as queue

    ReviewPolicy.objects.create(dataset=review_dataset, gold_rate=0.5)
    monkeypatch.setattr(queue._random, "random", lambda: 0.0)
    for user, verdict in ((alice, "approve"), (bob, "reject")):
        held = item_claim(dataset=review_dataset, reviewer=user).claim
        assert held.item_id == gold_item.pk
        decision_record(
            dataset=review_dataset,
            reviewer=user,
            item_id=held.item_id,
            verdict=verdict,
            reason="duplicate" if verdict == "reject" else "",
        )

    assert Item.objects.get(pk=gold_item.pk).state == Item.State.QUEUED
    stats = {
        s.username: s
        for s in reviewer_stats(dataset=review_dataset, since=day_start(timezone.now()))
    }
    assert (stats["alice"].gold_answered, stats["alice"].gold_accuracy) == (1, 0.0)
    assert (stats["bob"].gold_answered, stats["bob"].gold_accuracy) == (1, 1.0)
    assert stats["alice"].decisions == 0  # gold answers are not counted as decisions


def test_only_queued_items_become_gold(review_dataset, lead):
    item = make_item(review_dataset, state=Item.State.APPROVED)

    with pytest.raises(ReviewError):
        gold_mark(actor=lead, dataset=review_dataset, item_id=item.pk, expected="approve")

    assert not Item.objects.get(pk=item.pk).is_gold
    assert not AuditEvent.objects.filter(action="review.gold_marked").exists()


def test_unmarking_returns_the_item_to_the_ordinary_queue(review_dataset, alice, lead, gold_item):
    gold_unmark(actor=lead, dataset=review_dataset, item_id=gold_item.pk)

    assert not Item.objects.get(pk=gold_item.pk).is_gold
    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == gold_item.pk
    assert AuditEvent.objects.filter(action="review.gold_unmarked").count() == 1
