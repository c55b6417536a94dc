"""Claims: which item a reviewer gets next, and the lease that keeps it theirs meanwhile.

Guarantees and how they are kept:

- One item is never leased to two reviewers at once: ``Claim.item`` is the primary key, and a
  claim is inserted with ``ON CONFLICT DO NOTHING`` and its row count checked. The queue read
  before it (``SELECT ... FOR UPDATE SKIP LOCKED`` in priority order on PostgreSQL) only spreads
  concurrent reviewers over different rows so they rarely collide; the key settles the rest. On
  SQLite write transactions are serialized (IMMEDIATE), so the read and the insert are one step.
- A reviewer never gets an item they have a live decision on, nor one they skipped recently.
- A lease counts only while unexpired, so an abandoned item is back in the queue the moment its
  lease runs out; the periodic ``claims_expire`` (and any claim that meets an expired row) then
  deletes the stale row and audits the expiry.

Lock order (as everywhere in Synthgate): the audit chain lock first, then rows. Granting a
lease is audited (``review.claimed``), so a claim opens a unit of work, which takes the audit
lock before it locks the next item's row; renewing the lease one holds takes none (a page
renews its lease every minute, and that changes nothing but the end of the lease). What ends
a lease is: a decision, a skip, a release or an expiry, each audited with the lease's start.

The services here take the caller's unit of work (``corpus.services.write_batch``): it holds
the audit chain lock from its first statement, its writes ride the next round trip, and its
events are appended together at commit (a decision and the lease of the next item are one
append, one hashing pass and one head update in the one transaction).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from corpus.models import Dataset, Item
from corpus.services.audit import SYSTEM, actor_for_user
from corpus.services.write_batch import WriteBatch, write_batch
from review.models import Claim, ReviewPolicy, Skip
from review.selectors import QuotaStatus, quota_status_get, review_policy_get
from review.services import ReviewError
from review.sql import next_item_id, stale_and_lease_next, take_claim

_random = secrets.SystemRandom()


def lease_length() -> timedelta:
    return timedelta(seconds=settings.SYNTHGATE_CLAIM_LEASE_SECONDS)


@dataclass
class ClaimOutcome:
    status: Literal["claimed", "held", "quota", "empty"]
    claim: Claim | None
    quota: QuotaStatus
    policy: ReviewPolicy  # read anyway for the gold rate; the page shows its reject reasons
    # The claimed item with its parent ids, when the lease's round trip read it (PostgreSQL).
    item: tuple[Item, list[int]] | None = None


def _end(
    wb: WriteBatch,
    claim: Claim,
    *,
    dataset: Dataset,
    now: datetime,
    action: str,
    **why: Any,
) -> bool:
    """Delete a claim and audit why it ended (an expiry, a release), in ``wb``; False if the
    claim was already gone."""
    rows = Claim.objects.filter(pk=claim.pk, reviewer_id=claim.reviewer_id)
    if action == "review.claim_expired":
        rows = rows.filter(expires_at__lte=now)
    deleted, _ = rows.delete()
    if not deleted:
        return False
    wb.audit(
        actor=SYSTEM,
        action=action,
        object_type="item",
        object_id=claim.item_id,
        dataset=dataset,
        payload={
            "reviewer": claim.reviewer_id,
            "claimed_at": claim.claimed_at.isoformat(),
            "expires_at": claim.expires_at.isoformat(),
            **why,
        },
    )
    return True


def _claimed(wb: WriteBatch, claim: Claim, *, reviewer: User) -> None:
    """The event of a new lease: who holds the item, from when until when."""
    wb.audit(
        actor=actor_for_user(reviewer),
        action="review.claimed",
        object_type="item",
        object_id=claim.item_id,
        dataset=claim.dataset,
        payload={
            "reviewer": claim.reviewer_id,
            "claimed_at": claim.claimed_at.isoformat(),
            "expires_at": claim.expires_at.isoformat(),
        },
    )


def _insert(*, item_id: int, dataset: Dataset, reviewer: User, now: datetime) -> bool:
    """Insert a lease; False when the item (or this reviewer, in another tab) already has one.
    Raw SQL because the ORM cannot say ON CONFLICT DO NOTHING *and* report whether it did."""
    ops = connection.ops
    table = ops.quote_name(Claim._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (item_id, dataset_id, reviewer_id, claimed_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                item_id,
                dataset.pk,
                reviewer.pk,
                ops.adapt_datetimefield_value(now),
                ops.adapt_datetimefield_value(now + lease_length()),
            ],
        )
        return cursor.rowcount == 1


def claim_item(
    wb: WriteBatch, *, item_id: int, dataset: Dataset, reviewer: User, now: datetime
) -> bool:
    """Lease one given item in ``wb``, taking over a lease that has run out (both audited).
    False when someone holds a live lease on it."""
    stale = Claim.objects.select_for_update().filter(item_id=item_id).first()
    if stale is not None:
        if stale.expires_at > now:
            return False
        _end(wb, stale, dataset=dataset, now=now, action="review.claim_expired")
    if not _insert(item_id=item_id, dataset=dataset, reviewer=reviewer, now=now):
        return False
    _leased(wb, item_id, dataset=dataset, reviewer=reviewer, now=now)
    return True


def _expire_stale(wb: WriteBatch, *, dataset: Dataset, now: datetime, limit: int = 100) -> None:
    """End the dataset's run-out leases before claiming, so their rows do not block the insert
    of a new lease on the same item."""
    stale = Claim.objects.select_for_update(skip_locked=True).filter(
        dataset=dataset, expires_at__lte=now
    )
    for claim in stale.order_by("expires_at")[:limit]:
        _end(wb, claim, dataset=dataset, now=now, action="review.claim_expired")


def _leased(
    wb: WriteBatch, item_id: int, *, dataset: Dataset, reviewer: User, now: datetime
) -> Claim:
    """The lease just inserted, audited."""
    claim = Claim(
        item_id=item_id,
        dataset=dataset,
        reviewer=reviewer,
        claimed_at=now,
        expires_at=now + lease_length(),
    )
    _claimed(wb, claim, reviewer=reviewer)
    return claim


def _claim_first(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    now: datetime,
    gold: bool,
    expire_stale: bool,
) -> tuple[Claim | None, tuple[Item, list[int]] | None]:
    """Lease the first item of the queue (gold checks or the rest) nobody else is taking, in
    ``wb``. ``expire_stale``: also end the dataset's run-out leases, whose rows would block the
    insert of a new lease on their item. Asking whether there are any is sent with the first
    attempt to lease (the pick and the insert are one statement), and with ``wb``'s pending
    writes; when that attempt leases nothing (an empty queue, or it met a lease: a run-out one,
    now ended, or another tab's) the step by step loop below finds out which and retries. Also
    the leased item, when the first attempt leased and read it."""
    skip_cutoff = now - timedelta(seconds=settings.SYNTHGATE_SKIP_HIDE_SECONDS)
    if expire_stale:
        reads = stale_and_lease_next(
            wb,
            dataset_id=dataset.pk,
            reviewer_id=reviewer.pk,
            gold=gold,
            now=now,
            skip_cutoff=skip_cutoff,
            expires_at=now + lease_length(),
        )
        if reads.stale:
            _expire_stale(wb, dataset=dataset, now=now)
        if reads.leased is not None:
            item = reads.item if reads.item and reads.item[0].pk == reads.leased else None
            return _leased(wb, reads.leased, dataset=dataset, reviewer=reviewer, now=now), item
    tried: list[int] = []
    # A collision means another reviewer committed a lease on the row we read (or a lease ran
    # out a moment ago and its row is still there); a few retries reach a free row, and
    # SKIP LOCKED already steers us off rows being claimed right now.
    for _attempt in range(5):
        item_id = next_item_id(
            dataset_id=dataset.pk,
            reviewer_id=reviewer.pk,
            gold=gold,
            now=now,
            skip_cutoff=skip_cutoff,
            excluded=tried,
        )
        if item_id is None:
            return None, None
        if _insert(item_id=item_id, dataset=dataset, reviewer=reviewer, now=now):
            return _leased(wb, item_id, dataset=dataset, reviewer=reviewer, now=now), None
        mine = Claim.objects.filter(dataset=dataset, reviewer=reviewer).first()
        if mine is not None:
            return mine, None  # our own other tab won the race: that claim is ours to show
        tried.append(item_id)
    return None, None


def item_claim(
    *, dataset: Dataset, reviewer: User, policy: ReviewPolicy | None = None
) -> ClaimOutcome:
    """The reviewer's current item in this dataset: the one they hold (lease renewed), else the
    next one in the queue, with a gold check mixed in at the dataset's rate. Refuses at the daily
    quota with status ``quota`` (and gives back a held item), ``empty`` when nothing is left.
    ``policy`` spares a read when the caller has it in hand. Renewing takes no lock (one
    conditional UPDATE); anything else is audited, in a unit of work."""
    now = timezone.now()
    quota = quota_status_get(dataset=dataset, reviewer=reviewer, now=now)
    policy = policy or review_policy_get(dataset=dataset)
    mine = Claim.objects.filter(dataset=dataset, reviewer=reviewer).first()
    state = None
    if mine is not None:
        state = Item.objects.filter(pk=mine.item_id).values_list("state", flat=True).first()
        if not quota.reached and state == Item.State.QUEUED:
            mine.expires_at = now + lease_length()
            renewed = Claim.objects.filter(
                pk=mine.pk, reviewer=reviewer, expires_at__gt=now
            ).update(expires_at=mine.expires_at)
            if renewed:
                return ClaimOutcome(status="held", claim=mine, quota=quota, policy=policy)
    elif quota.reached:
        return ClaimOutcome(status="quota", claim=None, quota=quota, policy=policy)
    with write_batch() as wb:
        if mine is not None:
            mine = Claim.objects.select_for_update().filter(pk=mine.pk, reviewer=reviewer).first()
        if mine is not None:
            if mine.expires_at <= now:
                _end(wb, mine, dataset=dataset, now=now, action="review.claim_expired")
            else:
                why = "quota reached" if quota.reached else f"item is {state}"
                _end(wb, mine, dataset=dataset, now=now, action="review.claim_released", why=why)
        return _lease_next(
            wb, dataset=dataset, reviewer=reviewer, now=now, policy=policy, quota=quota
        )


def item_claim_next(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    policy: ReviewPolicy,
    quota: QuotaStatus,
) -> ClaimOutcome:
    """Lease the next item, in ``wb``, for a reviewer who holds none here because they just
    ended their lease (a decision) in it, which also read their quota and the policy. Should
    another tab of theirs have leased meanwhile, that lease is the one returned."""
    now = timezone.now()
    return _lease_next(wb, dataset=dataset, reviewer=reviewer, now=now, policy=policy, quota=quota)


def _lease_next(
    wb: WriteBatch,
    *,
    dataset: Dataset,
    reviewer: User,
    now: datetime,
    policy: ReviewPolicy,
    quota: QuotaStatus,
) -> ClaimOutcome:
    if quota.reached:
        return ClaimOutcome(status="quota", claim=None, quota=quota, policy=policy)
    gold = policy.gold_rate > 0 and _random.random() < policy.gold_rate
    claim, item = _claim_first(
        wb, dataset=dataset, reviewer=reviewer, now=now, gold=gold, expire_stale=True
    )
    if claim is None and gold:  # no gold check left for this reviewer: an ordinary item
        claim, item = _claim_first(
            wb, dataset=dataset, reviewer=reviewer, now=now, gold=False, expire_stale=False
        )
    if claim is None:
        return ClaimOutcome(status="empty", claim=None, quota=quota, policy=policy)
    return ClaimOutcome(status="claimed", claim=claim, quota=quota, policy=policy, item=item)


def claim_renew(*, dataset: Dataset, reviewer: User, item_id: int) -> Claim | None:
    """Extend a live lease (the open page asks every minute); None when it is no longer held.
    A lease that already ran out is not revived: the item may be someone else's by now."""
    now = timezone.now()
    expires_at = now + lease_length()
    updated = Claim.objects.filter(
        item_id=item_id, dataset=dataset, reviewer=reviewer, expires_at__gt=now
    ).update(expires_at=expires_at)
    if not updated:
        return None
    return Claim.objects.filter(item_id=item_id, reviewer=reviewer).first()


def not_held_error(item_id: int) -> ReviewError:
    return ReviewError(
        f"You no longer hold item {item_id}: your lease ran out or the item moved on. "
        "Here is your next item.",
        code="conflict",
    )


def held_claim(*, dataset: Dataset, reviewer: User, item_id: int, now: datetime) -> Claim:
    """End the reviewer's live lease on the item and return it (as it was); refuses when they
    hold none. Rolled back with the caller's transaction if that fails later."""
    taken = take_claim(item_id=item_id, dataset_id=dataset.pk, reviewer_id=reviewer.pk, now=now)
    if taken is None:
        raise not_held_error(item_id)
    claimed_at, expires_at = taken
    return Claim(
        item_id=item_id,
        dataset=dataset,
        reviewer=reviewer,
        claimed_at=claimed_at,
        expires_at=expires_at,
    )


def item_skip(*, dataset: Dataset, reviewer: User, item_id: int) -> Skip:
    """Pass on the held item: it goes back to the queue for others and stays out of this
    reviewer's queue for SYNTHGATE_SKIP_HIDE_SECONDS."""
    now = timezone.now()
    with write_batch() as wb:
        claim = held_claim(dataset=dataset, reviewer=reviewer, item_id=item_id, now=now)
        skip = Skip.objects.create(
            item_id=item_id, dataset=dataset, reviewer=reviewer, created_at=now
        )
        wb.audit(
            actor=actor_for_user(reviewer),
            action="review.skipped",
            object_type="item",
            object_id=item_id,
            dataset=dataset,
            payload={
                "claimed_at": claim.claimed_at.isoformat(),
                "seconds": round((now - claim.claimed_at).total_seconds(), 3),
            },
        )
    return skip


def _claims_expire_batch(*, now: datetime, batch_size: int) -> int:
    if not Claim.objects.filter(expires_at__lte=now).exists():
        return 0
    with write_batch() as wb:
        claims = list(
            Claim.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(expires_at__lte=now)
            .select_related("dataset")
            .order_by("expires_at")[:batch_size]
        )
        return sum(
            _end(wb, claim, dataset=claim.dataset, now=now, action="review.claim_expired")
            for claim in claims
        )


def claims_expire(*, batch_size: int = 500) -> int:
    """Delete every lease that has run out, auditing each expiry; batches keep transactions
    short. Rows another process is handling right now (locked) are left to the next run."""
    now = timezone.now()
    total = 0
    while True:
        expired = _claims_expire_batch(now=now, batch_size=batch_size)
        total += expired
        if expired < batch_size:
            return total
