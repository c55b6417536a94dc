"""Losing Redis mid-scoring does not let near-copies through (issue 14, point 1).

2,000 reference paragraphs and 320 near-copies of them are scored in batches of 100, in a
shuffled order (many copies are scored before their paragraph), while Redis is flushed three
times: during one batch's index query, between two batches, and after the last batch when
nothing is being scored. No command is run: the scoring batches themselves and the periodic
sweep (what the beat schedule runs) heal the index. Every near-copy must end auto-rejected.
"""

import random
import time

import pytest
from django.test import TestCase

from corpus.models import AuditEvent, Item, NearDupIndexState
from corpus.redis_client import redis_client
from corpus.services import near_dup_index, scoring
from corpus.services.audit import SYSTEM
from corpus.services.ingest import items_ingest, items_parse
from corpus.tasks import items_sweep_pending_task
from tests.pipeline.test_scoring_pipeline import _varied

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

N_REFERENCE = 2000
N_COPIES = 320
BATCH = 100


def _copy(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(round(0.05 * len(words))):  # 5% of the words replaced
        words[rng.randrange(len(words))] = f"edit{rng.randrange(10_000)}"
    return " ".join(words)


def _ingest(dataset, texts: list[str], *, reference: bool) -> list[int]:
    ids = []
    for start in range(0, len(texts), 1000):
        with TestCase.captureOnCommitCallbacks(execute=False):
            outcome = items_ingest(
                dataset=dataset,
                items=items_parse(
                    [{"text": t, "origin": "human"} for t in texts[start : start + 1000]]
                ),
                actor=SYSTEM,
                default_source="loss",
                reference=reference,
            )
        ids += [r.id for r in outcome.results]
    return ids


def test_every_near_copy_ends_auto_rejected_when_redis_is_flushed_mid_scoring(dataset, monkeypatch):
    started = time.monotonic()
    rng = random.Random(14)
    originals = [_varied(100_000 + i, words=150) for i in range(N_REFERENCE)]
    refs = _ingest(dataset, originals, reference=True)
    copied = rng.sample(range(N_REFERENCE), N_COPIES)
    copies = _ingest(dataset, [_copy(originals[i], rng) for i in copied], reference=False)
    order = refs + copies
    rng.shuffle(order)
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]

    # Redis is flushed while the 8th batch queries the index ...
    real_candidates = near_dup_index.candidates_and_add
    queries = []

    def candidates(*args, **kwargs):
        queries.append(1)
        if len(queries) == 8:
            redis_client().flushdb()
        return real_candidates(*args, **kwargs)

    monkeypatch.setattr(near_dup_index, "candidates_and_add", candidates)
    for n, batch in enumerate(batches):
        if n == 15:  # ... and again between two batches
            redis_client().flushdb()
        with TestCase.captureOnCommitCallbacks(execute=True):
            scoring.items_score(item_ids=batch)
    redis_client().flushdb()  # ... and once more when nothing is being scored
    items_sweep_pending_task()  # the beat schedule's periodic sweep

    states = dict(Item.objects.filter(id__in=copies).values_list("id", "state"))
    let_through = [i for i, state in states.items() if state != "auto_rejected"]
    assert not let_through, f"{len(let_through)} of {N_COPIES} near-copies not rejected"
    reasons = Item.objects.filter(id__in=copies).values_list("state_reason", flat=True)
    assert all("with reference item" in r for r in reasons)
    # the index is whole again, as the database counts it, and /healthz would say so
    state = NearDupIndexState.objects.get(dataset=dataset)
    assert near_dup_index.index_marker_get(dataset.pk) == state.generation
    assert not state.degraded_reason
    assert near_dup_index.index_health() == {"ok": True}
    heals = AuditEvent.objects.filter(action="index.healed").count()
    assert heals >= 3
    assert time.monotonic() - started < 240
