"""Review fixtures: the personas with their roles, a dataset with scored queued items, and
logged-in clients."""

from typing import Any

import pytest
from django.contrib.auth.models import Group

from corpus.models import Item, Score
from tests.factories import ItemFactory, SourceFactory, UserFactory


def add_to_group(user: Any, name: str) -> Any:
    group, _ = Group.objects.get_or_create(name=name)
    user.groups.add(group)
    return user


@pytest.fixture
def alice(reviewer):
    """A reviewer of `demo`."""
    return add_to_group(reviewer, "reviewer")


@pytest.fixture
def bob(reviewer2):
    """A second reviewer of `demo`."""
    return add_to_group(reviewer2, "reviewer")


@pytest.fixture
def charlie(outsider):
    """Has the reviewer role but reviews no dataset."""
    return add_to_group(outsider, "reviewer")


@pytest.fixture
def lead(db):
    """An admin through the `admin` group (not a superuser)."""
    return add_to_group(UserFactory(username="lead"), "admin")


@pytest.fixture
def review_dataset(dataset, alice, bob):
    return dataset


def make_item(
    dataset: Any, *, priority: float = 0.0, score: dict | None = None, **fields: Any
) -> Item:
    item = ItemFactory(
        dataset=dataset, source=SourceFactory(dataset=dataset), priority=priority, **fields
    )
    if score is not None:
        Score.objects.create(item=item, scorer_version="1", **score)
    return item


@pytest.fixture
def queued(review_dataset):
    """Five queued items, priorities 5 (first in the queue) down to 1."""
    return [make_item(review_dataset, priority=float(p)) for p in (5, 4, 3, 2, 1)]


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def login(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def many_items(dataset: Any, n: int, **fields: Any) -> list[Item]:
    """n items of `dataset` in one source, bulk-created; a callable field value is called with
    the item's index."""
    source = SourceFactory(dataset=dataset, name="many")
    return Item.objects.bulk_create(
        ItemFactory.build(
            dataset=dataset,
            source=source,
            content_hash=f"many-{i}",
            **{k: (v(i) if callable(v) else v) for k, v in fields.items()},
        )
        for i in range(n)
    )


def votes_after_stale_statistics(
    dataset: Any, *, before: tuple[Any, list[Item]], after: tuple[Any, list[Item]]
) -> None:
    """Approvals by `before`'s reviewer on its items, ANALYZE of the decisions (PostgreSQL),
    then approvals by `after`'s reviewer on its items: statistics that know nothing of the
    second reviewer's history, as between two ANALYZEs."""
    from django.db import connection

    from review.models import Decision

    def votes(reviewer: Any, items: list[Item]) -> None:
        Decision.objects.bulk_create(
            Decision(item=item, dataset=dataset, reviewer=reviewer, verdict="approve")
            for item in items
        )

    votes(*before)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Decision._meta.db_table}")
    votes(*after)
