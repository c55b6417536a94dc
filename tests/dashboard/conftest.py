"""A hand-built dataset whose every dashboard figure is known (the numbers are worked out in the
comments), on a fixed day so that day boundaries never move under the tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from corpus.models import Export, FeedKind, Item, Score
from corpus.services.feed import feed_append
from review.models import Decision, GoldItem, ReviewerDay
from tests.factories import ItemFactory, SourceFactory
from tests.review.conftest import add_to_group

# Noon two days ago: recent enough for the page's 60-day window, far enough from midnight that
# no figure changes day whenever the tests run.
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
NOW = DAY + timedelta(hours=1)


def lexical(compression: float, distinct_2: float, repetition: float) -> dict[str, float]:
    return {
        "compression_ratio": compression,
        "distinct_2": distinct_2,
        "repeated_ngram_share": repetition,
    }


def item(dataset: Any, text: str, *, score: dict | None = None, **fields: Any) -> Item:
    fields.setdefault("created_at", DAY)
    made = ItemFactory(dataset=dataset, source=SourceFactory(dataset=dataset), text=text, **fields)
    if score is not None:
        Score.objects.create(item=made, scorer_version="1", **score)
    return made


def vote(item: Item, reviewer: Any, verdict: str, minute: int, **fields: Any) -> Decision:
    return Decision.objects.create(
        item=item,
        dataset=item.dataset,
        reviewer=reviewer,
        verdict=verdict,
        reason="low_quality" if verdict == "reject" else "",
        created_at=DAY + timedelta(minutes=minute),
        **fields,
    )


@pytest.fixture(autouse=True)
def _all_grams(settings):  # type: ignore[no-untyped-def]
    """Count every n-gram (no hash sample), so that the expected coverage is exact."""
    settings.SYNTHGATE_TAIL_SAMPLE = 1


@pytest.fixture
def alice(reviewer):  # type: ignore[no-untyped-def]
    return add_to_group(reviewer, "reviewer")


@pytest.fixture
def bob(reviewer2):  # type: ignore[no-untyped-def]
    return add_to_group(reviewer2, "reviewer")


@pytest.fixture
def board(dataset, alice, bob):  # type: ignore[no-untyped-def]
    """The dataset `demo`:

    reference (3 docs): "alpha beta gamma", "alpha delta epsilon", "alpha beta zeta". Word
    document frequencies: alpha 3 (not rare: above 2), beta 2, gamma/delta/epsilon/zeta 1, so
    the rare reference words are beta, gamma, delta, epsilon, zeta (5).

    approved (via the feed): a1 "beta gamma omega" (synthetic, depth 1, gen-x), a2 "delta omega
    omega" (human, depth 0, no generator), a3 "omega psi" (synthetic, depth 5, gen-y): they
    hold beta, gamma, delta: tail coverage 3/5 = 0.6.
    """
    ds = dataset
    refs = []
    for text in ("alpha beta gamma", "alpha delta epsilon", "alpha beta zeta"):
        refs.append(
            item(
                ds,
                text,
                origin="human",
                is_reference=True,
                state="approved",
                score={"lexical": lexical(2.0, 1.0, 0.0)},
            )
        )
    decided = {"state": "approved", "decided_at": DAY + timedelta(minutes=30)}
    a1 = item(
        ds,
        "beta gamma omega",
        origin="synthetic",
        generation=1,
        generator_model="gen-x",
        **decided,
        score={"lexical": lexical(2.0, 0.9, 0.1), "detector_probability": 0.95},
    )
    a2 = item(
        ds,
        "delta omega omega",
        origin="human",
        generation=0,
        **decided,
        score={"lexical": lexical(3.0, 0.8, 0.2), "detector_probability": 0.05},
    )
    a3 = item(
        ds,
        "omega psi",
        origin="synthetic",
        generation=5,
        generator_model="gen-y",
        **decided,
        score={
            "lexical": lexical(4.0, 0.7, 0.3),
            "detector_probability": 0.15,
            "near_duplicate_of": a2,
            "near_duplicate_jaccard": 0.5,
        },
    )
    with transaction.atomic():
        feed_append(dataset_id=ds.pk, item_ids=[a1.pk, a2.pk, a3.pk], kind=FeedKind.APPROVED)
    q1 = item(
        ds,
        "queued one",
        generator_model="gen-x",
        score={"detector_probability": 0.1, "near_duplicate_of": a1, "near_duplicate_jaccard": 0.9},
    )
    q2 = item(
        ds,
        "queued two",
        generator_model="gen-x",
        score={
            "detector_probability": 1.0,
            "near_duplicate_of": a1,
            "near_duplicate_jaccard": 0.85,
        },
    )
    pending = item(ds, "still pending", state="pending", created_at=DAY - timedelta(minutes=30))
    # created 11:30 on DAY: the backlog is 90 minutes old at NOW (13:00)
    auto = item(ds, "auto rejected", state="auto_rejected", state_reason="degenerate")
    j1 = item(ds, "rejected one", state="rejected", decided_at=DAY + timedelta(minutes=40))
    yesterday = DAY - timedelta(days=1)
    y1 = item(ds, "from yesterday", created_at=yesterday)
    gold = item(ds, "a gold check", created_at=yesterday, is_gold=True)
    GoldItem.objects.create(item=gold, dataset=ds, expected="approve")

    # Agreement: first votes alice, second votes bob.
    #   a1 approve/approve, a2 approve/reject, a3 approve/approve, j1 reject/reject
    #   observed 3/4; alice approves 3/4, bob 2/4: chance 0.75*0.5 + 0.25*0.5 = 0.5
    #   kappa = (0.75 - 0.5) / (1 - 0.5) = 0.5
    for target, first, second in (
        (a1, "approve", "approve"),
        (a2, "approve", "reject"),
        (a3, "approve", "approve"),
        (j1, "reject", "reject"),
    ):
        vote(target, alice, first, 10)
        vote(target, bob, second, 20)
    # Gold: alice right, bob wrong.
    vote(gold, alice, "approve", 11, gold_expected="approve")
    vote(gold, bob, "reject", 21, gold_expected="approve")
    ReviewerDay.objects.create(dataset=ds, reviewer=alice, day=DAY.date(), decided=3)
    ReviewerDay.objects.create(dataset=ds, reviewer=bob, day=DAY.date(), decided=1)
    ReviewerDay.objects.create(dataset=ds, reviewer=alice, day=yesterday.date(), decided=2)
    Export.objects.create(
        dataset=ds,
        status=Export.Status.READY,
        requested_by="test",
        rows_written=4,
        finished_at=DAY,
        manifest={"human_share": 0.5, "synthetic_share": 0.25, "unknown_share": 0.25},
    )
    return {
        "dataset": ds,
        "refs": refs,
        "a1": a1,
        "a2": a2,
        "a3": a3,
        "q1": q1,
        "q2": q2,
        "pending": pending,
        "auto": auto,
        "j1": j1,
        "y1": y1,
        "gold": gold,
    }
