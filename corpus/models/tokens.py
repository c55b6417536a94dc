"""API tokens for pipelines."""

import hashlib

from django.db import models
from django.utils import timezone

from corpus.models.datasets import Dataset


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        PRODUCE = "produce"
        CONSUME = "consume"
        ADMIN = "admin"

    name = models.CharField(max_length=200)
    # Only the sha256 of the key is stored; the key itself is shown once, at creation.
    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=12)
    scopes = models.JSONField(default=list)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def can_access(self, dataset: Dataset) -> bool:
        return self.dataset_id is None or self.dataset_id == dataset.pk
