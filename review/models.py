"""People's work on the data: leases on queued items, decisions, skips, and the per-dataset
review settings admins edit (consensus policy, reject reasons, quotas, gold items).

Outcomes are not stored here: a decision that settles an item writes its state onto the item
through ``corpus.services.items``, so exports and the feed read corpus tables only.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from corpus.models import Dataset, Item

# Keys are stable: the scoring engineer retrains detectors from rejections whose reason is
# `machine_written`; labels are what reviewers read and admins may reword.
DEFAULT_REJECT_REASONS: list[dict[str, str]] = [
    {"key": "duplicate", "label": "Duplicate"},
    {"key": "low_quality", "label": "Low quality"},
    {"key": "factually_wrong", "label": "Factually wrong"},
    {"key": "unsafe", "label": "Unsafe"},
    {"key": "machine_written", "label": "Looks machine-written"},
    {"key": "off_topic", "label": "Off-topic"},
]
MAX_REJECT_REASONS = 9  # one per digit key, 1-9


def default_reject_reasons() -> list[dict[str, str]]:
    return [dict(reason) for reason in DEFAULT_REJECT_REASONS]


class Verdict(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Claim(models.Model):
    """A reviewer's lease on one queued item. At most one row per item (the primary key) and one
    per reviewer and dataset; a claim counts only while ``expires_at`` is in the future, so an
    abandoned item returns to the queue by itself when its lease runs out."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, primary_key=True, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_claims"
    )
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reviewer", "dataset"], name="claim_one_per_reviewer_dataset"
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="claim_expires")]

    def __str__(self) -> str:
        return f"claim of item {self.item_id} by user {self.reviewer_id}"


class Decision(models.Model):
    class Via(models.TextChoices):
        TRIAGE = "triage"
        BULK = "bulk"

    Verdict = Verdict

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="review_decisions")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    # The key of the dataset's reject reason at the time (kept even if the list changes later).
    reason = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.TRIAGE)
    # From the start of the claim to the decision; NULL for bulk decisions (no claim, no timing).
    seconds = models.FloatField(null=True, blank=True)
    # Set when the item was a gold check: the verdict the admin expected.
    gold_expected = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Consensus counts distinct reviewers: one live decision per reviewer and item.
            models.UniqueConstraint(
                fields=["item", "reviewer"],
                condition=Q(undone_at__isnull=True),
                name="decision_one_live_per_reviewer",
            ),
            models.CheckConstraint(
                condition=Q(verdict=Verdict.APPROVE, reason="")
                | (Q(verdict=Verdict.REJECT) & ~Q(reason="")),
                name="decision_reason_iff_reject",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reviewer", "dataset", "-created_at"], name="decision_reviewer_recent"
            ),
            models.Index(fields=["dataset", "created_at"], name="decision_dataset_created"),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} of item {self.item_id} by user {self.reviewer_id}"

    @property
    def is_gold(self) -> bool:
        return bool(self.gold_expected)

    @property
    def gold_correct(self) -> bool | None:
        return self.verdict == self.gold_expected if self.gold_expected else None


class Skip(models.Model):
    """A reviewer passed on an item; it stays out of their queue for a while (others see it)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["item", "reviewer", "created_at"], name="skip_item_reviewer"),
            models.Index(fields=["reviewer", "dataset", "created_at"], name="skip_reviewer_recent"),
        ]

    def __str__(self) -> str:
        return f"skip of item {self.item_id} by user {self.reviewer_id}"


class ReviewPolicy(models.Model):
    """How a dataset is reviewed. Absent until an admin first saves it; the defaults below apply
    until then (one approval settles an item, no gold checks, the default reject reasons)."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, primary_key=True, related_name="review_policy"
    )
    # Items matching any consensus rule need this many approvals from distinct reviewers.
    consensus_approvals = models.PositiveSmallIntegerField(default=2)
    consensus_min_detector = models.FloatField(null=True, blank=True)
    consensus_min_generation = models.PositiveIntegerField(null=True, blank=True)
    consensus_unknown_origin = models.BooleanField(default=False)
    # Share of claims that serve a gold item (when one is available to the reviewer).
    gold_rate = models.FloatField(default=0.0)
    reject_reasons = models.JSONField(default=default_reject_reasons)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "review policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(consensus_approvals__gte=1) & Q(consensus_approvals__lte=9),
                name="policy_approvals_range",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="policy_gold_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"review policy of {self.dataset_id}"

    @property
    def has_consensus_rules(self) -> bool:
        return (
            self.consensus_min_detector is not None
            or self.consensus_min_generation is not None
            or self.consensus_unknown_origin
        )


class ReviewerQuota(models.Model):
    """Maximum decisions per reviewer per day (UTC) in a dataset. A row without a reviewer is the
    dataset's default; a reviewer's own row overrides it."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="review_quotas")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="review_quotas",
    )
    daily_limit = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "reviewer"],
                condition=Q(reviewer__isnull=False),
                name="quota_one_per_reviewer",
            ),
            models.UniqueConstraint(
                fields=["dataset"], condition=Q(reviewer__isnull=True), name="quota_one_default"
            ),
        ]

    def __str__(self) -> str:
        who = f"user {self.reviewer_id}" if self.reviewer_id else "everyone"
        return f"{self.daily_limit}/day for {who} in {self.dataset_id}"


class ReviewerDay(models.Model):
    """A reviewer's live decisions in a dataset on one day (the site's time zone): what the
    daily quota counts and the triage page shows, kept by the decision services as decisions
    are made and undone, so that reading it is one row whatever the length of the day."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField()
    decided = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reviewer", "dataset", "day"], name="reviewer_day_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decided} by user {self.reviewer_id} in {self.dataset_id} on {self.day}"


class GoldItem(models.Model):
    """An item with a known verdict, mixed into the queue to measure reviewers. Decisions on it
    never settle it: it stays ``queued`` in the corpus, so it is never approved nor exported."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, primary_key=True, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    expected = models.CharField(max_length=8, choices=Verdict.choices)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["dataset", "item"], name="gold_dataset_item")]

    def __str__(self) -> str:
        return f"gold item {self.item_id} (expect {self.expected})"


class BulkJobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BulkJob(models.Model):
    """An admin's approval or rejection of every item matching the list page's filters, run by
    a worker in chunks (``review.services.bulk_jobs``). Each chunk is one transaction that
    decides its items and moves ``last_id`` and the counts with them, so the row always says
    exactly what has been decided, and a job that stops (a failure, a dead worker, a cancel)
    resumes after its last committed chunk."""

    State = BulkJobState
    ACTIVE = (BulkJobState.QUEUED, BulkJobState.RUNNING)
    FINISHED = (BulkJobState.DONE, BulkJobState.FAILED, BulkJobState.CANCELLED)

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # The list's filters (review.selectors.ListQuery without its sort and page), source by id.
    filters = models.JSONField(default=dict)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    reason = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    # Only items up to this id are decided: those that existed when the admin was asked.
    id_ceiling = models.BigIntegerField()
    # Items matching the filters up to id_ceiling when the job was requested.
    total = models.PositiveIntegerField()
    # Where the walk is: every matching item up to this id has been decided or skipped.
    last_id = models.BigIntegerField(default=0)
    decided = models.PositiveIntegerField(default=0)  # a vote recorded on each
    settled = models.PositiveIntegerField(default=0)  # of those, now approved or rejected
    skipped = models.PositiveIntegerField(default=0)
    # {reason: {"count": n, "ids": [the first few]}}, reasons as LEFT_OUT_REASONS names them.
    skipped_by_reason = models.JSONField(default=dict)
    chunks = models.PositiveIntegerField(default=0)
    # Which run owns the job: a worker that lost it (taken over after it went silent, or the
    # job cancelled) stops at its next chunk.
    attempt = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One job at a time per dataset: two would walk the same rows and skip each other's
            # locked ones as "busy", and an admin could not tell which decided what.
            models.UniqueConstraint(
                fields=["dataset"],
                condition=Q(state__in=["queued", "running"]),
                name="bulkjob_one_active_per_dataset",
            ),
            models.CheckConstraint(
                condition=Q(state__in=BulkJobState.values), name="bulkjob_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(verdict=Verdict.APPROVE, reason="")
                | (Q(verdict=Verdict.REJECT) & ~Q(reason="")),
                name="bulkjob_reason_iff_reject",
            ),
        ]
        indexes = [models.Index(fields=["dataset", "-id"], name="bulkjob_dataset_recent")]

    def __str__(self) -> str:
        return f"bulk {self.verdict} job {self.pk} of {self.dataset_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def processed(self) -> int:
        """Items the job has been through: decided or skipped."""
        return self.decided + self.skipped

    @property
    def recorded(self) -> int:
        """Items with a vote recorded that still wait for more approvals (consensus)."""
        return self.decided - self.settled

    @property
    def unmatched(self) -> int:
        """Of the items counted when the job was asked, how many it never met: they stopped
        matching the filters before their chunk (someone else decided them meanwhile)."""
        return max(0, self.total - self.processed) if self.state == BulkJobState.DONE else 0
