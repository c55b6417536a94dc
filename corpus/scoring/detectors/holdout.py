"""The retraining protocol shared by `train_detector --dataset`, `evaluate_detector
--train-split` and `bench/scoring.py`: one (grouped) split, the learned detector and the
TF-IDF baseline trained on the same rows and measured on the same held-out rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .baseline import BaselineDetector
from .evaluation import evaluate, split_indices
from .learned import OK, Assessment, LearnedDetector

__all__ = ["Holdout", "assessment_summary", "holdout_compare"]


@dataclass
class Holdout:
    detector: LearnedDetector
    train: np.ndarray  # row indices the split put on the training side
    test: np.ndarray
    assessment: Assessment  # the learned detector on the test rows
    result: dict[str, Any]


def assessment_summary(y: np.ndarray, assessment: Assessment) -> dict[str, Any]:
    """Metrics over every row (an abstention counts as 0.5, "no evidence"), metrics over the
    rows it scored, and how many it left out and why."""
    ok = assessment.status == OK
    out: dict[str, Any] = dict(evaluate(y, assessment.metric_scores()))
    out["scored_only"] = evaluate(y[ok], assessment.probability[ok])
    out["abstained"] = {
        str(status): int(np.count_nonzero(assessment.status == status))
        for status in sorted(set(assessment.status.tolist()) - {OK})
    }
    return out


def holdout_compare(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[object] | None,
    test_size: float,
    seed: int = 0,
    lm_features: np.ndarray | None = None,
    c: float = 8.0,
) -> Holdout:
    """Split once; fit the learned detector (with `lm_features` when given) and the baseline on
    the training rows; evaluate both on the held-out rows."""
    y = np.asarray(labels).astype(np.int64)
    train, test = split_indices(y, groups, test_size=test_size, seed=seed)
    detector = LearnedDetector(c=c)
    detector.fit(
        [texts[i] for i in train],
        y[train],
        groups=None if groups is None else [groups[i] for i in train],
        test_size=0,
        seed=seed,
        lm_features=None if lm_features is None else np.asarray(lm_features)[train],
    )
    test_texts = [texts[i] for i in test]
    assessment = detector.assess(
        test_texts, lm_features=None if lm_features is None else np.asarray(lm_features)[test]
    )
    baseline = BaselineDetector().fit([texts[i] for i in train], y[train])
    assert detector.report is not None
    result: dict[str, Any] = {
        "grouped": groups is not None,
        "trained_on": detector.report.n_train,
        "n_test": int(test.size),
        "learned": assessment_summary(y[test], assessment),
        "baseline": evaluate(y[test], baseline.predict_proba(test_texts)) if test.size else {},
    }
    return Holdout(detector, train, test, assessment, result)
