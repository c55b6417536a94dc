"""What the dashboard reads instead of scanning items on every page view, and the alerts.

``DashboardDay`` and ``DashboardState`` are kept by the rollup task
(``dashboard.services.rollup.dashboard_rollup``); ``TailGram`` is its incremental count of the
reference's n-grams. ``AlertRules`` are the thresholds admins set; ``Alert`` is one crossing of
one of them, open until the value comes back.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from corpus.models import Dataset


class DashboardDay(models.Model):
    """One dataset's figures for one day (the site's time zone).

    The flow counts are recomputed for the last few days on every rollup; the approved-set
    columns are the snapshot taken by the day's last rollup (the past state of the approved set
    is not recomputed), so a day without a rollup has none.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # The flow: items ingested that day, and what became of that intake (auto-rejected by a
    # rule, sent to review); items decided that day (approved, rejected).
    ingested = models.IntegerField(default=0)
    auto_rejected = models.IntegerField(default=0)
    queued = models.IntegerField(default=0)
    approved = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    # The approved set (non-reference items in state approved) at the day's last rollup.
    approved_human = models.IntegerField(null=True, blank=True)
    approved_synthetic = models.IntegerField(null=True, blank=True)
    approved_unknown = models.IntegerField(null=True, blank=True)
    # Mean lexical statistics (Score.lexical) of the approved set and of the human reference.
    approved_compression = models.FloatField(null=True, blank=True)
    approved_distinct_2 = models.FloatField(null=True, blank=True)
    approved_repetition = models.FloatField(null=True, blank=True)
    reference_compression = models.FloatField(null=True, blank=True)
    reference_distinct_2 = models.FloatField(null=True, blank=True)
    reference_repetition = models.FloatField(null=True, blank=True)
    tail_coverage = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "day"], name="dashboardday_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} on {self.day}"


class DashboardState(models.Model):
    """Where the incremental part of the rollup has got to, and the latest whole-dataset figures
    (histograms, mixes, agreement) that are too costly to aggregate per page view."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # The last feed entry and the last reference item counted into TailGram.
    feed_seq = models.BigIntegerField(default=0)
    reference_item_id = models.BigIntegerField(default=0)
    # Where the per-block figures (DashboardBlock) have got to: the audit events and the item
    # ids they cover, the near-duplicate threshold they count against, and their last full
    # recomputation (dashboard.services.blocks).
    blocks_seq = models.BigIntegerField(default=0)
    blocks_item_id = models.BigIntegerField(default=0)
    blocks_threshold = models.FloatField(null=True, blank=True)
    blocks_full_at = models.DateTimeField(null=True, blank=True)
    # The ids a block held when they were stored (another size numbers blocks otherwise).
    blocks_size = models.IntegerField(default=0)
    # The sum of every block's figures, moved by each run by the difference of the blocks it
    # recomputed (the near-duplicate targets are in DashboardTarget).
    blocks_total = models.JSONField(default=dict, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"dashboard state of {self.dataset_id}"


class DashboardBlock(models.Model):
    """The whole-dataset figures of one block of consecutive item ids (``id // BLOCK``), which
    the rollup adds up; recomputed only when an item of the block changed (see
    ``dashboard.services.blocks``)."""

    pk = models.CompositePrimaryKey("dataset", "block")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    block = models.BigIntegerField()
    figures = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"dashboard block {self.block} of {self.dataset_id}"


class DashboardTarget(models.Model):
    """An item that near-duplicates of one block point at: the near-duplicate clusters are the
    distinct targets of a dataset (counted on the ``(dataset, target)`` index)."""

    pk = models.CompositePrimaryKey("dataset", "block", "target")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    block = models.BigIntegerField()
    target = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["dataset", "target"], name="dashboardtarget_target")]

    def __str__(self) -> str:
        return f"near-duplicate target {self.target} in block {self.block}"


class TailGram(models.Model):
    """How many reference documents and how many approved documents hold one (sampled) n-gram
    (see ``dashboard.tail``). Kept incrementally from new reference items and the feed."""

    pk = models.CompositePrimaryKey("dataset", "gram")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    gram = models.BigIntegerField()
    reference_docs = models.IntegerField(default=0)
    approved_docs = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.gram} in {self.dataset_id}"


class AlertKind(models.TextChoices):
    SYNTHETIC_SHARE = "synthetic_share", "Synthetic share of the approved set"
    TAIL_COVERAGE = "tail_coverage", "Tail coverage"
    NEAR_DUPLICATE_RATE = "near_duplicate_rate", "Near-duplicate rate of a generator"
    SCORING_BACKLOG = "scoring_backlog", "Scoring backlog age"


class AlertRules(models.Model):
    """A dataset's alert thresholds; a blank threshold is off. Absent until first saved."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, primary_key=True, related_name="alert_rules"
    )
    max_synthetic_share = models.FloatField(
        null=True, blank=True, help_text="Alert when the synthetic share of approved is above."
    )
    min_tail_coverage = models.FloatField(
        null=True, blank=True, help_text="Alert when tail coverage falls below."
    )
    max_near_duplicate_rate = models.FloatField(
        null=True,
        blank=True,
        help_text="Alert when a generator's share of near-duplicate items is above.",
    )
    max_backlog_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Alert when the oldest unscored item is older than this."
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "alert rules"
        constraints = [
            models.CheckConstraint(
                condition=(
                    (Q(max_synthetic_share__isnull=True) | Q(max_synthetic_share__range=(0, 1)))
                    & (Q(min_tail_coverage__isnull=True) | Q(min_tail_coverage__range=(0, 1)))
                    & (
                        Q(max_near_duplicate_rate__isnull=True)
                        | Q(max_near_duplicate_rate__range=(0, 1))
                    )
                ),
                name="alertrules_shares_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"alert rules of {self.dataset_id}"


class Alert(models.Model):
    """One crossing of one threshold: opened when the value crosses it, closed (``cleared_at``)
    when it comes back. At most one open alert per (dataset, kind, subject), so a condition that
    lasts fires once."""

    Kind = AlertKind

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    # What the alert is about within its kind: the generator for near_duplicate_rate, else "".
    subject = models.CharField(max_length=200, blank=True)
    value = models.FloatField()
    threshold = models.FloatField()
    reason = models.CharField(max_length=500)
    fired_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "kind", "subject"],
                condition=Q(cleared_at__isnull=True),
                name="alert_one_open_per_subject",
            ),
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind"),
        ]
        indexes = [
            models.Index(
                fields=["dataset"], condition=Q(cleared_at__isnull=True), name="alert_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} alert on {self.dataset_id} ({'open' if self.is_open else 'cleared'})"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None
