"""Datasets and the sources (producers) within them."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Dataset(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_datasets"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Source(models.Model):
    """A producer within a dataset (a pipeline, a scraper, a reference corpus)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="source_unique_name"),
        ]
        ordering = ["dataset", "name"]

    def __str__(self) -> str:
        return f"{self.dataset.slug}/{self.name}"
