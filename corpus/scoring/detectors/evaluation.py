"""Detector evaluation metrics, pure functions of labels and scores."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["evaluate", "tpr_at_fpr"]


def tpr_at_fpr(y_true: np.ndarray, y_score: np.ndarray, target_fpr: float) -> float:
    """True-positive rate at a false-positive rate of `target_fpr`, interpolated on the ROC.

    Detectors are judged at low FPR (flagging human text as AI is the costly error), where the
    empirical ROC is a staircase with few points. Between two ROC points we interpolate linearly,
    which is the TPR of the randomized classifier mixing the two thresholds and so is actually
    achievable; at a vertical step exactly on the target we take the top of the step.
    """
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
    i = int(np.searchsorted(fpr, target_fpr, side="right")) - 1  # last point with fpr <= target
    if i >= fpr.size - 1:
        return float(tpr[-1])
    f0, f1 = fpr[i], fpr[i + 1]
    return float(tpr[i] + (target_fpr - f0) * (tpr[i + 1] - tpr[i]) / (f1 - f0))


def evaluate(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray
) -> dict[str, float | int]:
    """AUROC, accuracy at 0.5, TPR at 1% and 5% FPR, Brier score and class counts.

    `y_true` is 1 for AI-written, 0 for human; `y_score` the predicted probability of 1. Metrics
    that need both classes are NaN when only one is present (e.g. a human-only evaluation file
    still yields accuracy, i.e. 1 - FPR at 0.5).
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D of equal length: {y.shape}, {s.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 (human) and 1 (AI)")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    both = n_pos > 0 and n_neg > 0
    nan = math.nan
    return {
        "n": int(y.size),
        "n_positive": n_pos,
        "n_negative": n_neg,
        "auroc": float(roc_auc_score(y, s)) if both else nan,
        "accuracy": float(np.mean((s >= 0.5) == (y == 1))) if y.size else nan,
        "tpr_at_fpr_1pct": tpr_at_fpr(y, s, 0.01) if both else nan,
        "tpr_at_fpr_5pct": tpr_at_fpr(y, s, 0.05) if both else nan,
        "brier": float(np.mean((s - y) ** 2)) if y.size else nan,
    }
