"""Per-dataset scoring rules and the detector models trained on a dataset's own labels."""

from django.db import models
from django.utils import timezone

from corpus.models.datasets import Dataset


class ScoringRules(models.Model):
    """What the workers do with an item once its evidence is computed. Admins edit these.

    Auto-rejection names the rule on the item (``Item.state_reason``); everything else is queued
    with a review priority (see ``corpus.services.scoring.review_priority``).
    """

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="scoring_rules")
    reject_exact_duplicates = models.BooleanField(
        default=True, help_text="Auto-reject an item whose normalized text already exists."
    )
    reject_near_duplicates = models.BooleanField(
        default=True,
        help_text="Auto-reject a near-duplicate of an approved or reference item above the "
        "threshold.",
    )
    near_duplicate_threshold = models.FloatField(
        default=0.5,
        help_text="Exact Jaccard on word-bigram shingles (code: token trigrams), 0 to 1.",
    )
    report_threshold = models.FloatField(
        default=0.3,
        help_text="Nearest matches at or above this Jaccard are shown to reviewers as evidence.",
    )
    reject_degenerate = models.BooleanField(
        default=True, help_text="Auto-reject degenerate (repetitive, looping) text."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "scoring rules"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(near_duplicate_threshold__gte=0.0)
                & models.Q(near_duplicate_threshold__lte=1.0)
                & models.Q(report_threshold__gte=0.0)
                & models.Q(report_threshold__lte=1.0),
                name="scoringrules_thresholds_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"scoring rules of {self.dataset}"


class NearDupIndexState(models.Model):
    """What the near-duplicate index in Redis should reflect, per dataset.

    ``generation`` counts the scoring batches committed (each adds its items to the index);
    Redis holds the generation its index reflects beside the buckets. A worker that finds the
    Redis marker missing or behind records why in ``degraded_reason``, rebuilds the index from
    the database and rescores the items of every batch after ``confirmed`` (the last generation
    known to have been whole in Redis), then clears the reason.
    """

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    generation = models.BigIntegerField(default=0)
    confirmed = models.BigIntegerField(default=0)
    degraded_reason = models.CharField(max_length=300, blank=True)
    degraded_since = models.DateTimeField(null=True, blank=True)
    healed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"near-duplicate index of {self.dataset_id} at generation {self.generation}"


class DetectorModel(models.Model):
    """A learned detector retrained on one dataset's labels. The weights live in the database
    so every worker on every host loads the same model."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="detector_models")
    name = models.CharField(max_length=64, default="learned")
    version = models.CharField(max_length=64)
    weights = models.BinaryField()
    auroc = models.FloatField(null=True, blank=True)
    n_train = models.PositiveIntegerField(default=0)
    n_test = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "name"],
                condition=models.Q(is_active=True),
                name="detectormodel_one_active_per_dataset",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} for {self.dataset}"
