"""The append-only, hash-chained audit log."""

from django.db import models

from corpus.models.datasets import Dataset


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """One link of the hash chain. hash = sha256(canonical JSON of the event + prev_hash).

    PostgreSQL and SQLite triggers (migration ``0004``) refuse UPDATE and DELETE on this table, so
    even raw SQL cannot quietly rewrite it; the model refuses them first, with a clearer error.
    """

    seq = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    # Indexed by (dataset, seq) below; every index is paid for on every append.
    dataset = models.ForeignKey(
        Dataset,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,
    )
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    # Unique through Meta.constraints, not unique=True, which on PostgreSQL also builds a
    # LIKE-pattern index nobody queries.
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_hash_unique")]
        indexes = [
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["object_type", "object_id", "seq"], name="audit_object_seq"),
            models.Index(fields=["actor", "seq"], name="audit_actor_seq"),
            models.Index(fields=["dataset", "seq"], name="audit_dataset_seq"),
            models.Index(fields=["time"], name="audit_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditEventItem(models.Model):
    """Which other items an event concerns: with the object index, what an item's timeline
    reads.

    Derived from the hashed event (the item ids its payload names, see
    ``corpus.services.audit.event_item_ids``; not the event's own object, which the object index
    covers), written with the event, and append-only like it. Keyed (item, event) so a lookup is
    one index range scan.
    """

    pk = models.CompositePrimaryKey("item_id", "event")
    item_id = models.BigIntegerField()
    # No index of its own: rows are only ever looked up by item; events are never deleted.
    # No database foreign key either (migration 0013): these rows are derived from their event
    # and written only by ``audit_append_many``, in the event's own transaction, after its
    # guarded head update; events cannot be deleted (the append-only triggers). The key's
    # deferred check cost one query per row at commit, under the chain lock: for an ingest of
    # 1,000 items about 3.3 ms of the 30 ms the lock is held (bench/RESULTS.md, "Ingest").
    event = models.ForeignKey(
        AuditEvent,
        on_delete=models.DO_NOTHING,
        related_name="item_refs",
        db_index=False,
        db_constraint=False,
    )

    objects = AppendOnlyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"item {self.item_id} in event #{self.event_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditHead(models.Model):
    """The single row every append locks: it serializes appends so the chain never forks."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AuditVerification(models.Model):
    """The verifier's checkpoint and verdict (one row).

    The periodic task resumes from ``verified_seq``/``verified_hash`` instead of rereading the
    whole chain, and reads the anchor file from ``anchors_offset``. ``/healthz`` and the admin
    banner report ``ok``/``problem``. Bookkeeping, not history: advancing the checkpoint is not
    audited; a chain turning broken (or whole again) is.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    verified_seq = models.BigIntegerField(default=0)
    verified_hash = models.CharField(max_length=64, default="0" * 64)
    # Bytes of the anchor file already checked, and the last head written to it.
    anchors_offset = models.BigIntegerField(default=0)
    anchored_seq = models.BigIntegerField(default=0)
    anchored_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=True)
    problem = models.TextField(blank=True)
    bad_seq = models.BigIntegerField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    full_checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        state = "ok" if self.ok else f"broken: {self.problem}"
        return f"audit verified to #{self.verified_seq} ({state})"
