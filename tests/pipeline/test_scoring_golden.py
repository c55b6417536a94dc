"""Pins what scoring stores for a mixed batch, so that making the pipeline faster cannot change
an item's evidence or its resulting state.

The expected values in ``data/golden_batch.json`` were first recorded with the scorer before
the pipeline was reworked for throughput (COPY-based ``Score`` write, one Redis script per batch,
shared band keys), and re-recorded deliberately for SCORER_VERSION 2 (word-bigram shingles,
32 x 4 bands, matches stored both ways, the earlier-ingested survivor rule, thresholds 0.5 and
0.3). Item ids differ between runs and databases, so ids are replaced by the
item's label everywhere (evidence, state reasons, the audit payload). Floats are compared to
1e-9 relative: exact on one machine, and immune to last-bit differences of another CPU's BLAS.

If a change is *meant* to alter stored evidence, bump ``SCORER_VERSION`` and regenerate the
file (``SYNTHGATE_GOLDEN_WRITE=1 pytest tests/pipeline/test_scoring_golden.py``), saying why in
the commit.
"""

import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import TestCase

from corpus.models import AuditEvent, Item, NearDuplicate, Score
from corpus.scoring import lsh, minhash
from corpus.services import near_dup_index, scoring
from corpus.services.audit import SYSTEM
from corpus.services.ingest import items_ingest, items_parse
from tests.pipeline.test_scoring_pipeline import TOPICS, _varied

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).parent / "data" / "golden_batch.json"


def _ingest(dataset, raw: list[dict[str, Any]], *, reference=False, source="golden") -> list[int]:
    with TestCase.captureOnCommitCallbacks(execute=False):
        outcome = items_ingest(
            dataset=dataset,
            items=items_parse(raw),
            actor=SYSTEM,
            default_source=source,
            reference=reference,
        )
    return [r.id for r in outcome.results]


def _score(ids: list[int]) -> dict[str, list[int]]:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return scoring.items_score(item_ids=ids)


def _edit(text: str, seed: int, changes: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = f"edit{rng.randrange(1000)}"
    return " ".join(words)


def build_and_score(dataset) -> tuple[dict[int, str], dict[str, list[int]]]:
    """Score a reference corpus, a first queued batch, then the pinned batch. Returns the label
    of every item id and the pinned batch's outcome."""
    labels: dict[int, str] = {}
    ref_texts = [_varied(500 + i, words=220) for i in range(3)]
    refs = _ingest(
        dataset, [{"text": t, "origin": "human"} for t in ref_texts], reference=True, source="ref"
    )
    labels.update({i: f"ref{n}" for n, i in enumerate(refs)})
    _score(refs)

    first_texts = [_varied(600 + i, words=180) for i in range(4)]
    first = _ingest(dataset, [{"text": t, "origin": "synthetic"} for t in first_texts])
    labels.update({i: f"first{n}" for n, i in enumerate(first)})
    _score(first)

    rng = random.Random(42)
    inner = _varied(700, words=200)
    raw: list[tuple[str, dict[str, Any]]] = [
        *[(f"varied{n}", {"text": _varied(800 + n, words=60 + 13 * n)}) for n in range(16)],
        ("near_ref", {"text": _edit(ref_texts[0], 1, 3)}),
        ("far_ref", {"text": _edit(ref_texts[1], 2, 40)}),
        ("near_queued", {"text": _edit(first_texts[0], 3, 4)}),
        ("exact_dup", {"text": "  " + first_texts[1].upper(), "external_id": "dup-1"}),
        ("inner_a", {"text": inner}),
        ("inner_b", {"text": _edit(inner, 4, 2)}),
        ("inner_c", {"text": _edit(inner, 5, 30)}),
        ("looping", {"text": "the model keeps saying the same thing " * 40}),
        ("padded", {"text": "ok " * 300 + "fine"}),
        ("short", {"text": "Hi there"}),
        ("tiny", {"text": "abc"}),
        ("unicode", {"text": "Ｆｕｌｌ-width Straße café naïve coöperate " * 6 + "終わり"}),
        ("deep_unknown", {"text": _varied(900, words=90), "origin": "unknown", "generation": 3}),
        ("human", {"text": " ".join(TOPICS), "origin": "human"}),
        (
            "chat",
            {
                "kind": "chat",
                "messages": [
                    {"role": "system", "content": "Be concise."},
                    {"role": "user", "content": "Tell me about rivers."},
                    {"role": "assistant", "content": _varied(901, words=80)},
                ],
            },
        ),
        (
            "code",
            {
                "kind": "code",
                "language": "python",
                "text": "\n".join(
                    f"def f_{i}(x):\n    return x * {i} + {rng.randrange(100)}" for i in range(12)
                ),
            },
        ),
        (
            "code_loop",
            {
                "kind": "code",
                "language": "python",
                "text": "for row in rows:\n    total += compute_value(row)\n    print(total)\n" * 6,
            },
        ),
    ]
    items = []
    for _, entry in raw:
        entry = {"origin": "synthetic", **entry}
        items.append(entry)
    batch = _ingest(dataset, items, source="batch")
    labels.update({i: label for i, (label, _) in zip(batch, raw, strict=True)})
    # evidence from an older scorer is recomputed beside the new items, whatever their state
    Score.objects.filter(item_id__in=[first[2], refs[2]]).update(scorer_version="0")
    outcome = _score([first[2], refs[2], *batch])
    return labels, outcome


def _relabel(value: Any, labels: dict[int, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"item (\d+)", lambda m: f"item {labels.get(int(m[1]), m[1])}", value)
    if isinstance(value, dict):
        return {_relabel(k, labels): _relabel(v, labels) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(v, labels) for v in value]
    return value


def snapshot(labels: dict[int, str], outcome: dict[str, list[int]]) -> dict[str, Any]:
    def lab(i: int | None) -> str | None:
        return None if i is None else labels.get(i, f"?{i}")

    by_label: dict[str, Any] = {}
    scores = {s.item_id: s for s in Score.objects.filter(item_id__in=labels)}
    for item in Item.objects.filter(id__in=labels).order_by("id"):
        s = scores[item.pk]
        sig = bytes(s.minhash) if s.minhash is not None else b""
        keys = lsh.band_keys(minhash.from_bytes(sig)) if sig else []
        indexed = item.pk in near_dup_index.candidates_many(item.dataset_id, [keys])[0]
        by_label[labels[item.pk]] = {
            "state": item.state,
            "state_reason": _relabel(item.state_reason, labels),
            "priority": item.priority,
            "indexed": indexed,
            "score": {
                "scorer_version": s.scorer_version,
                "exact_duplicate_of": lab(s.exact_duplicate_of_id),
                "near_duplicate_of": lab(s.near_duplicate_of_id),
                "near_duplicate_jaccard": s.near_duplicate_jaccard,
                "near_duplicate_containment": s.near_duplicate_containment,
                "matches": sorted(
                    [lab(m.other_id), m.jaccard, m.containment]
                    for m in NearDuplicate.objects.filter(item_id=item.pk)
                ),
                "rule_flag": s.rule_flag,
                "minhash_sha256": hashlib.sha256(sig).hexdigest(),
                "lexical": s.lexical,
                "degenerate": s.degenerate,
                "degenerate_reason": s.degenerate_reason,
                "detector_name": s.detector_name,
                "detector_version": s.detector_version,
                "detector_probability": s.detector_probability,
                "detectors": s.detectors,
                "priority": s.priority,
                "attempts": s.attempts,
                "error": s.error,
            },
        }
    event = AuditEvent.objects.filter(action="items.scored").order_by("-seq").first()
    payload = dict(event.payload)
    payload["queued"] = sorted(lab(i) for i in payload["queued"])
    payload["auto_rejected"] = {
        lab(int(k)): _relabel(v, labels) for k, v in payload["auto_rejected"].items()
    }
    payload["rescored"] = sorted(lab(i) for i in payload["rescored"])
    payload["matched"] = sorted(lab(i) for i in payload["matched"])
    for key in ("reapplied", "flagged", "reasons"):
        payload[key] = {lab(int(k)): _relabel(v, labels) for k, v in payload[key].items()}
    return {
        "items": by_label,
        "outcome": {k: sorted(lab(i) for i in v) for k, v in outcome.items()},
        "audit_payload": payload,
    }


def _assert_same(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, float) and isinstance(actual, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert sorted(actual) == sorted(expected), path
        for key in expected:
            _assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(actual) == len(expected), path
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{path}[{n}]")
    else:
        assert actual == expected, path


def test_a_mixed_batch_gets_exactly_the_pinned_evidence_and_states(dataset):
    # given a reference corpus and a queued first batch, when a mixed batch is scored
    labels, outcome = build_and_score(dataset)
    actual = json.loads(json.dumps(snapshot(labels, outcome)))
    if os.environ.get("SYNTHGATE_GOLDEN_WRITE"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    # then every item's evidence, state and the audit payload are the pinned ones
    expected = json.loads(GOLDEN.read_text())
    _assert_same(actual, expected)
    # and the batch exercises every outcome the rules can give
    states = {v["state"] for v in expected["items"].values()}
    assert {"queued", "auto_rejected", "approved"} <= states
    reasons = " ".join(v["state_reason"] for v in expected["items"].values())
    assert "exact_duplicate" in reasons and "near_duplicate" in reasons and "degenerate" in reasons
