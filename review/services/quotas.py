"""Daily decision quotas per reviewer and dataset (the counting lives in ``review.selectors``)."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from corpus.models import Dataset
from corpus.services.audit import actor_for_user, audit_append, audit_lock
from review.models import ReviewerQuota
from review.services import ReviewError

MAX_DAILY_LIMIT = 100_000


@transaction.atomic
def quota_set(
    *, actor: Any, dataset: Dataset, reviewer: User | None, daily_limit: int | None
) -> ReviewerQuota | None:
    """Set (or with ``daily_limit=None`` remove) the daily limit of one reviewer, or the dataset
    default when ``reviewer`` is None. Returns the row, None when removed. No change, no event."""
    if daily_limit is not None and not 1 <= daily_limit <= MAX_DAILY_LIMIT:
        raise ReviewError(
            f"A daily limit is between 1 and {MAX_DAILY_LIMIT}; leave it empty for no limit.",
            field="daily_limit",
        )
    if reviewer is not None and not dataset.reviewers.filter(pk=reviewer.pk).exists():
        raise ReviewError(
            f"{reviewer.get_username()} does not review {dataset.slug}.", field="reviewer"
        )
    audit_lock()  # lock order: the audit chain first, then rows
    row = (
        ReviewerQuota.objects.select_for_update().filter(dataset=dataset, reviewer=reviewer).first()
    )
    before = row.daily_limit if row is not None else None
    if before == daily_limit:
        return row
    if daily_limit is None:
        assert row is not None
        row.delete()
        row = None
    elif row is None:
        row = ReviewerQuota.objects.create(
            dataset=dataset, reviewer=reviewer, daily_limit=daily_limit
        )
    else:
        row.daily_limit = daily_limit
        row.updated_at = timezone.now()
        row.save(update_fields=["daily_limit", "updated_at"])
    audit_append(
        actor=actor_for_user(actor),
        action="review.quota_changed",
        object_type="dataset",
        object_id=dataset.slug,
        dataset=dataset,
        payload={
            "reviewer": reviewer.pk if reviewer is not None else None,
            "before": before,
            "after": daily_limit,
        },
    )
    return row
