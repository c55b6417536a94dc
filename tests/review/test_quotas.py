"""Daily quotas: a clear stop, not an error."""

from datetime import timedelta

import pytest
from django.utils import timezone

from corpus.models import AuditEvent
from review.models import Decision, ReviewerDay, ReviewerQuota
from review.services import ReviewError
from review.services.decisions import decision_record, decision_undo, decisions_bulk
from review.services.queue import item_claim
from review.services.quotas import quota_set


def _decide(dataset, user):
    held = item_claim(dataset=dataset, reviewer=user).claim
    return decision_record(dataset=dataset, reviewer=user, item_id=held.item_id, verdict="approve")


def test_at_the_quota_the_claim_says_so(review_dataset, alice, lead, queued):
    quota_set(actor=lead, dataset=review_dataset, reviewer=None, daily_limit=2)
    _decide(review_dataset, alice)
    _decide(review_dataset, alice)

    outcome = item_claim(dataset=review_dataset, reviewer=alice)

    assert outcome.status == "quota"
    assert (outcome.quota.used, outcome.quota.limit) == (2, 2)


def test_a_reviewers_own_limit_overrides_the_default(review_dataset, alice, bob, lead, queued):
    quota_set(actor=lead, dataset=review_dataset, reviewer=None, daily_limit=1)
    quota_set(actor=lead, dataset=review_dataset, reviewer=alice, daily_limit=3)
    for _ in range(3):
        _decide(review_dataset, alice)
    _decide(review_dataset, bob)

    assert item_claim(dataset=review_dataset, reviewer=alice).status == "quota"
    assert item_claim(dataset=review_dataset, reviewer=bob).status == "quota"


def test_yesterdays_decisions_do_not_count(review_dataset, alice, lead, queued):
    quota_set(actor=lead, dataset=review_dataset, reviewer=None, daily_limit=1)
    _decide(review_dataset, alice)
    # The day turns: the decision and the day's count are yesterday's.
    yesterday = timezone.now() - timedelta(days=1)
    Decision.objects.update(created_at=yesterday)
    ReviewerDay.objects.update(day=timezone.localdate(yesterday))

    assert item_claim(dataset=review_dataset, reviewer=alice).status == "claimed"


def test_the_day_counts_decisions_made_undone_and_in_bulk(review_dataset, alice, queued):
    """The quota reads the day's count (one row) instead of counting decisions: every way of
    making or undoing one keeps it equal to the count."""
    from review.selectors import day_start, quota_status_get

    def live_today() -> int:
        return Decision.objects.filter(
            reviewer=alice, undone_at__isnull=True, created_at__gte=day_start(timezone.now())
        ).count()

    _decide(review_dataset, alice)
    decisions_bulk(
        dataset=review_dataset,
        reviewer=alice,
        item_ids=[queued[3].pk, queued[4].pk],
        verdict="reject",
        reason="duplicate",
    )
    decision_undo(dataset=review_dataset, reviewer=alice)
    from review.services.decisions import decision_record_and_next

    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    decision_record_and_next(
        dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
    )

    used = quota_status_get(dataset=review_dataset, reviewer=alice).used
    assert used == live_today() == 3
    assert ReviewerDay.objects.get(reviewer=alice).decided == 3


def test_an_undo_gives_the_slot_back(review_dataset, alice, lead, queued):
    quota_set(actor=lead, dataset=review_dataset, reviewer=None, daily_limit=1)
    _decide(review_dataset, alice)

    decision_undo(dataset=review_dataset, reviewer=alice)

    assert item_claim(dataset=review_dataset, reviewer=alice).status == "held"


def test_a_quota_lowered_under_a_held_item_stops_the_decision(review_dataset, alice, lead, queued):
    _decide(review_dataset, alice)
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    quota_set(actor=lead, dataset=review_dataset, reviewer=alice, daily_limit=1)

    with pytest.raises(ReviewError) as exc:
        decision_record(
            dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
        )

    assert exc.value.code == "quota"
    assert "daily limit" in exc.value.message
    assert item_claim(dataset=review_dataset, reviewer=alice).status == "quota"
    assert AuditEvent.objects.filter(action="review.claim_released").count() == 1


def test_bulk_stops_at_the_quota_and_reports_the_rest(review_dataset, alice, lead, queued):
    quota_set(actor=lead, dataset=review_dataset, reviewer=alice, daily_limit=2)

    outcome = decisions_bulk(
        dataset=review_dataset, reviewer=alice, item_ids=[q.pk for q in queued], verdict="approve"
    )

    assert len(outcome.settled) == 2
    assert len(outcome.left_out["quota"]) == 3


def test_quota_changes_are_audited_once_each(review_dataset, alice, lead):
    quota_set(actor=lead, dataset=review_dataset, reviewer=alice, daily_limit=5)
    quota_set(actor=lead, dataset=review_dataset, reviewer=alice, daily_limit=5)  # no change
    quota_set(actor=lead, dataset=review_dataset, reviewer=alice, daily_limit=None)

    payloads = [
        e.payload for e in AuditEvent.objects.filter(action="review.quota_changed").order_by("seq")
    ]
    assert payloads == [
        {"reviewer": alice.pk, "before": None, "after": 5},
        {"reviewer": alice.pk, "before": 5, "after": None},
    ]
    assert not ReviewerQuota.objects.exists()


@pytest.mark.parametrize("limit", [0, -1, 100_001])
def test_quota_limits_out_of_range_are_refused(review_dataset, lead, limit):
    with pytest.raises(ReviewError) as exc:
        quota_set(actor=lead, dataset=review_dataset, reviewer=None, daily_limit=limit)

    assert exc.value.field == "daily_limit"


def test_a_quota_for_someone_who_does_not_review_the_dataset_is_refused(
    review_dataset, lead, charlie
):
    with pytest.raises(ReviewError) as exc:
        quota_set(actor=lead, dataset=review_dataset, reviewer=charlie, daily_limit=3)

    assert exc.value.field == "reviewer"
