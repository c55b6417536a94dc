"""Datasets and their reviewers."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from corpus.models import Dataset
from corpus.services.audit import audit_append


class DatasetError(ValueError):
    """Bad input for a dataset operation; the message is meant for the user."""


@transaction.atomic
def dataset_create(
    *, actor: str, slug: str, name: str, description: str = "", reviewers: Iterable[str] = ()
) -> Dataset:
    if Dataset.objects.filter(slug=slug).exists():
        raise DatasetError(f"dataset '{slug}' already exists")
    usernames = list(reviewers)
    users = list(get_user_model().objects.filter(username__in=usernames))
    missing = sorted(set(usernames) - {u.get_username() for u in users})
    if missing:
        raise DatasetError(f"no such user(s): {', '.join(missing)}")
    try:
        # A savepoint, so a concurrent create of the same slug fails cleanly here (the unique
        # constraint decides) and not later as a broken transaction.
        with transaction.atomic():
            dataset = Dataset.objects.create(slug=slug, name=name, description=description)
    except IntegrityError:
        raise DatasetError(f"dataset '{slug}' already exists") from None
    dataset.reviewers.set(users)
    audit_append(
        actor=actor,
        action="dataset.created",
        object_type="dataset",
        object_id=slug,
        dataset=dataset,
        payload={"name": name, "reviewers": sorted(u.pk for u in users)},
    )
    return dataset
