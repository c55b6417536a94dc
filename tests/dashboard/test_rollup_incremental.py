"""The incremental rollup recomputes only the blocks of items that changed, and always ends with
the figures a full recomputation gives.

A dataset goes through what a real one meets, in a seeded random order, through the services
(ingest, scoring with near-copies of earlier items, bulk decisions under a two-approval
consensus, undos, retractions, gold checks, a change of the near-duplicate threshold); after
every step an incremental rollup runs, and its stored figures must equal a recomputation of
every block from the tables. Blocks are 4 ids wide here, so every step touches some blocks and
leaves others stored from earlier runs.
"""

import contextlib
import random
from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone

from corpus.demo.reference import REFERENCE
from corpus.models import AuditEvent, Item, ScoringRules
from corpus.services import scoring
from corpus.services.audit import SYSTEM
from corpus.services.ingest import items_ingest, items_parse
from corpus.services.retractions import item_retract
from dashboard.models import DashboardBlock, DashboardState
from dashboard.services import blocks
from dashboard.services.rollup import (
    _flow,
    approved_snapshot,
    dashboard_rollup,
    figures_from,
    near_duplicate_threshold,
)
from review.models import ReviewPolicy
from review.services.decisions import decision_undo, decisions_bulk
from review.services.gold import gold_mark
from review.services.quotas import ReviewError
from tests.factories import UserFactory
from tests.review.conftest import add_to_group

pytestmark = pytest.mark.django_db

PARAGRAPHS = [text for _, _, text in REFERENCE]


def _edit(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(rng.randint(1, 3)):
        words[rng.randrange(len(words))] = rng.choice(["river", "stone", "lantern", "quietly"])
    return " ".join(words)


def _full(dataset: Any) -> dict[str, Any]:
    """Every block recomputed from the tables, nothing stored: what the figures must be."""
    ids = Item.objects.filter(dataset=dataset).values_list("id", flat=True)
    low, high = min(ids), max(ids)
    threshold = near_duplicate_threshold(dataset)
    computed = blocks.blocks_compute(
        dataset=dataset,
        numbers=list(range(low // blocks.BLOCK, high // blocks.BLOCK + 1)),
        threshold=threshold,
    )
    clusters = {target for figures in computed.values() for target in figures["targets"]}
    return blocks.blocks_shaped(blocks.blocks_total(computed.values()), clusters=len(clusters))


def _shown(dataset: Any, total: dict[str, Any]) -> dict[str, Any]:
    since = timezone.now() - timedelta(days=3)
    threshold = near_duplicate_threshold(dataset)
    return {
        "figures": figures_from(total, dataset=dataset, threshold=threshold),
        "flow": _flow(total, since),
        "snapshot": approved_snapshot(total, dataset=dataset),
    }


class Corpus:
    """The dataset and what the random steps do to it, each through its service."""

    def __init__(self, dataset: Any, rng: random.Random) -> None:
        self.dataset, self.rng = dataset, rng
        self.reviewers = [
            add_to_group(UserFactory(username=name), "reviewer") for name in ("rita", "ravi")
        ]
        self.admin = UserFactory(username="ada")
        self.texts: list[str] = []
        self.n = 0
        ReviewPolicy.objects.create(
            dataset=dataset, consensus_approvals=2, consensus_min_detector=0.0
        )

    def _ids(self, state: str) -> list[int]:
        return list(
            Item.objects.filter(dataset=self.dataset, state=state, is_gold=False)
            .order_by("id")
            .values_list("id", flat=True)
        )

    def ingest(self, reference: bool = False) -> None:
        entries = []
        for _ in range(self.rng.randint(1, 5)):
            if self.texts and self.rng.random() < 0.4:
                text = _edit(self.rng.choice(self.texts), self.rng)  # a near-copy of an earlier one
            else:
                text = PARAGRAPHS[len(self.texts) % len(PARAGRAPHS)]
                if len(self.texts) >= len(PARAGRAPHS):
                    text = f"{text} ({len(self.texts)})"
            self.texts.append(text)
            self.n += 1
            entries.append(
                {
                    "text": text,
                    "origin": self.rng.choice(["synthetic", "human", "unknown"]),
                    "generator_model": self.rng.choice(["gen-a", "gen-b", ""]),
                    "generation": self.rng.randint(0, 6),
                    "external_id": f"e{self.n}",
                }
            )
        with TestCase.captureOnCommitCallbacks(execute=False):
            items_ingest(
                dataset=self.dataset,
                items=items_parse(entries),
                actor=SYSTEM,
                default_source="steps",
                reference=reference,
            )

    def score(self) -> None:
        pending = self._ids(Item.State.PENDING)
        if pending:
            batch = self.rng.sample(pending, self.rng.randint(1, len(pending)))
            scoring.items_score(item_ids=batch)

    def decide(self) -> None:
        queued = self._ids(Item.State.QUEUED)
        if queued:
            verdict = self.rng.choice(["approve", "approve", "reject"])
            decisions_bulk(
                dataset=self.dataset,
                reviewer=self.rng.choice(self.reviewers),
                item_ids=self.rng.sample(queued, self.rng.randint(1, min(4, len(queued)))),
                verdict=verdict,
                reason="low_quality" if verdict == "reject" else "",
            )

    def undo(self) -> None:
        with contextlib.suppress(ReviewError):  # nothing to undo for that reviewer
            decision_undo(dataset=self.dataset, reviewer=self.rng.choice(self.reviewers))

    def retract(self) -> None:
        approved = self._ids(Item.State.APPROVED)
        if approved:
            item_retract(item_id=self.rng.choice(approved), reason="found later", actor=SYSTEM)

    def gold(self) -> None:
        queued = self._ids(Item.State.QUEUED)
        if queued:
            gold_mark(
                actor=self.admin,
                dataset=self.dataset,
                item_id=self.rng.choice(queued),
                expected=self.rng.choice(["approve", "reject"]),
            )


@pytest.fixture
def small_blocks(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(blocks, "BLOCK", 4)
    monkeypatch.setattr(blocks, "CHUNK_IDS", 12)
    monkeypatch.setattr(blocks, "CHUNK_RANGES", 2)


def test_incremental_figures_equal_a_full_recomputation_after_every_step(dataset, small_blocks):
    rng = random.Random(20261207)
    corpus = Corpus(dataset, rng)
    corpus.ingest(reference=True)
    steps = [corpus.ingest, corpus.score, corpus.score, corpus.decide, corpus.decide]
    steps += [corpus.undo, corpus.retract, corpus.gold]
    incremental = 0
    for step in range(60):
        action = rng.choice(steps)
        if step == 40:  # the threshold the figures count against changes: all blocks again
            ScoringRules.objects.update_or_create(
                dataset=dataset, defaults={"near_duplicate_threshold": 0.6}
            )
        action()
        dashboard_rollup(dataset=dataset)
        state = DashboardState.objects.get(pk=dataset.pk)
        expected = _shown(dataset, _full(dataset))
        assert state.figures == expected["figures"], (step, action.__name__)
        assert _shown(dataset, blocks.blocks_sum(dataset=dataset)) == expected, step
        incremental += state.blocks_full_at is not None and step not in (0, 40)
    # the random walk went through every kind of change, and the figures saw them
    actions = set(AuditEvent.objects.filter(dataset=dataset).values_list("action", flat=True))
    assert {"items.scored", "review.decided", "review.undone", "item.retracted"} <= actions
    assert "review.gold_marked" in actions
    figures = DashboardState.objects.get(pk=dataset.pk).figures
    assert figures["agreement"]["items_with_several_votes"] > 0
    assert figures["agreement"]["gold_answered"] >= 0
    assert figures["near_duplicates"]["clusters"] > 0
    assert figures["near_duplicates"]["threshold"] == 0.6
    assert incremental > 40


def test_a_run_recomputes_only_the_blocks_of_items_that_changed(dataset, small_blocks):
    rng = random.Random(7)
    corpus = Corpus(dataset, rng)
    for _ in range(6):
        corpus.ingest()
    scoring.items_score(item_ids=corpus._ids(Item.State.PENDING))
    now = timezone.now()
    threshold = near_duplicate_threshold(dataset)
    first = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now)
    assert first.full and len(first.changed) >= 4
    # nothing changed: nothing recomputed
    again = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now)
    assert (again.full, again.changed) == (False, [])
    # one approval of two needed: its block is recomputed, and nothing shown changed
    target = corpus._ids(Item.State.QUEUED)[-1]
    decisions_bulk(
        dataset=dataset, reviewer=corpus.reviewers[0], item_ids=[target], verdict="approve"
    )
    one = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now)
    assert (one.full, one.changed, one.written) == (False, [target // blocks.BLOCK], 0)
    # a reject settles it: the same block, written
    decisions_bulk(
        dataset=dataset,
        reviewer=corpus.reviewers[1],
        item_ids=[target],
        verdict="reject",
        reason="low_quality",
    )
    two = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now)
    assert (two.changed, two.written) == ([target // blocks.BLOCK], 1)
    # new items: the blocks from the watermark's up
    corpus.ingest()
    top = Item.objects.filter(dataset=dataset).order_by("-id").values_list("id", flat=True)[0]
    new = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now)
    assert new.changed[-1] == top // blocks.BLOCK
    assert len(new.changed) <= 2
    # a day later the safety net recomputes everything, and rewrites nothing that was right
    stored = dict(DashboardBlock.objects.filter(dataset=dataset).values_list("block", "figures"))
    later = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now + timedelta(days=1))
    assert later.full and len(later.changed) >= len(first.changed)
    assert later.written == 0
    assert DashboardBlock.objects.filter(dataset=dataset).count() == later.stored == len(stored)
    # one written by hand behind the services' back is found and put right
    number = next(iter(stored))
    DashboardBlock.objects.filter(dataset=dataset, block=number).update(figures={})
    fixed = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now + timedelta(days=2))
    assert fixed.written == 1
    assert DashboardBlock.objects.get(dataset=dataset, block=number).figures == stored[number]
    # another block size (a new release): everything again, nothing left of the old numbering
    blocks.BLOCK = 8  # restored by the fixture's monkeypatch
    resized = blocks.blocks_update(dataset=dataset, threshold=threshold, now=now)
    assert resized.full
    numbers = set(DashboardBlock.objects.filter(dataset=dataset).values_list("block", flat=True))
    assert numbers == {
        i // 8 for i in Item.objects.filter(dataset=dataset).values_list("id", flat=True)
    }
    state = DashboardState.objects.get(pk=dataset.pk)
    expected = _full(dataset)
    assert blocks.blocks_sum(dataset=dataset) == expected
    assert state.blocks_size == 8
