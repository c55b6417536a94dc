"""Detector evaluation metrics, pure functions of labels and scores.

scikit-learn is imported inside the functions that use it: a scoring worker imports this
package to score and never evaluates, and scikit-learn's import costs it about 130 MB of
resident memory per process (tests/test_web_footprint.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["evaluate", "split_indices", "stratified_sample", "tpr_at_fpr"]


def tpr_at_fpr(y_true: np.ndarray, y_score: np.ndarray, target_fpr: float) -> float:
    """True-positive rate at a false-positive rate of `target_fpr`, interpolated on the ROC.

    Detectors are judged at low FPR (flagging human text as AI is the costly error), where the
    empirical ROC is a staircase with few points. Between two ROC points we interpolate linearly,
    which is the TPR of the randomized classifier mixing the two thresholds and so is actually
    achievable; at a vertical step exactly on the target we take the top of the step.
    """
    from sklearn.metrics import roc_curve

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
    from sklearn.metrics import roc_auc_score

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


def split_indices(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[object] | np.ndarray | None = None,
    test_size: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays: grouped when `groups` is given, else stratified by label.

    With groups, every group lands entirely on one side, so `test_size` is approximate (it is the
    share of groups, not of rows).
    """
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    y = np.asarray(labels).astype(np.int64)
    idx = np.arange(y.size)
    if groups is not None:
        g = np.asarray([str(v) for v in groups])
        if g.shape != y.shape:
            raise ValueError("groups must have one entry per label")
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train, test = next(splitter.split(idx, y, groups=g))
        return np.sort(train), np.sort(test)
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(train), np.sort(test)


def stratified_sample(strata: Sequence[object], limit: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of `limit` rows drawn evenly across `strata` (e.g. label x generator).

    Each stratum gets limit / n_strata rows (all of it when smaller; the rows left over go to
    the larger strata in turn), drawn at random with `seed`: a file sorted by label or source
    is sampled as a whole, not by its first rows.
    """
    keys = [str(s) for s in strata]
    if limit >= len(keys):
        return np.arange(len(keys))
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    pools = {k: list(rng.permutation(v)) for k, v in sorted(members.items())}
    chosen: list[int] = []
    while len(chosen) < limit:
        live = [k for k, pool in pools.items() if pool]
        share = max(1, (limit - len(chosen)) // len(live))
        for key in live:
            take = min(share, limit - len(chosen))
            chosen.extend(pools[key][:take])
            pools[key] = pools[key][take:]
            if len(chosen) >= limit:
                break
    return np.sort(np.asarray(chosen, dtype=np.int64))
