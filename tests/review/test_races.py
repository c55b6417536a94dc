"""Concurrency on PostgreSQL: many reviewers claiming and deciding at once, each in its own
thread and database connection."""

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from corpus.models import Item
from review.models import Claim, Decision, ReviewPolicy
from review.services.decisions import decision_record, decisions_bulk
from review.services.queue import item_claim
from tests.factories import UserFactory
from tests.review.conftest import add_to_group, make_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and SKIP LOCKED need PostgreSQL")


def _run(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run each callable in its own thread, all released at once; re-raise the first error."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


def _reviewers(dataset: Any, n: int) -> list[Any]:
    users = [add_to_group(UserFactory(username=f"r{i}"), "reviewer") for i in range(n)]
    dataset.reviewers.add(*users)
    return users


def test_simultaneous_claims_never_share_an_item(dataset):
    users = _reviewers(dataset, 10)
    for i in range(10):
        make_item(dataset, priority=float(i % 3))  # ties: everyone wants the same rows first

    outcomes = _run([lambda u=u: item_claim(dataset=dataset, reviewer=u) for u in users])

    claimed = [o.claim.item_id for o in outcomes]
    assert len(set(claimed)) == 10
    assert Claim.objects.count() == 10


def test_reviewers_racing_through_the_queue_decide_each_item_once(dataset):
    users = _reviewers(dataset, 6)
    items = [make_item(dataset, priority=float(i % 4)) for i in range(60)]

    def work(user: Any) -> list[int]:
        seen = []
        while True:
            outcome = item_claim(dataset=dataset, reviewer=user)
            if outcome.claim is None:
                return seen
            seen.append(outcome.claim.item_id)
            decision_record(
                dataset=dataset, reviewer=user, item_id=outcome.claim.item_id, verdict="approve"
            )

    per_user = _run([lambda u=u: work(u) for u in users])

    claimed = Counter(i for seen in per_user for i in seen)
    assert sorted(claimed) == sorted(item.pk for item in items)
    assert set(claimed.values()) == {1}  # nobody ever got an item someone else had
    assert Decision.objects.count() == 60
    assert not Item.objects.filter(state=Item.State.QUEUED).exists()
    assert sum(1 for seen in per_user if seen) > 1  # the work really was shared


def test_concurrent_votes_on_a_consensus_item_are_counted_together(dataset):
    ReviewPolicy.objects.create(dataset=dataset, consensus_approvals=2, consensus_min_generation=0)
    users = _reviewers(dataset, 2)
    for _round in range(10):
        item = make_item(dataset)

        outcomes = _run(
            [
                lambda u=u, i=item.pk: decisions_bulk(
                    dataset=dataset, reviewer=u, item_ids=[i], verdict="approve"
                )
                for u in users
            ]
        )

        approvals = Decision.objects.filter(item=item, undone_at__isnull=True).count()
        state = Item.objects.get(pk=item.pk).state
        # Either both votes were counted and settled it, or one was left out (the row was
        # locked by the other) and it waits for a second approval; never two votes, still open.
        assert (approvals, state) in {(2, "approved"), (1, "queued")}
        left_out = sum(len(o.left_out.get("busy", [])) for o in outcomes)
        assert approvals + left_out == 2
