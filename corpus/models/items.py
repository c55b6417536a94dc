"""Items with their provenance, lineage links and scores."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from corpus.models.datasets import Dataset, Source


class ItemOrigin(models.TextChoices):
    HUMAN = "human"
    SYNTHETIC = "synthetic"
    UNKNOWN = "unknown"


class ItemState(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    APPROVED = "approved"
    REJECTED = "rejected"
    AUTO_REJECTED = "auto_rejected"
    SCORE_FAILED = "score_failed"
    # An approved item an admin took back (corpus.services.retractions): terminal; it leaves
    # every later export and the feed reports it.
    RETRACTED = "retracted"


class ItemKind(models.TextChoices):
    TEXT = "text"
    CHAT = "chat"
    CODE = "code"


class Item(models.Model):
    Origin = ItemOrigin
    State = ItemState
    Kind = ItemKind

    # No single-column indexes on the two foreign keys: every index is paid for on every insert,
    # and composite ones lead with these columns (dataset: the Meta indexes below; source: the
    # (source, external_id) unique constraint, which covers every row for that reason).
    # On PostgreSQL one composite foreign key, (source_id, dataset_id) -> corpus_source (id,
    # dataset_id), guards both (migration 0012: one deferred check per inserted row instead of
    # two, and the item's dataset must be its source's); Django cannot declare it, hence
    # db_constraint=False here. SQLite keeps a foreign key on each.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="items", db_index=False, db_constraint=False
    )
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="items", db_index=False, db_constraint=False
    )
    kind = models.CharField(max_length=8, choices=ItemKind.choices, default=ItemKind.TEXT)
    # For chat items, the transcript rendered as "role: content" paragraphs (what is hashed and
    # searched); the turns themselves are in ``messages``.
    text = models.TextField()
    messages = models.JSONField(null=True, blank=True)
    language = models.CharField(max_length=50, blank=True, help_text="Code items only.")
    # sha256 hex of corpus.scoring.text.normalize(text): exact duplicates collide on it.
    # COLLATE "C" on PostgreSQL (migration 0012), as external_id: compared as bytes.
    content_hash = models.CharField(max_length=64)
    # NULL, not "", means "no external id": NULLs stay out of the (source, external_id) unique
    # constraint, and the content hash is then the idempotency key.
    external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.UNKNOWN)
    generator_model = models.CharField(max_length=200, blank=True)
    generator_version = models.CharField(max_length=100, blank=True)
    prompt = models.TextField(blank=True)
    sampling_params = models.JSONField(default=dict, blank=True)
    parents = models.ManyToManyField(
        "self", symmetrical=False, related_name="children", blank=True, through="ItemParent"
    )
    generation = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    is_reference = models.BooleanField(
        default=False, help_text="Part of the human reference corpus novelty is measured against."
    )
    # Gold items (known verdicts that measure reviewers) never leave: exports and the feed skip
    # them. Set by review through corpus.services.items.item_gold_set.
    is_gold = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # Why the item is in its state when a rule (not a person) put it there: the auto-reject rule,
    # the scoring error.
    state_reason = models.CharField(max_length=500, blank=True)
    # Review order: higher first. Written by scoring, read by the review queue.
    priority = models.FloatField(default=0.0)
    # The outcome of review, written here by a corpus service so exports and the feed read corpus
    # tables only: when, and by which reviewer ids (never names).
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Not partial: rows without an external id (NULL, and NULLs are distinct) are in it
            # too, so it also serves every lookup by source (a PROTECT check, the foreign key's).
            models.UniqueConstraint(
                fields=["source", "external_id"], name="item_unique_source_external_id"
            ),
            # Items sent without an external id are idempotent on their content: at most one such
            # item per normalized text in a dataset, which also settles two concurrent retries.
            models.UniqueConstraint(
                fields=["dataset", "content_hash"],
                condition=Q(external_id__isnull=True),
                name="item_unique_dataset_hash_without_external_id",
            ),
            models.CheckConstraint(
                condition=Q(state__in=ItemState.values), name="item_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(origin__in=ItemOrigin.values), name="item_origin_valid"
            ),
            models.CheckConstraint(condition=Q(kind__in=ItemKind.values), name="item_kind_valid"),
        ]
        indexes = [
            # On PostgreSQL a hash index on content_hash alone (migration 0012).
            models.Index(fields=["dataset", "content_hash"], name="item_dataset_hash"),
            models.Index(fields=["dataset", "state", "id"], name="item_dataset_state"),
            models.Index(fields=["dataset", "id"], name="item_dataset_id"),
            # The sweep of items stuck in pending (scoring.items_pending_stale) is its only
            # reader: partial, so it holds only pending items, and scoring's pending -> queued
            # update (not HOT: state is indexed) adds no entry to it.
            models.Index(
                fields=["created_at"],
                condition=Q(state="pending"),
                name="item_pending_created",
            ),
            # The review queue: claim and list walk queued items in priority order.
            models.Index(
                fields=["dataset", "-priority", "id"],
                condition=Q(state="queued"),
                name="item_review_queue",
            ),
            # Reference items, a few thousand among millions: the dashboard rollup reads those
            # added since its watermark, the reference statistics and the unscored-reference
            # sweep read them all. Without it each of those read the whole item table (3.4 s
            # a batch at 1M items, so the rollup's first run at 10M did not end in 20 minutes).
            models.Index(
                fields=["dataset", "id"],
                condition=Q(is_reference=True),
                name="item_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} ({self.state})"


class ItemParent(models.Model):
    child = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="parent_links")
    parent = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="child_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["child", "parent"], name="itemparent_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.parent_id} -> {self.child_id}"


class Score(models.Model):
    """The evidence computed for one item by the workers; one row per item, replaced on rescore."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, primary_key=True)
    scorer_version = models.CharField(max_length=32)
    exact_duplicate_of = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    near_duplicate_of = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    near_duplicate_jaccard = models.FloatField(null=True, blank=True)
    near_duplicate_containment = models.FloatField(null=True, blank=True)
    minhash = models.BinaryField(null=True, blank=True)
    lexical = models.JSONField(default=dict, blank=True)
    degenerate = models.BooleanField(default=False)
    degenerate_reason = models.CharField(max_length=200, blank=True)
    detector_name = models.CharField(max_length=64, blank=True)
    detector_version = models.CharField(max_length=64, blank=True)
    detector_probability = models.FloatField(null=True, blank=True)
    # Every detector's verdict, {name: {"version", "probability"}} or {name: {"unsupported": kind}};
    # detector_* above repeats the one the review priority uses.
    detectors = models.JSONField(default=dict, blank=True)
    priority = models.FloatField(default=0.0)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    computed_at = models.DateTimeField(default=timezone.now)
    # The near-duplicate index generation (``NearDupIndexState.generation``) of the batch that
    # scored the item: a batch the index was lost under is found by it and rescored.
    index_generation = models.BigIntegerField(default=0)
    # An auto-reject rule that came to apply while a reviewer held the item under a live claim:
    # shown to the reviewer instead of pulling the item away mid-decision (empty: none).
    rule_flag = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"score of item {self.item_id}"


class NearDuplicate(models.Model):
    """One verified near-duplicate match, stored in both directions (``item`` sees ``other``
    and ``other`` sees ``item``), whichever of the two was scored first: the evidence of an
    item does not depend on the order items were scored in."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="near_duplicates")
    other = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    jaccard = models.FloatField()
    # Share of the smaller text's shingles found in the larger one (a short text pasted whole
    # into a long one has a low Jaccard but containment 1).
    containment = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "other"], name="nearduplicate_unique_pair"),
        ]
        indexes = [models.Index(fields=["other"], name="nearduplicate_other")]

    def __str__(self) -> str:
        return f"{self.item_id} ~ {self.other_id} (J {self.jaccard:.2f})"
