"""Two scorers racing on one dataset (PostgreSQL and Redis, real commits, two connections).

The per-dataset scoring lock must serialize everything from the index query to the index
insert: a batch scored concurrently with another must still find its near-copies in the other.
"""

import threading
import time

import pytest
from django.db import connection, connections

from corpus.models import AuditEvent, Item, Score
from corpus.services import near_dup_index, scoring
from tests.pipeline.test_scoring_golden import _edit, _ingest
from tests.pipeline.test_scoring_pipeline import _varied

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
    ),
]


def _score_concurrently(batches: list[list[int]], monkeypatch) -> list[dict[str, list[int]]]:
    """Score each batch in its own thread (own database connection), all started together.

    Every index query is followed by a pause, so that without the lock each scorer would query
    the index before any other had indexed its batch.
    """
    real = near_dup_index.candidates_and_add
    queried = []

    def slow_candidates(*args, **kwargs):
        found = real(*args, **kwargs)
        queried.append(time.monotonic())
        time.sleep(0.5)
        return found

    monkeypatch.setattr(near_dup_index, "candidates_and_add", slow_candidates)
    start = threading.Barrier(len(batches))
    outcomes: list = [None] * len(batches)
    errors: list[BaseException] = []

    def run(n: int, ids: list[int]) -> None:
        try:
            start.wait(timeout=30)
            outcomes[n] = scoring.items_score(item_ids=ids)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, ids)) for n, ids in enumerate(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(queried) == len(batches)
    return outcomes


def test_racing_batches_of_one_dataset_find_each_others_near_duplicates(dataset, monkeypatch):
    # given two batches whose items are pairwise near-copies of each other
    originals = [_varied(1000 + i, words=150) for i in range(6)]
    batch_a = _ingest(dataset, [{"text": t, "origin": "synthetic"} for t in originals])
    batch_b = _ingest(
        dataset,
        [{"text": _edit(t, i, 2), "origin": "synthetic"} for i, t in enumerate(originals)],
    )
    # when two scorers take them at the same time
    outcomes = _score_concurrently([batch_a, batch_b], monkeypatch)
    # then whichever batch went first, every pair is found and stored both ways, the earlier
    # ingested of each pair (batch a) stays queued and the later one is auto-rejected naming it
    moved = outcomes[0]["auto_rejected"] + outcomes[1]["auto_rejected"]
    moved += outcomes[0]["reapplied"] + outcomes[1]["reapplied"]
    assert sorted(moved) == sorted(batch_b)
    states = dict(Item.objects.filter(id__in=batch_a + batch_b).values_list("id", "state"))
    scores = {s.item_id: s for s in Score.objects.filter(item_id__in=batch_a + batch_b)}
    for a, b in zip(batch_a, batch_b, strict=True):
        assert (states[a], states[b]) == ("queued", "auto_rejected")
        assert f"with earlier item {a} " in Item.objects.get(pk=b).state_reason
        assert (scores[a].near_duplicate_of_id, scores[b].near_duplicate_of_id) == (b, a)


def test_overlapping_batches_move_each_item_once(dataset, monkeypatch):
    # given one batch sent twice, the second time with more items (a redelivered message)
    texts = [_varied(1100 + i, words=120) for i in range(8)]
    ids = _ingest(dataset, [{"text": t, "origin": "synthetic"} for t in texts])
    # when two scorers take the overlapping batches at the same time
    outcomes = _score_concurrently([ids[:5], ids], monkeypatch)
    # then every item left pending exactly once, and the audit trail says so
    moved = outcomes[0]["queued"] + outcomes[1]["queued"]
    assert sorted(moved) == sorted(ids)
    events = AuditEvent.objects.filter(action="items.scored")
    assert sorted(i for e in events for i in e.payload["queued"]) == sorted(ids)
    assert set(Item.objects.filter(id__in=ids).values_list("state", flat=True)) == {"queued"}
    assert Score.objects.filter(item_id__in=ids, error="").count() == len(ids)
