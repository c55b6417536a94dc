"""Exports, their export policy, the feed and retractions.

An export is a snapshot: which items it holds is fixed (``ExportItem`` rows) in one transaction
under the audit chain lock, and once it is ``ready`` neither the export nor its rows change.
The feed is an append-only log of approvals, undos and retractions whose ``seq`` is handed out
under the same lock, so it is in commit order (see ``corpus.services.feed``).
"""

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from corpus.models.datasets import Dataset
from corpus.models.items import Item


class ExportPolicy(models.Model):
    """One version of a dataset's export policy. A change is a new row, never an update, so a
    manifest's policy version always names what the export was built under."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="export_policies")
    version = models.PositiveIntegerField()
    # The validated policy document (corpus.services.policy.PolicySpec), defaults filled in.
    spec = models.JSONField()
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "export policies"
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="exportpolicy_version"),
        ]

    def __str__(self) -> str:
        return f"export policy v{self.version} of {self.dataset_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("an export policy version never changes; create a new one")
        super().save(*args, **kwargs)


class ExportStatus(models.TextChoices):
    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class ExportFormat(models.TextChoices):
    JSONL = "jsonl"
    PARQUET = "parquet"


class ExportMode(models.TextChoices):
    ACCUMULATE = "accumulate"
    DELTA = "delta"


class ExportQuerySet(models.QuerySet):
    """Bulk writes that would touch a ready export are refused, like ``Export.save``."""

    def update(self, **kwargs: Any) -> int:
        if self.filter(status=ExportStatus.READY).exists():
            raise PermissionError("a ready export never changes")
        # The exclude closes the window between the check and the UPDATE.
        return super(ExportQuerySet, self.exclude(status=ExportStatus.READY)).update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        if self.filter(status=ExportStatus.READY).exists():
            raise PermissionError("a ready export is never deleted")
        return super().delete()


class Export(models.Model):
    Status = ExportStatus
    Format = ExportFormat
    Mode = ExportMode

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="exports")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.JSONL)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ACCUMULATE)
    # Delta exports hold what was approved after this export's snapshot.
    since = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy = models.ForeignKey(
        ExportPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="exports"
    )
    requested_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Which build attempt owns the row: a worker that lost it (a stale build taken over after a
    # crash) stops at its next progress write.
    attempt = models.CharField(max_length=32, blank=True)
    # The feed position the snapshot was taken at: everything approved up to it, nothing after.
    snapshot_seq = models.BigIntegerField(null=True, blank=True)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=500, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    merkle_root = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    objects = ExportQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ExportStatus.values), name="export_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(format__in=ExportFormat.values), name="export_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=ExportMode.values), name="export_mode_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "status", "-id"], name="export_dataset_status"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.dataset_id} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if (
            not self._state.adding
            and Export.objects.filter(pk=self.pk, status=ExportStatus.READY).exists()
        ):
            raise PermissionError("a ready export never changes")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if Export.objects.filter(pk=self.pk, status=ExportStatus.READY).exists():
            raise PermissionError("a ready export is never deleted")
        return super().delete(*args, **kwargs)

    @property
    def is_done(self) -> bool:
        return self.status in (ExportStatus.READY, ExportStatus.FAILED)

    @property
    def progress(self) -> float | None:
        if not self.rows_total:
            return 1.0 if self.status == ExportStatus.READY else None
        return min(1.0, self.rows_written / self.rows_total)

    @property
    def download_name(self) -> str:
        return f"{self.dataset.slug}-export-{self.pk}.{self.format}"


class ExportItemQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("export rows never change")

    def delete(self) -> tuple[int, dict[str, int]]:
        if self.filter(export__status=ExportStatus.READY).exists():
            raise PermissionError("the rows of a ready export are never deleted")
        return super().delete()


class ExportItem(models.Model):
    """An item an export considered: in the file (``included``), or left out and why."""

    # A snapshot writes up to millions of these rows while it holds the audit chain lock, so
    # each row costs as little as it can: (export, item) is the primary key and the only index
    # (no id column, no sequence, no second index; "is this item in an export" probes it per
    # export of the item's dataset), and there are no database-level foreign keys, whose
    # per-row triggers would double the time for ids just read under that lock. Deletes still
    # cascade (or are refused) in Django, and items are never deleted (PROTECT everywhere).
    pk = models.CompositePrimaryKey("export", "item")
    export = models.ForeignKey(
        Export,
        on_delete=models.CASCADE,
        related_name="rows",
        db_constraint=False,
        db_index=False,
    )
    item = models.ForeignKey(
        Item,
        on_delete=models.PROTECT,
        related_name="export_rows",
        db_constraint=False,
        db_index=False,
    )
    included = models.BooleanField(default=True)
    # For left-out items: the policy rule that cut it (max_generation, max_per_cluster,
    # max_synthetic_share, source_caps[web], ...), several joined by ", ".
    reason = models.CharField(max_length=500, blank=True)

    objects = ExportItemQuerySet.as_manager()

    def __str__(self) -> str:
        return f"item {self.item_id} in export {self.export_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("export rows never change")
        super().save(*args, **kwargs)


class FeedKind(models.TextChoices):
    APPROVED = "approved"
    REOPENED = "reopened"
    RETRACTED = "retracted"


class FeedEntry(models.Model):
    """One line of a dataset's feed. ``seq`` is assigned under the audit chain lock, which every
    state change holds until it commits, so seq order is commit order: a reader that sees entry
    n has already been able to see every entry below n."""

    Kind = FeedKind

    seq = models.BigIntegerField(primary_key=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="feed_entries")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="feed_entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "feed entries"
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=FeedKind.values), name="feedentry_kind"),
        ]
        indexes = [
            models.Index(fields=["dataset", "seq"], name="feedentry_dataset_seq"),
            models.Index(fields=["item", "seq"], name="feedentry_item_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} item {self.item_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("feed entries are append-only")
        super().save(*args, **kwargs)


class Retraction(models.Model):
    """An approved item taken back by an admin: it leaves every later export and the feed and
    the next manifest report it."""

    item = models.OneToOneField(Item, on_delete=models.PROTECT, related_name="retraction")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="retractions")
    reason = models.CharField(max_length=500)
    actor = models.CharField(max_length=200)
    feed_seq = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["feed_seq"]
        indexes = [
            models.Index(fields=["dataset", "feed_seq"], name="retraction_dataset_seq"),
        ]

    def __str__(self) -> str:
        return f"retraction of item {self.item_id}"
