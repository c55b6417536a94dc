"""Near-duplicate evidence does not depend on the order items are scored in, nor on the worker.

The same items, ingested in the same order (ids decide which of two new near-copies survives),
are scored in many random orders and random batches by two scorers; every run must end with the
same states, reasons, nearest matches, priorities and stored matches. On PostgreSQL the two
scorers run at the same time, each in its own thread with its own connection (as two workers
would); SQLite allows one writer, so there the two scorers' batches interleave at random.
"""

import random
import re
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import TestCase

from corpus.demo.reference import REFERENCE
from corpus.models import Item, NearDuplicate, Score
from corpus.services import scoring
from corpus.services.audit import SYSTEM
from corpus.services.ingest import items_ingest, items_parse
from tests.factories import DatasetFactory

CONCURRENT = connection.vendor == "postgresql"
pytestmark = pytest.mark.django_db(transaction=CONCURRENT)

RUNS = 6
PARAGRAPHS = [text for _, _, text in REFERENCE]


def _edit(text: str, seed: int, share: float) -> str:
    """Replace, insert or delete about ``share`` of the words (seeded)."""
    rng = random.Random(seed)
    words = text.split()
    vocab = " ".join(PARAGRAPHS[20:]).split()
    for _ in range(max(1, round(share * len(words)))):
        op, at = rng.choice("rid"), rng.randrange(len(words))
        if op == "r":
            words[at] = rng.choice(vocab)
        elif op == "i":
            words.insert(at, rng.choice(vocab))
        elif len(words) > 1:
            del words[at]
    return " ".join(words)


# (label, text) in ingest order; the first four are reference paragraphs.
REFERENCE_ITEMS = [(f"ref{n}", PARAGRAPHS[n]) for n in range(4)]
ITEMS = [
    ("ref0_word", _edit(PARAGRAPHS[0], 1, 0.01)),  # a one-word edit of a reference paragraph
    ("ref1_tenth", _edit(PARAGRAPHS[1], 2, 0.10)),
    ("ref2_far", _edit(PARAGRAPHS[2], 3, 0.45)),  # evidence below the rule, or nothing
    ("new5", PARAGRAPHS[5]),  # a new paragraph and a chain of near-copies of it
    ("new5_a", _edit(PARAGRAPHS[5], 4, 0.02)),
    ("new5_b", _edit(PARAGRAPHS[5], 5, 0.08)),
    ("new5_a_a", _edit(_edit(PARAGRAPHS[5], 4, 0.02), 6, 0.05)),
    ("new6", PARAGRAPHS[6]),
    ("new7", PARAGRAPHS[7]),
    ("new7_a", _edit(PARAGRAPHS[7], 7, 0.05)),
    ("new8", PARAGRAPHS[8]),
    ("new8_upper", "  " + PARAGRAPHS[8].upper()),  # exact duplicate once normalized
    ("loop", "the model keeps saying the same thing " * 40),
    ("pasted", PARAGRAPHS[9] + " " + _edit(PARAGRAPHS[3], 8, 0.02)),  # a reference pasted in
]


def _ingest_all(slug: str) -> dict[int, str]:
    dataset = DatasetFactory(slug=slug)
    labels: dict[int, str] = {}
    for reference, entries in ((True, REFERENCE_ITEMS), (False, ITEMS)):
        with TestCase.captureOnCommitCallbacks(execute=False):
            outcome = items_ingest(
                dataset=dataset,
                items=items_parse(
                    [{"text": t, "origin": "synthetic", "external_id": lab} for lab, t in entries]
                ),
                actor=SYSTEM,
                default_source="order",
                reference=reference,
            )
        labels.update({r.id: label for r, (label, _) in zip(outcome.results, entries, strict=True)})
    return labels


def _schedule(rng: random.Random, ids: list[int]) -> list[list[list[int]]]:
    """The items in a random order, cut into random batches, dealt to two scorers at random."""
    order = ids[:]
    rng.shuffle(order)
    workers: list[list[list[int]]] = [[], []]
    while order:
        size = rng.randint(1, 5)
        workers[rng.randrange(2)].append(order[:size])
        order = order[size:]
    return workers


def _run(workers: list[list[list[int]]], rng: random.Random) -> None:
    if not CONCURRENT:
        queues = [list(w) for w in workers]
        while any(queues):
            queue = rng.choice([q for q in queues if q])
            with TestCase.captureOnCommitCallbacks(execute=True):
                scoring.items_score(item_ids=queue.pop(0))
        return
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def scorer(batches: list[list[int]]) -> None:
        try:
            start.wait(timeout=30)
            for batch in batches:
                scoring.items_score(item_ids=batch)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scorer, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def _snapshot(labels: dict[int, str]) -> dict[str, Any]:
    def lab(i: int | None) -> str | None:
        return None if i is None else labels[i]

    def relabel(text: str) -> str:
        return re.sub(r"item (\d+)", lambda m: f"item {labels[int(m[1])]}", text)

    scores = {s.item_id: s for s in Score.objects.filter(item_id__in=labels)}
    matches: dict[int, list[tuple[Any, ...]]] = {i: [] for i in labels}
    for m in NearDuplicate.objects.filter(item_id__in=labels):
        matches[m.item_id].append((lab(m.other_id), m.jaccard, m.containment))
    out = {}
    for item in Item.objects.filter(id__in=labels):
        s = scores[item.pk]
        out[labels[item.pk]] = {
            "state": item.state,
            "reason": relabel(item.state_reason),
            "priority": item.priority if item.state == Item.State.QUEUED else None,
            "exact_duplicate_of": lab(s.exact_duplicate_of_id),
            "near_duplicate_of": lab(s.near_duplicate_of_id),
            "jaccard": s.near_duplicate_jaccard,
            "containment": s.near_duplicate_containment,
            "matches": sorted(matches[item.pk]),
            "error": s.error,
        }
    return out


def test_final_states_and_evidence_do_not_depend_on_scoring_order_or_worker():
    rng = random.Random(20261207)
    snapshots = []
    for run in range(RUNS):
        labels = _ingest_all(f"order-{run}")
        _run(_schedule(rng, sorted(labels)), rng)
        snapshots.append(_snapshot(labels))
    first = snapshots[0]
    for run, snap in enumerate(snapshots[1:], start=1):
        for label in first:
            assert snap[label] == first[label], (run, label)
    # and the outcome is the one the rules promise, not merely a stable one
    assert first["ref0_word"]["state"] == "auto_rejected"
    assert "with reference item ref0 " in first["ref0_word"]["reason"]
    assert first["ref1_tenth"]["state"] == "auto_rejected"
    assert first["new5"]["state"] == "queued"  # the earliest of its cluster survives
    for copy in ("new5_a", "new5_b", "new5_a_a"):
        assert first[copy]["state"] == "auto_rejected", copy
        assert "with earlier item new5" in first[copy]["reason"], first[copy]["reason"]
    assert first["new7_a"]["reason"].startswith("near_duplicate: Jaccard")
    assert first["new8_upper"]["reason"].startswith("exact_duplicate")
    assert first["loop"]["reason"].startswith("degenerate")
    # matches are stored both ways: the reference paragraph sees its copy too
    assert "ref0_word" in {m[0] for m in first["ref0"]["matches"]}
    assert first["ref0"]["near_duplicate_of"] == "ref0_word"
    # a paragraph pasted into a longer text: Jaccard low, containment high
    pasted = {m[0]: m for m in first["pasted"]["matches"]}
    if "ref3" in pasted:
        _, jaccard, containment = pasted["ref3"]
        assert containment > 0.9 > jaccard
