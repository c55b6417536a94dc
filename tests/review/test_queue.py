"""Claims: queue order, one lease per item, leases that run out, skips."""

from datetime import timedelta

import pytest
from django.utils import timezone

from corpus.models import AuditEvent, Item
from corpus.services.audit import actor_for_user
from review.models import Claim
from review.services import ReviewError
from review.services.decisions import decision_record
from review.services.queue import claim_renew, claims_expire, item_claim, item_skip
from tests.review.conftest import make_item, many_items, votes_after_stale_statistics


def test_claim_takes_the_highest_priority_item(review_dataset, alice, queued):
    outcome = item_claim(dataset=review_dataset, reviewer=alice)

    assert outcome.status == "claimed"
    assert outcome.claim.item_id == queued[0].pk
    assert outcome.claim.expires_at > timezone.now() + timedelta(minutes=9)


def test_claim_breaks_priority_ties_by_id(review_dataset, alice):
    first = make_item(review_dataset, priority=1.0)
    make_item(review_dataset, priority=1.0)

    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == first.pk


def test_claim_again_returns_the_held_item_with_a_renewed_lease(review_dataset, alice, queued):
    first = item_claim(dataset=review_dataset, reviewer=alice).claim
    Claim.objects.filter(pk=first.pk).update(expires_at=timezone.now() + timedelta(seconds=5))

    again = item_claim(dataset=review_dataset, reviewer=alice)

    assert again.status == "held"
    assert again.claim.item_id == first.item_id
    assert again.claim.expires_at > timezone.now() + timedelta(minutes=9)


def test_two_reviewers_never_get_the_same_item(review_dataset, alice, bob, queued):
    a = item_claim(dataset=review_dataset, reviewer=alice).claim
    b = item_claim(dataset=review_dataset, reviewer=bob).claim

    assert a.item_id != b.item_id
    assert Claim.objects.count() == 2


def test_claim_skips_items_the_reviewer_decided(review_dataset, alice, bob, queued):
    from review.models import ReviewPolicy

    # A consensus item stays queued after alice's approval; she must not get it again.
    ReviewPolicy.objects.create(
        dataset=review_dataset, consensus_approvals=2, consensus_min_generation=0
    )
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    decision_record(dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve")
    assert Item.objects.get(pk=held.item_id).state == Item.State.QUEUED

    nxt = item_claim(dataset=review_dataset, reviewer=alice).claim
    for_bob = item_claim(dataset=review_dataset, reviewer=bob).claim

    assert nxt.item_id != held.item_id
    assert for_bob.item_id == held.item_id


def test_claim_ignores_items_not_queued_and_other_datasets(review_dataset, other_dataset, alice):
    make_item(review_dataset, priority=9, state=Item.State.PENDING)
    make_item(review_dataset, priority=8, state=Item.State.APPROVED)
    make_item(other_dataset, priority=7)
    wanted = make_item(review_dataset, priority=1)

    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == wanted.pk


def test_claim_on_an_empty_queue_says_so(review_dataset, alice):
    outcome = item_claim(dataset=review_dataset, reviewer=alice)

    assert outcome.status == "empty"
    assert outcome.claim is None


def test_an_expired_lease_returns_the_item_to_the_queue(review_dataset, alice, bob, queued):
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    Claim.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    taken = item_claim(dataset=review_dataset, reviewer=bob).claim

    assert taken.item_id == held.item_id
    event = AuditEvent.objects.get(action="review.claim_expired")
    assert event.object_id == str(held.item_id)
    assert event.payload["reviewer"] == alice.pk


def test_the_periodic_expiry_deletes_and_audits_each_run_out_lease(
    review_dataset, alice, bob, queued
):
    a = item_claim(dataset=review_dataset, reviewer=alice).claim
    b = item_claim(dataset=review_dataset, reviewer=bob).claim
    Claim.objects.filter(pk=a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert claims_expire() == 1
    assert claims_expire() == 0  # a second run changes nothing

    assert list(Claim.objects.values_list("item_id", flat=True)) == [b.item_id]
    events = AuditEvent.objects.filter(action="review.claim_expired")
    assert [e.object_id for e in events] == [str(a.item_id)]


def test_the_expiry_task_runs_the_service(review_dataset, alice, queued):
    from review.tasks import claims_expire_task

    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    Claim.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert claims_expire_task.apply().get() == 1
    assert not Claim.objects.exists()


def test_renewal_extends_a_live_lease_only(review_dataset, alice, bob, queued):
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    Claim.objects.filter(pk=held.pk).update(expires_at=timezone.now() + timedelta(seconds=30))

    renewed = claim_renew(dataset=review_dataset, reviewer=alice, item_id=held.item_id)
    assert renewed.expires_at > timezone.now() + timedelta(minutes=9)
    assert claim_renew(dataset=review_dataset, reviewer=bob, item_id=held.item_id) is None

    Claim.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert claim_renew(dataset=review_dataset, reviewer=alice, item_id=held.item_id) is None


def test_a_held_item_that_left_the_queue_is_released(review_dataset, alice, queued):
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    Item.objects.filter(pk=held.item_id).update(state=Item.State.AUTO_REJECTED)

    outcome = item_claim(dataset=review_dataset, reviewer=alice)

    assert outcome.claim.item_id != held.item_id
    event = AuditEvent.objects.get(action="review.claim_released")
    assert event.payload["why"] == "item is auto_rejected"


def test_skip_hands_the_item_to_others_and_hides_it_from_the_skipper(
    review_dataset, alice, bob, queued
):
    held = item_claim(dataset=review_dataset, reviewer=alice).claim

    item_skip(dataset=review_dataset, reviewer=alice, item_id=held.item_id)

    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == queued[1].pk
    assert item_claim(dataset=review_dataset, reviewer=bob).claim.item_id == queued[0].pk
    event = AuditEvent.objects.get(action="review.skipped")
    assert event.object_id == str(queued[0].pk)
    assert event.actor.startswith(f"user:{alice.pk}:")


def test_a_skipped_item_comes_back_after_the_hide_window(review_dataset, alice, settings):
    only = make_item(review_dataset)
    item_skip(
        dataset=review_dataset,
        reviewer=alice,
        item_id=item_claim(dataset=review_dataset, reviewer=alice).claim.item_id,
    )
    assert item_claim(dataset=review_dataset, reviewer=alice).status == "empty"

    settings.SYNTHGATE_SKIP_HIDE_SECONDS = 0

    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == only.pk


def test_skip_needs_a_live_lease(review_dataset, alice, queued):
    with pytest.raises(ReviewError) as exc:
        item_skip(dataset=review_dataset, reviewer=alice, item_id=queued[0].pk)

    assert exc.value.code == "conflict"
    assert not AuditEvent.objects.filter(action="review.skipped").exists()


def test_a_new_lease_is_audited_in_its_transaction(review_dataset, alice, queued):
    held = item_claim(dataset=review_dataset, reviewer=alice).claim

    event = AuditEvent.objects.get(action="review.claimed")
    assert event.object_id == str(held.item_id)
    assert event.actor == actor_for_user(alice)
    assert event.dataset_id == review_dataset.pk
    assert event.payload["reviewer"] == alice.pk
    assert event.payload["expires_at"] == held.expires_at.isoformat()


def test_renewing_a_held_lease_is_not_a_new_claim_event(review_dataset, alice, queued):
    item_claim(dataset=review_dataset, reviewer=alice)
    item_claim(dataset=review_dataset, reviewer=alice)  # the page again: the lease is renewed

    assert AuditEvent.objects.filter(action="review.claimed").count() == 1


def test_a_lease_taken_over_after_expiry_audits_the_expiry_then_the_claim(
    review_dataset, alice, bob, queued
):
    held = item_claim(dataset=review_dataset, reviewer=alice).claim
    Claim.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    item_claim(dataset=review_dataset, reviewer=bob)

    actions = list(
        AuditEvent.objects.filter(object_id=str(held.item_id))
        .order_by("seq")
        .values_list("action", "payload__reviewer")
    )
    assert actions == [
        ("review.claimed", alice.pk),
        ("review.claim_expired", alice.pk),
        ("review.claimed", bob.pk),
    ]


def test_a_claim_that_fails_leaves_no_claim_event(review_dataset, alice, queued, monkeypatch):
    from corpus.services import write_batch

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(write_batch, "audit_append_many", broken)
    with pytest.raises(RuntimeError):
        item_claim(dataset=review_dataset, reviewer=alice)

    # The lease and its event are one transaction: without the event there is no lease.
    assert not Claim.objects.exists()
    assert not AuditEvent.objects.filter(action="review.claimed").exists()


def test_a_lease_taken_meanwhile_by_the_reviewers_other_tab_is_the_one_returned(
    review_dataset, alice, queued
):
    from corpus.models import AuditEvent
    from corpus.services.write_batch import write_batch
    from review.selectors import quota_status_get, review_policy_get
    from review.services.queue import item_claim_next

    other_tab = item_claim(dataset=review_dataset, reviewer=alice).claim
    events = AuditEvent.objects.count()
    with write_batch() as wb:
        outcome = item_claim_next(
            wb,
            dataset=review_dataset,
            reviewer=alice,
            policy=review_policy_get(dataset=review_dataset),
            quota=quota_status_get(dataset=review_dataset, reviewer=alice),
        )

    assert outcome.status == "claimed"
    assert outcome.claim.item_id == other_tab.item_id
    assert AuditEvent.objects.count() == events  # no new lease, no event
    assert list(Claim.objects.values_list("item_id", flat=True)) == [other_tab.item_id]


def test_the_reviewer_s_own_decisions_are_probed_per_candidate_whatever_the_statistics(
    review_dataset, alice, bob
):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL plan")
    from review import sql

    # Given statistics taken when alice had no decisions, then 2,500 of hers on the items at
    # the head of the queue, which stay queued (consensus waits for a second reviewer)
    items = many_items(
        review_dataset, 5000, state=Item.State.QUEUED, priority=lambda i: 2.0 if i < 2500 else 1.0
    )
    votes_after_stale_statistics(
        review_dataset, before=(bob, items[2500:4500]), after=(alice, items[:2500])
    )
    now = timezone.now()
    params = sql._next_item_params(
        review_dataset.pk, alice.pk, False, now, now - timedelta(hours=1), []
    )

    # When planning alice's next item, and the same query without the fences
    def plan(query):
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + query, params)
            return "\n".join(row[0] for row in cursor.fetchall())

    shipped = sql._next_item_sql(connection.vendor, 0)
    plain = shipped.replace(" OFFSET 0", "").replace("reviewer_id + 0", "reviewer_id")
    # Then her decisions are probed by item for each candidate, never read whole per candidate
    assert "decision_reviewer" not in plan(shipped) and "reviewer_id_" not in plan(shipped)
    assert "(item_id = i.id)" in plan(shipped)
    plain_plan = plan(plain)
    assert "reviewer_id_" in plain_plan or "decision_reviewer" in plain_plan, (
        "the planner no longer needs the fences: " + plain_plan
    )
    # and the claim skips what she decided and takes the first item she has not
    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == items[2500].pk
