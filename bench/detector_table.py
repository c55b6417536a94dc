"""The detector AUROC table of bench/scoring.py (`--detector-file FILE [--with-lm]`).

    .venv/bin/python bench/scoring.py \
        --detector-file ../shared/data/detector-train.jsonl [--with-lm]

On a labelled JSONL file (text, label human|ai, generator, source) it measures, with the same
splits for every detector:

- "random half": a stratified 50/50 split (grouped by `pair_id`/`group` when the file has one);
  every detector is trained on one half and scored on the other.
- "leave one generator out", for each AI generator G: trained on every row except G's AI rows
  and a held-out half of the human rows (stratified by source); scored on G's AI rows and the
  held-out humans. This is what a zero-shot default meets in production: text of a generator it
  never saw. The learned detector is trained as the default model is (calibration folds grouped
  by source, mixed calibration).

Detectors: the TF-IDF word 1-2 gram + logistic regression baseline, the learned detector, and
with --with-lm the learned detector with the LM tier's four features fused in. For the learned
ones AUROC and Brier count abstentions as 0.5 ("no evidence"); the abstained share is given.
LM features are computed once per file and cached under var/ (keyed by the file's sha256 and
the LM detector's version).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpus.scoring.detectors import (  # noqa: E402
    OK,
    BaselineDetector,
    LearnedDetector,
    evaluate,
    split_indices,
)


def _lm_features(path: Path, texts: list[str]) -> np.ndarray:
    from corpus.scoring.detectors import lm

    detector = lm.load_default()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cache = ROOT / "var" / f"lm-features-{digest}-{detector.version}.npy"
    if cache.is_file():
        return np.load(cache)
    start = time.perf_counter()
    features = detector.features(texts)
    print(
        f"LM features: {len(texts)} texts in {time.perf_counter() - start:.0f} s", file=sys.stderr
    )
    cache.parent.mkdir(exist_ok=True)
    np.save(cache, features)
    return features


def _measure(
    texts: list[str],
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    sources: np.ndarray | None,
    lm: np.ndarray | None,
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    test_texts = [texts[i] for i in test]
    baseline = BaselineDetector().fit([texts[i] for i in train], y[train])
    m = evaluate(y[test], baseline.predict_proba(test_texts))
    out["baseline"] = {"auroc": m["auroc"], "brier": m["brier"]}
    variants = [("learned", None)] + ([("learned+lm", lm)] if lm is not None else [])
    for name, extra in variants:
        det = LearnedDetector()
        det.fit(
            [texts[i] for i in train],
            y[train],
            groups=None if sources is None else sources[train],
            test_size=0,
            lm_features=None if extra is None else extra[train],
            mixed_calibration=sources is not None,
        )
        a = det.assess(test_texts, lm_features=None if extra is None else extra[test])
        m = evaluate(y[test], a.metric_scores())
        ok = a.status == OK
        scored = evaluate(y[test][ok], a.probability[ok]) if ok.any() else {}
        out[name] = {
            "auroc": m["auroc"],
            "brier": m["brier"],
            "abstained": float(1.0 - ok.mean()),
            "auroc_scored_only": scored.get("auroc", float("nan")),
            "brier_scored_only": scored.get("brier", float("nan")),
        }
    return out


def main(path: Path, with_lm: bool = False, json_only: bool = False) -> dict:
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    texts = [r["text"] for r in rows]
    y = np.array([1 if r["label"] == "ai" else 0 for r in rows])
    generators = np.array([str(r.get("generator", "")) for r in rows])
    sources = np.array([str(r.get("source", r.get("generator", ""))) for r in rows])
    group_field = next((f for f in ("group", "pair_id") if all(f in r for r in rows)), None)
    groups = [str(r[group_field]) for r in rows] if group_field else None
    lm = _lm_features(path, texts) if with_lm else None
    result: dict = {
        "file": str(path),
        "n": len(rows),
        "load_average_1m": os.getloadavg()[0],
        "protocols": {},
    }
    train, test = split_indices(y, groups, test_size=0.5, seed=0)
    result["protocols"]["random half"] = _measure(texts, y, train, test, None, lm)
    human = np.flatnonzero(y == 0)
    rng = np.random.default_rng(0)
    held_humans = np.concatenate(
        [rng.permutation(human[sources[human] == s])[: (sources[human] == s).sum() // 2]
         for s in sorted(set(sources[human]))]
    )  # fmt: skip
    for gen in sorted(set(generators[y == 1])):
        test = np.sort(
            np.concatenate([np.flatnonzero((generators == gen) & (y == 1)), held_humans])
        )
        train = np.setdiff1d(np.arange(len(rows)), test)
        train = train[~((generators[train] == gen) & (y[train] == 1))]
        result["protocols"][f"leave out {gen}"] = _measure(texts, y, train, test, sources, lm)
    if not json_only:
        for protocol, detectors in result["protocols"].items():
            for name, m in detectors.items():
                extra = f" abstained {m['abstained']:.2f}" if "abstained" in m else ""
                auroc, brier = m["auroc"], m["brier"]
                print(f"{protocol:<28} {name:<11} AUROC {auroc:.3f} Brier {brier:.3f}{extra}")
    print(json.dumps(result, sort_keys=True))
    return result
