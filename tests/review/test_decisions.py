"""Deciding the held item, undo, and bulk decisions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from corpus.models import AuditEvent, Item
from review.models import Claim, Decision
from review.services import ReviewError
from review.services.decisions import decision_record, decision_undo, decisions_bulk
from review.services.queue import item_claim
from tests.review.conftest import make_item


def _claim(dataset, user):  # type: ignore[no-untyped-def]
    return item_claim(dataset=dataset, reviewer=user).claim


def test_approve_settles_the_item_through_the_corpus(review_dataset, alice, queued):
    held = _claim(review_dataset, alice)
    Claim.objects.filter(pk=held.pk).update(claimed_at=timezone.now() - timedelta(seconds=12))

    outcome = decision_record(
        dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
    )

    item = Item.objects.get(pk=held.item_id)
    assert item.state == Item.State.APPROVED
    assert item.decided_by == [alice.pk]
    assert outcome.decision.seconds == pytest.approx(12, abs=2)
    assert not Claim.objects.exists()
    event = AuditEvent.objects.get(action="review.decided")
    assert event.object_id == str(item.pk)
    assert event.payload["outcome"] == "approved"


def test_reject_stores_the_reason_key(review_dataset, alice, queued):
    held = _claim(review_dataset, alice)

    decision_record(
        dataset=review_dataset,
        reviewer=alice,
        item_id=held.item_id,
        verdict="reject",
        reason="machine_written",
        note="  reads like a template  ",
    )

    decision = Decision.objects.get()
    assert (decision.reason, decision.note) == ("machine_written", "reads like a template")
    item = Item.objects.get(pk=held.item_id)
    assert item.state == Item.State.REJECTED
    assert item.state_reason == "machine_written"


@pytest.mark.parametrize(
    ("verdict", "reason", "field"),
    [("maybe", "", "verdict"), ("reject", "", "reason"), ("reject", "boring", "reason")],
)
def test_bad_decisions_are_refused_and_change_nothing(
    review_dataset, alice, queued, verdict, reason, field
):
    held = _claim(review_dataset, alice)

    with pytest.raises(ReviewError) as exc:
        decision_record(
            dataset=review_dataset,
            reviewer=alice,
            item_id=held.item_id,
            verdict=verdict,
            reason=reason,
        )

    assert exc.value.field == field
    assert not Decision.objects.exists()
    assert Claim.objects.filter(pk=held.pk).exists()
    assert Item.objects.get(pk=held.item_id).state == Item.State.QUEUED


def test_a_decision_needs_the_lease(review_dataset, alice, bob, queued):
    held = _claim(review_dataset, alice)

    with pytest.raises(ReviewError) as exc:
        decision_record(
            dataset=review_dataset, reviewer=bob, item_id=held.item_id, verdict="approve"
        )
    assert exc.value.code == "conflict"

    Claim.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ReviewError):
        decision_record(
            dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
        )
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="review.decided").exists()


def test_undo_reopens_the_item_and_hands_it_back(review_dataset, alice, queued):
    first = _claim(review_dataset, alice)
    decision_record(
        dataset=review_dataset, reviewer=alice, item_id=first.item_id, verdict="approve"
    )
    second = _claim(review_dataset, alice)
    assert second.item_id != first.item_id

    outcome = decision_undo(dataset=review_dataset, reviewer=alice)

    assert outcome.reclaimed
    item = Item.objects.get(pk=first.item_id)
    assert (item.state, item.decided_by, item.decided_at) == (Item.State.QUEUED, [], None)
    assert Decision.objects.get().undone_at is not None
    assert item_claim(dataset=review_dataset, reviewer=alice).claim.item_id == first.item_id
    event = AuditEvent.objects.get(action="review.undone")
    assert event.payload["state_before"] == "approved"
    assert event.payload["released"] == second.item_id


def test_undo_takes_back_only_the_last_decision(review_dataset, alice, queued):
    held = _claim(review_dataset, alice)
    decision_record(dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve")
    decision_undo(dataset=review_dataset, reviewer=alice)

    with pytest.raises(ReviewError):
        decision_undo(dataset=review_dataset, reviewer=alice)
    assert AuditEvent.objects.filter(action="review.undone").count() == 1


def test_undo_with_nothing_decided_is_refused(review_dataset, alice):
    with pytest.raises(ReviewError) as exc:
        decision_undo(dataset=review_dataset, reviewer=alice)

    assert exc.value.code == "conflict"


def test_undo_is_refused_once_the_item_is_exported(review_dataset, alice, queued):
    from corpus.models import Export, ExportItem

    held = _claim(review_dataset, alice)
    decision_record(dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve")
    export = Export.objects.create(dataset=review_dataset, status="building", requested_by="t")
    ExportItem.objects.create(export=export, item_id=held.item_id)

    with pytest.raises(ReviewError) as exc:
        decision_undo(dataset=review_dataset, reviewer=alice)

    assert "export" in exc.value.message
    assert Item.objects.get(pk=held.item_id).state == Item.State.APPROVED
    assert Decision.objects.get().undone_at is None
    assert not AuditEvent.objects.filter(action="review.undone").exists()


def test_bulk_reject_decides_free_items_and_reports_the_rest(review_dataset, alice, bob, queued):
    bobs = _claim(review_dataset, bob)  # queued[0], open on bob's screen
    settled = make_item(review_dataset, state=Item.State.APPROVED)
    ids = [q.pk for q in queued] + [settled.pk, 999_999]

    outcome = decisions_bulk(
        dataset=review_dataset, reviewer=alice, item_ids=ids, verdict="reject", reason="duplicate"
    )

    assert outcome.settled == sorted(q.pk for q in queued[1:])
    assert outcome.left_out == {
        "held": [bobs.item_id],
        "settled": [settled.pk],
        "missing": [999_999],
    }
    assert Item.objects.filter(state=Item.State.REJECTED).count() == 4
    assert set(Decision.objects.values_list("via", flat=True)) == {"bulk"}
    assert AuditEvent.objects.filter(action="review.decided").count() == 4


def test_bulk_needs_a_reason_to_reject(review_dataset, alice, queued):
    with pytest.raises(ReviewError) as exc:
        decisions_bulk(
            dataset=review_dataset, reviewer=alice, item_ids=[queued[0].pk], verdict="reject"
        )

    assert exc.value.field == "reason"
    assert not Decision.objects.exists()


def test_decide_and_next_appends_the_decision_and_the_new_lease_together(
    review_dataset, alice, queued
):
    from corpus.models import FeedEntry
    from review.services.decisions import decision_record_and_next

    held = _claim(review_dataset, alice)

    outcome, claimed = decision_record_and_next(
        dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
    )

    assert claimed.status == "claimed" and claimed.claim.item_id != held.item_id
    decided = AuditEvent.objects.get(action="review.decided")
    lease = AuditEvent.objects.filter(action="review.claimed").order_by("-seq").first()
    # One append: consecutive links of the chain, stamped under the one lock.
    assert (decided.seq + 1, decided.hash, decided.time) == (lease.seq, lease.prev_hash, lease.time)
    assert lease.object_id == str(claimed.claim.item_id)
    assert decided.payload["decision"] == outcome.decision.pk
    # The outcome and its feed entry were written under the lock the decision took first.
    assert Item.objects.get(pk=held.item_id).state == Item.State.APPROVED
    assert list(FeedEntry.objects.values_list("item_id", "kind")) == [(held.item_id, "approved")]


def test_consecutive_approvals_number_the_feed_in_order(review_dataset, alice, queued):
    from corpus.models import FeedEntry

    decided = []
    for _ in range(3):
        held = _claim(review_dataset, alice)
        decision_record(
            dataset=review_dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
        )
        decided.append(held.item_id)

    entries = list(FeedEntry.objects.order_by("seq").values_list("seq", "item_id"))
    assert [item_id for _, item_id in entries] == decided
    seqs = [seq for seq, _ in entries]
    assert seqs == list(range(seqs[0], seqs[0] + 3))


def test_an_outcome_and_its_feed_entry_are_written_together_or_not_at_all(review_dataset, alice):
    """On PostgreSQL the approval's feed entry is appended by the outcome's own UPDATE (one
    statement): an entry only for an item the UPDATE moved, numbered after the feed's last."""
    from django.db import transaction

    from corpus.models import FeedEntry
    from corpus.services.audit import audit_lock
    from corpus.services.feed import feed_append
    from corpus.services.items import ItemStateError, item_outcome_set

    first, second, third = (make_item(review_dataset) for _ in range(3))
    with transaction.atomic():
        audit_lock()
        feed_append(dataset_id=review_dataset.pk, item_ids=[first.pk], kind="reopened")
        before = FeedEntry.objects.get().seq
        approved = item_outcome_set(
            item_id=second.pk, state="approved", reviewer_ids=[alice.pk], audit_locked=True
        )
        item_outcome_set(
            item_id=third.pk,
            state="rejected",
            reviewer_ids=[alice.pk],
            reason="off_topic",
            audit_locked=True,
        )
        with pytest.raises(ItemStateError, match="is approved, not queued"):
            item_outcome_set(
                item_id=second.pk, state="approved", reviewer_ids=[alice.pk], audit_locked=True
            )

    assert approved.state == "approved" and approved.decided_by == [alice.pk]
    entries = list(FeedEntry.objects.order_by("seq").values_list("seq", "item_id", "kind"))
    assert entries == [(before, first.pk, "reopened"), (before + 1, second.pk, "approved")]
    assert FeedEntry.objects.get(item_id=second.pk).created_at is not None


def _decide_next(dataset, user, **kwargs):  # type: ignore[no-untyped-def]
    from review.services.decisions import decision_record_and_next

    held = _claim(dataset, user)
    outcome, claimed = decision_record_and_next(
        dataset=dataset, reviewer=user, item_id=held.item_id, **kwargs
    )
    return held, outcome, claimed


def test_decide_and_next_at_the_quota_still_records_the_decision(review_dataset, alice, queued):
    """No next lease at the limit: the decision's writes (sent with the lease's statements
    otherwise) are sent on their own."""
    from corpus.services.audit_verify import audit_verify
    from review.models import ReviewerQuota

    ReviewerQuota.objects.create(dataset=review_dataset, reviewer=None, daily_limit=1)

    held, outcome, claimed = _decide_next(review_dataset, alice, verdict="approve")

    assert claimed.status == "quota" and claimed.claim is None
    decision = Decision.objects.get(item_id=held.item_id)
    assert outcome.decision.pk == decision.pk and not outcome.decision._state.adding
    assert Item.objects.get(pk=held.item_id).state == Item.State.APPROVED
    decided = AuditEvent.objects.get(action="review.decided")
    assert decided.payload["decision"] == decision.pk
    assert audit_verify()[1] is None


def test_decide_and_next_counts_a_consensus_vote_and_moves_on(review_dataset, alice, queued):
    """A vote that does not settle the item: written with the next lease's statements, which
    already see it (the item is not leased back to its voter)."""
    from review.models import ReviewPolicy

    ReviewPolicy.objects.create(
        dataset=review_dataset, consensus_approvals=2, consensus_min_generation=0
    )

    held, outcome, claimed = _decide_next(review_dataset, alice, verdict="approve")

    assert outcome.item_state == Item.State.QUEUED and outcome.tally.required == 2
    assert Item.objects.get(pk=held.item_id).state == Item.State.QUEUED
    assert Decision.objects.get(item_id=held.item_id, reviewer=alice).pk == outcome.decision.pk
    assert claimed.claim.item_id not in (held.item_id,)
    decided = AuditEvent.objects.get(action="review.decided")
    assert decided.payload["decision"] == outcome.decision.pk
    assert decided.payload["approvals"] == 1


def test_decide_and_next_settles_on_the_second_vote(review_dataset, alice, bob, queued):
    """The second approval of a consensus item: tallied with the first (read back), settles."""
    from review.models import ReviewPolicy

    ReviewPolicy.objects.create(
        dataset=review_dataset, consensus_approvals=2, consensus_min_generation=0
    )
    first, _, _ = _decide_next(review_dataset, alice, verdict="approve")
    Claim.objects.filter(reviewer=bob).delete()
    Claim.objects.create(
        item_id=first.item_id,
        dataset=review_dataset,
        reviewer=bob,
        claimed_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )

    from review.services.decisions import decision_record_and_next

    outcome, claimed = decision_record_and_next(
        dataset=review_dataset, reviewer=bob, item_id=first.item_id, verdict="approve"
    )

    assert outcome.item_state == Item.State.APPROVED
    assert sorted(Item.objects.get(pk=first.item_id).decided_by) == sorted([alice.pk, bob.pk])
    assert claimed.status == "claimed"


def test_decide_and_next_rejects_with_the_reason(review_dataset, alice, queued):
    held, outcome, _ = _decide_next(
        review_dataset, alice, verdict="reject", reason="duplicate", note="seen it"
    )

    item = Item.objects.get(pk=held.item_id)
    assert (item.state, item.state_reason) == (Item.State.REJECTED, "duplicate")
    decision = Decision.objects.get(item_id=held.item_id)
    assert (decision.verdict, decision.reason, decision.note) == ("reject", "duplicate", "seen it")
    assert outcome.reason_label


def test_the_next_lease_brings_its_item_with_it(review_dataset, alice, queued):
    """On PostgreSQL the lease's round trip also reads the item the page shows; it is the
    leased one, with its parents."""
    from django.db import connection

    from corpus.models import ItemParent

    parent = make_item(review_dataset, state=Item.State.APPROVED)
    ItemParent.objects.create(child=queued[1], parent=parent)

    _, _, claimed = _decide_next(review_dataset, alice, verdict="approve")

    assert claimed.claim.item_id == queued[1].pk
    if connection.vendor == "postgresql":
        item, parent_ids = claimed.item
        assert (item.pk, item.text, parent_ids) == (queued[1].pk, queued[1].text, [parent.pk])
        assert item.source.pk == queued[1].source_id
    else:
        assert claimed.item is None
