"""Decisions: approve or reject the held item, undo one's last decision, decide many at once.

Every decision locks its item row first, so two reviewers voting on one consensus item at the
same moment count each other's vote (neither can miss the other and leave the item open with
enough approvals). The outcome goes onto the item through ``corpus.services.items``. Each
service runs in one unit of work (``corpus.services.write_batch``): it takes the audit chain
lock first, then the claim, then the item (the order corpus services and exports use too, so
no two of them deadlock), sends the writes with the next reads, and appends the audit events
together at commit (a decision and the lease of the next item are one append).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from corpus.db.batch import Rows
from corpus.models import Dataset, Item
from corpus.services.audit import actor_for_user
from corpus.services.items import (
    ItemOutcome,
    ItemStateError,
    item_outcome_reopen,
    item_outcome_set,
    item_outcomes_set,
)
from corpus.services.write_batch import WriteBatch, write_batch
from review.models import Claim, Decision, ReviewPolicy, Verdict
from review.selectors import QuotaStatus, day_start, review_policy_get
from review.services import ReviewError
from review.services.consensus import Tally, required_approvals, tally
from review.services.queue import ClaimOutcome, claim_item, item_claim_next, not_held_error
from review.sql import (
    LockedItem,
    bulk_reads,
    claims_end,
    day_count,
    decision_reads,
    decisions_insert,
    live_decisions,
    lock_item,
)

MAX_NOTE_CHARS = 2000
MAX_BULK_ITEMS = 500


@dataclass
class DecisionOutcome:
    decision: Decision
    item_state: str
    tally: Tally | None  # None for a gold check: it never settles the item
    reason_label: str = ""
    policy: ReviewPolicy | None = None
    quota: QuotaStatus | None = None  # the reviewer's quota, this decision counted


def _validated(
    *, policy: ReviewPolicy, verdict: str, reason: str, note: str
) -> tuple[str, str, str]:
    if verdict not in Verdict.values:
        raise ReviewError("Choose approve or reject.", field="verdict")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ReviewError(
            f"The note has {len(note)} characters; the limit is {MAX_NOTE_CHARS}.", field="note"
        )
    if verdict == Verdict.APPROVE:
        return verdict, "", note
    keys = [r["key"] for r in policy.reject_reasons]
    if not reason:
        raise ReviewError("Choose a reason for the rejection.", field="reason")
    if reason not in keys:
        raise ReviewError(
            f"'{reason}' is not one of this dataset's reject reasons.", field="reason"
        )
    return verdict, reason, note


def _live_decisions(item_id: int) -> list[Decision]:
    # Gold answers measure reviewers, not the item: they never count toward its outcome.
    return list(Decision.objects.filter(item_id=item_id, undone_at__isnull=True, gold_expected=""))


def _decide(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    item_id: int,
    item: LockedItem | None,
    verdict: str,
    reason: str,
    note: str,
    via: str,
    seconds: float | None,
    policy: ReviewPolicy,
    now: datetime,
) -> DecisionOutcome:
    """Record one vote in ``wb`` (``_decide_many`` of one item), refused unless the item can
    take it. ``item``: the item as ``lock_item`` read it (its row locked), None when it is not
    in the dataset."""
    if item is None:
        raise ReviewError(f"Item {item_id} is not in this dataset.", code="conflict")
    if item.state != Item.State.QUEUED:
        raise ReviewError(f"Item {item_id} is already {item.state}.", code="conflict")
    if item.voted:
        raise ReviewError(f"You already decided item {item_id}.", code="conflict")
    [outcome] = _decide_many(
        wb,
        dataset=dataset,
        reviewer=reviewer,
        items=[(item_id, item)],
        verdict=verdict,
        reason=reason,
        note=note,
        via=via,
        seconds=seconds,
        policy=policy,
        now=now,
    )
    return outcome


def _decide_many(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    items: Sequence[tuple[int, LockedItem]],
    verdict: str,
    reason: str,
    note: str,
    via: str,
    seconds: float | None,
    policy: ReviewPolicy,
    now: datetime,
) -> list[DecisionOutcome]:
    """Record one vote per item in ``wb`` and settle the items whose votes now call for it;
    the outcomes in the order of ``items``. Each item is ``(id, as lock_item read it)``, its row
    locked, queued, not voted on by this reviewer (the caller checked). The decisions' INSERT
    and the items' outcomes are one statement each, riding ``wb``'s next round trip; a returned
    decision is saved from then on (its id in its audit event too). Only the items
    that have other live votes cost a read (one for all of them). The reviewer's count of the
    day is the caller's (one decision or many)."""
    entries: dict[int, tuple[DecisionOutcome, dict[str, Any]]] = {}
    decisions = []
    for item_id, item in items:
        # By id, the related objects cached after: assigning the objects costs a descriptor's
        # checks per decision.
        decision = Decision(
            item_id=item_id,
            dataset_id=dataset.pk,
            reviewer_id=reviewer.pk,
            verdict=verdict,
            reason=reason,
            note=note,
            via=via,
            seconds=seconds,
            gold_expected=item.gold or "",
            created_at=now,
        )
        Decision.dataset.field.set_cached_value(decision, dataset)
        Decision.reviewer.field.set_cached_value(decision, reviewer)
        decisions.append(decision)
        payload: dict[str, Any] = {
            "decision": None,
            "verdict": verdict,
            "reason": reason,
            "via": via,
            "seconds": None if seconds is None else round(seconds, 3),
        }
        entries[item_id] = (
            DecisionOutcome(decision=decision, item_state=item.state, tally=None),
            payload,
        )

    def inserted(rows: Rows) -> None:
        # Saved, as bulk_create leaves its objects: every value is the one stored.
        for pk, item_id in rows:
            outcome, payload = entries[item_id]
            outcome.decision.pk = pk
            outcome.decision._state.adding = False
            outcome.decision._state.db = wb.using
            payload["decision"] = pk

    wb.add(decisions_insert(decisions), then=inserted)
    # With no other live vote (the usual case) an item's tally is its new decision alone; the
    # others' live votes are read after the INSERT (this reviewer's new ones among them).
    voted_on = [item_id for item_id, item in items if item.live_votes and not item.gold]
    live = live_decisions(wb, item_ids=voted_on) if voted_on else {}
    settled = []
    for (item_id, item), decision in zip(items, decisions, strict=True):
        outcome, payload = entries[item_id]
        if item.gold:
            payload["gold"] = {"expected": item.gold, "correct": item.gold == verdict}
            continue
        required = required_approvals(policy=policy, facts=item.facts)
        result = tally(decisions=live.get(item_id) or [decision], required=required)
        if result.state != Item.State.QUEUED:
            settled.append(
                ItemOutcome(
                    item_id=item_id,
                    state=result.state,
                    reviewer_ids=result.reviewer_ids,
                    reason=result.reason,
                )
            )
            outcome.item_state = result.state
        outcome.tally = result
        payload.update(
            outcome=outcome.item_state, approvals=len(result.approvers), required=result.required
        )
    item_outcomes_set(wb, outcomes=settled)
    actor = actor_for_user(reviewer)
    for item_id, _ in items:
        wb.audit(
            actor=actor,
            action="review.decided",
            object_type="item",
            object_id=item_id,
            dataset=dataset,
            payload=entries[item_id][1],
        )
    return [entries[item_id][0] for item_id, _ in items]


def decision_record(
    *,
    dataset: Dataset,
    reviewer: User,
    item_id: int,
    verdict: str,
    reason: str = "",
    note: str = "",
) -> DecisionOutcome:
    """Decide the item the reviewer holds. The lease ends with the decision; the time from the
    start of the lease is recorded as the time spent on the item."""
    policy = review_policy_get(dataset=dataset)
    verdict, reason, note = _validated(policy=policy, verdict=verdict, reason=reason, note=note)
    with write_batch() as wb:
        return _record(
            wb,
            dataset=dataset,
            reviewer=reviewer,
            item_id=item_id,
            verdict=verdict,
            reason=reason,
            note=note,
            policy=policy,
        )


def _record(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    item_id: int,
    verdict: str,
    reason: str,
    note: str,
    policy: ReviewPolicy,
) -> DecisionOutcome:
    """``decision_record`` in ``wb``, its input validated against ``policy``."""
    now = timezone.now()
    # The quota, the end of the lease and the item's row lock, in the round trip that takes
    # the audit chain lock.
    reads = decision_reads(
        wb,
        item_id=item_id,
        dataset_id=dataset.pk,
        reviewer_id=reviewer.pk,
        now=now,
        since=day_start(now),
    )
    quota = QuotaStatus(limit=reads.limit, used=reads.used)
    if reads.taken is None:
        raise not_held_error(item_id)
    if quota.reached:
        raise ReviewError(quota_message(quota.limit), code="quota")
    claimed_at, _ = reads.taken
    outcome = _decide(
        wb,
        dataset=dataset,
        reviewer=reviewer,
        item_id=item_id,
        item=reads.item,
        verdict=verdict,
        reason=reason,
        note=note,
        via=Decision.Via.TRIAGE,
        seconds=(now - claimed_at).total_seconds(),
        policy=policy,
        now=now,
    )
    wb.add(
        day_count(dataset_id=dataset.pk, reviewer_id=reviewer.pk, since=day_start(now), change=1)
    )
    outcome.reason_label = next(
        (r["label"] for r in policy.reject_reasons if r["key"] == reason), reason
    )
    outcome.policy = policy
    outcome.quota = QuotaStatus(limit=quota.limit, used=quota.used + 1)
    return outcome


def decision_record_and_next(
    *,
    dataset: Dataset,
    reviewer: User,
    item_id: int,
    verdict: str,
    reason: str = "",
    note: str = "",
) -> tuple[DecisionOutcome, ClaimOutcome]:
    """Decide the held item and lease the next one in one unit of work: one commit (one flush
    to disk) per keystroke instead of two, one audit append for the decision and the new lease,
    and the decision's writes sent with the next lease's statements (one round trip)."""
    policy = review_policy_get(dataset=dataset)
    verdict, reason, note = _validated(policy=policy, verdict=verdict, reason=reason, note=note)
    with write_batch() as wb:
        outcome = _record(
            wb,
            dataset=dataset,
            reviewer=reviewer,
            item_id=item_id,
            verdict=verdict,
            reason=reason,
            note=note,
            policy=policy,
        )
        assert outcome.quota is not None
        claim = item_claim_next(
            wb, dataset=dataset, reviewer=reviewer, policy=policy, quota=outcome.quota
        )
    return outcome, claim


def quota_message(limit: int | None) -> str:
    return (
        f"You have made today's {limit} decisions for this dataset, the daily limit. "
        "Thank you: the queue will be here tomorrow."
    )


@dataclass
class UndoOutcome:
    decision: Decision
    item_state: str
    reclaimed: bool  # the item is back in the reviewer's hands


def decision_undo(*, dataset: Dataset, reviewer: User) -> UndoOutcome:
    """Take back one's most recent decision in the dataset, while its item is not exported
    (the corpus refuses to reopen an exported item; then nothing changes). The item goes back
    to the queue and, if nobody else holds it, straight back to this reviewer."""
    now = timezone.now()
    with write_batch() as wb:
        last = (
            Decision.objects.select_for_update()
            .filter(dataset=dataset, reviewer=reviewer)
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None or last.undone_at is not None:
            raise ReviewError("There is no decision of yours to undo here.", code="conflict")
        item = lock_item(wb, item_id=last.item_id, dataset_id=dataset.pk, reviewer_id=reviewer.pk)
        assert item is not None  # decisions protect their item from deletion
        before = state = item.state
        Decision.objects.filter(pk=last.pk).update(undone_at=now)
        last.undone_at = now
        # Its slot of the quota comes back (on the day it was made).
        wb.add(
            day_count(
                dataset_id=dataset.pk,
                reviewer_id=reviewer.pk,
                since=day_start(last.created_at),
                change=-1,
            )
        )
        if not last.gold_expected:
            policy = review_policy_get(dataset=dataset)
            required = required_approvals(policy=policy, facts=item.facts)
            result = tally(decisions=_live_decisions(last.item_id), required=required)
            settled = item.state in (Item.State.APPROVED, Item.State.REJECTED)
            if settled and (result.state != item.state or item.decided_by != result.reviewer_ids):
                try:
                    item_outcome_reopen(wb, item_id=last.item_id)
                    if result.state != Item.State.QUEUED:
                        item_outcome_set(
                            wb,
                            item_id=last.item_id,
                            state=result.state,
                            reviewer_ids=result.reviewer_ids,
                            reason=result.reason,
                        )
                        wb.flush()  # a refusal comes with the rows: here, to be reported
                except ItemStateError as exc:
                    raise ReviewError(
                        f"Item {last.item_id} can no longer be undone: {exc}.", code="conflict"
                    ) from None
                state = result.state
        released = None
        reclaimed = False
        if state == Item.State.QUEUED:
            lease = Claim.objects.select_for_update().filter(item_id=last.item_id).first()
            if lease is not None and lease.reviewer_id == reviewer.pk and lease.expires_at > now:
                reclaimed = True
            elif lease is None or lease.expires_at <= now:
                # Someone else's live lease on the undone item wins; otherwise the reviewer's
                # current item goes back to the queue (one lease per reviewer) and this one is
                # theirs.
                current = (
                    Claim.objects.select_for_update()
                    .filter(dataset=dataset, reviewer=reviewer)
                    .first()
                )
                if current is not None:
                    released = current.item_id
                    Claim.objects.filter(pk=current.pk).delete()
                reclaimed = claim_item(
                    wb, item_id=last.item_id, dataset=dataset, reviewer=reviewer, now=now
                )
        wb.audit(
            actor=actor_for_user(reviewer),
            action="review.undone",
            object_type="item",
            object_id=last.item_id,
            dataset=dataset,
            payload={
                "decision": last.pk,
                "verdict": last.verdict,
                "state_before": before,
                "state_after": state,
                "released": released,
            },
        )
    return UndoOutcome(decision=last, item_state=state, reclaimed=reclaimed)


SETTLED_STATES = (Item.State.APPROVED, Item.State.REJECTED)

LEFT_OUT_REASONS = {
    "missing": "not in this dataset's list",
    "busy": "being decided by someone else at this moment",
    "settled": "already approved or rejected",
    "not_queued": "not in the review queue (waiting to be scored, auto-rejected or failed)",
    "held": "open on another reviewer's screen",
    "voted": "you already voted on it",
    "gold": "a gold check (decided one at a time in triage)",
    "quota": "over your daily quota",
}


@dataclass
class BulkOutcome:
    settled: list[int] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)  # vote counted; more approvals needed
    left_out: dict[str, list[int]] = field(default_factory=dict)

    @property
    def left_out_count(self) -> int:
        return sum(len(ids) for ids in self.left_out.values())


def decisions_bulk(
    *,
    dataset: Dataset,
    reviewer: User,
    item_ids: Sequence[int],
    verdict: str,
    reason: str = "",
    note: str = "",
) -> BulkOutcome:
    """Decide many items from the list page. Each is a normal decision (consensus applies: an
    approval may only add a vote), within the reviewer's quota; whatever cannot be decided is
    left out and reported by reason. Rows another transaction has locked are left out, not
    waited for."""
    policy, verdict, reason, note = decisions_bulk_validated(
        dataset=dataset, verdict=verdict, reason=reason, note=note
    )
    ids = sorted(set(item_ids))
    if not ids:
        raise ReviewError("Select at least one item.", field="items")
    if len(ids) > MAX_BULK_ITEMS:
        raise ReviewError(f"Select at most {MAX_BULK_ITEMS} items at once.", field="items")
    with write_batch() as wb:
        return decisions_bulk_in(
            wb,
            dataset=dataset,
            reviewer=reviewer,
            item_ids=ids,
            verdict=verdict,
            reason=reason,
            note=note,
            policy=policy,
        )


def decisions_bulk_validated(
    *, dataset: Dataset, verdict: str, reason: str, note: str
) -> tuple[ReviewPolicy, str, str, str]:
    """The dataset's policy and a bulk decision's verdict, reason and note as ``decisions_bulk``
    checks them (a ``ReviewError`` naming the field when they are not what a decision takes)."""
    policy = review_policy_get(dataset=dataset)
    return policy, *_validated(policy=policy, verdict=verdict, reason=reason, note=note)


def decisions_bulk_in(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    item_ids: Sequence[int],
    verdict: str,
    reason: str,
    note: str,
    policy: ReviewPolicy,
) -> BulkOutcome:
    """``decisions_bulk`` in ``wb``: ``item_ids`` sorted, distinct, at most ``MAX_BULK_ITEMS``;
    the verdict, reason and note validated against ``policy``. A filter-wide bulk job decides
    each of its chunks through here, in a unit of work of its own."""
    now = timezone.now()
    outcome = BulkOutcome()
    # One round trip for the whole selection: the quota and every row's lock (rows another
    # transaction holds are skipped) with what a decision reads of it.
    reads = bulk_reads(
        wb,
        item_ids=item_ids,
        dataset_id=dataset.pk,
        reviewer_id=reviewer.pk,
        now=now,
        since=day_start(now),
    )
    remaining = QuotaStatus(limit=reads.limit, used=reads.used).remaining
    decidable: list[tuple[int, LockedItem]] = []
    for item_id in item_ids:
        why = None
        gold = reads.found.get(item_id)
        locked = reads.locked.get(item_id)
        if gold is None:
            why = "missing"
        elif gold:
            why = "gold"
        elif locked is None:
            why = "busy"
        elif locked[0].state in SETTLED_STATES:
            why = "settled"
        elif locked[0].state != Item.State.QUEUED:
            why = "not_queued"
        elif locked[1]:
            why = "held"
        elif locked[0].voted:
            why = "voted"
        elif remaining is not None and remaining <= 0:
            why = "quota"
        if why is not None:
            outcome.left_out.setdefault(why, []).append(item_id)
            continue
        assert locked is not None
        decidable.append((item_id, locked[0]))
        if remaining is not None:
            remaining -= 1
    if not decidable:
        return outcome
    results = _decide_many(
        wb,
        dataset=dataset,
        reviewer=reviewer,
        items=decidable,
        verdict=verdict,
        reason=reason,
        note=note,
        via=Decision.Via.BULK,
        seconds=None,
        policy=policy,
        now=now,
    )
    for (item_id, _), result in zip(decidable, results, strict=True):
        if result.item_state == Item.State.QUEUED:
            outcome.recorded.append(item_id)
        else:
            outcome.settled.append(item_id)
    decided = [item_id for item_id, _ in decidable]
    wb.add(
        day_count(
            dataset_id=dataset.pk,
            reviewer_id=reviewer.pk,
            since=day_start(now),
            change=len(decided),
        )
    )
    # A lease of this reviewer's own on a decided item has nothing left to guard.
    wb.add(claims_end(dataset_id=dataset.pk, reviewer_id=reviewer.pk, item_ids=decided))
    return outcome
