"""A small learned AI-text detector: hashed n-grams + lexical features into logistic regression.

Why this shape
    It is cheap enough to score every item at ingest (thousands of texts per second per core, no
    GPU), it is retrainable from the reviewed data the product accumulates, and its weights are a
    plain vector that can be stored and versioned without pickling code.

Calibration
    Logistic regression scores are not calibrated once the model is regularized on
    high-dimensional features (they are over-confident), and a detector probability is shown to
    reviewers as evidence, so it has to mean what it says. We Platt-scale: fit a one-feature
    logistic regression on cross-validated decision values of the training split (grouped folds
    when groups are given, so near-copies do not leak between folds), then train the final model
    on the whole training split. Probabilities are calibrated to the class balance of the
    training data; train on a balance resembling what will be scored, or read them as relative.

Held-out evaluation
    `fit` holds out `test_size` of the data before anything is trained, grouped with
    `GroupShuffleSplit` when `groups` is given (e.g. a source or prompt id, so paraphrases of one
    prompt never straddle train and test), stratified otherwise, and reports metrics on it.

Persistence
    `save` writes a compressed .npz of plain arrays plus JSON metadata, loaded with
    `allow_pickle=False`: a model file can be shared without being able to execute code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)

from ..lexical import LexicalStats, docs_stats
from ..text import Doc, prepare
from . import features as feat
from .evaluation import evaluate

__all__ = ["LearnedDetector", "TrainReport", "split_indices"]

LABEL_NAMES = {0: "human", 1: "ai"}
_FORMAT = "synthgate-learned-detector/1"


@dataclass(frozen=True)
class TrainReport:
    """What `LearnedDetector.fit` produced, measured on the held-out split."""

    version: str
    n_train: int
    n_test: int
    train_label_counts: dict[str, int]
    test_label_counts: dict[str, int]
    grouped: bool
    auroc: float
    accuracy: float
    tpr_at_fpr_1pct: float
    tpr_at_fpr_5pct: float
    brier: float
    trained_at: str
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _as_labels(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype == bool:
        y = y.astype(np.int64)
    if y.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be a 1-D sequence of 0 (human) and 1 (AI)")
    return y.astype(np.int64)


def _label_counts(y: np.ndarray) -> dict[str, int]:
    return {name: int(np.count_nonzero(y == value)) for value, name in LABEL_NAMES.items()}


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
    y = _as_labels(labels)
    idx = np.arange(y.size)
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != y.shape:
            raise ValueError("groups must have one entry per label")
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train, test = next(splitter.split(idx, y, groups=g))
        return np.sort(train), np.sort(test)
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(train), np.sort(test)


class LearnedDetector:
    """Hashed word/char n-gram + lexical-statistics logistic regression, Platt-calibrated.

    Trained on plain prose only, so `supports` is True for kind "text" alone: chat transcripts
    and code have different surface statistics and would get confident, meaningless scores.
    """

    name = "learned"
    supported_kinds = frozenset({"text"})

    def __init__(self, c: float = 2.0, max_iter: int = 1000) -> None:
        self.c = c
        self.max_iter = max_iter
        self.version = "untrained"
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.platt = np.array([1.0, 0.0])  # probability = expit(a * decision + b)
        self.dense_mean = np.zeros(len(feat.DENSE_FEATURES))
        self.dense_scale = np.ones(len(feat.DENSE_FEATURES))
        self.report: TrainReport | None = None

    # -- prediction -------------------------------------------------------------------------

    def supports(self, kind: str) -> bool:
        return kind in self.supported_kinds

    def _design(
        self, docs: Sequence[Doc], stats: Sequence[LexicalStats] | None = None
    ) -> sp.csr_matrix:
        return feat.features(docs, stats, self.dense_mean, self.dense_scale)

    def decision_function_prepared(
        self, docs: Sequence[Doc], stats: Sequence[LexicalStats] | None = None
    ) -> np.ndarray:
        """Uncalibrated logit for prepared documents."""
        if self.coef is None:
            raise RuntimeError("the detector is not trained; call fit() or load()")
        if not docs:
            return np.empty(0, dtype=np.float64)
        scores = feat.linear_scores(docs, self.coef, stats, self.dense_mean, self.dense_scale)
        return scores + self.intercept

    def predict_proba_prepared(
        self, docs: Sequence[Doc], stats: Sequence[LexicalStats] | None = None
    ) -> np.ndarray:
        """Calibrated P(AI) for prepared documents, reusing lexical stats when given.

        The scoring pipeline has both already; this saves recomputing them.
        """
        logits = self.decision_function_prepared(docs, stats)
        return expit(self.platt[0] * logits + self.platt[1])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated P(AI-written) for each text (float64, len(texts))."""
        return self.predict_proba_prepared([prepare(t) for t in texts])

    # -- training ---------------------------------------------------------------------------

    def _new_model(self, seed: int) -> LogisticRegression:
        # liblinear's trust-region Newton solver needs ~10 iterations here, where lbfgs needs
        # 20-60 over a 262k-dimensional vector; it is deterministic for the L2 primal problem.
        return LogisticRegression(
            C=self.c, solver="liblinear", max_iter=self.max_iter, random_state=seed
        )

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        groups: Sequence[object] | None = None,
        test_size: float = 0.2,
        seed: int = 0,
    ) -> TrainReport:
        """Train on a split of (texts, labels), evaluate on the held-out rest, return the report.

        labels: 1 = AI-written, 0 = human. groups: optional id per text (source, prompt,
        document) that must not straddle the train/test split or the calibration folds.
        """
        y = _as_labels(labels)
        if len(texts) != y.size:
            raise ValueError("texts and labels differ in length")
        g = None if groups is None else np.asarray(groups)
        train, test = split_indices(y, g, test_size=test_size, seed=seed)
        if np.unique(y[train]).size < 2:
            raise ValueError("the training split needs both human and AI examples")

        docs = [prepare(t) for t in texts]
        train_docs = [docs[i] for i in train]
        stats = docs_stats(train_docs)
        dense = feat.dense_features(stats)
        self.dense_mean = dense.mean(axis=0)
        scale = dense.std(axis=0)
        self.dense_scale = np.where(scale > 1e-12, scale, 1.0)
        x_full = self._design(train_docs, stats)
        y_train = y[train]
        # Fit only on columns that occur in the training data: the others would get weight 0
        # anyway (their gradient is the L2 penalty alone), and a 262k-dimensional problem is
        # several times slower to solve than the ~100k columns a few thousand texts touch.
        active = np.unique(x_full.indices)
        x_train = x_full[:, active]

        cv: GroupKFold | StratifiedKFold
        n_groups = 0 if g is None else np.unique(g[train]).size
        if g is not None and n_groups >= 3:
            cv = GroupKFold(n_splits=min(3, n_groups))
            cv_groups = g[train]
        else:
            n_splits = int(max(2, min(3, np.bincount(y_train).min())))
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            cv_groups = None
        cv_logits = cross_val_predict(
            self._new_model(seed),
            x_train,
            y_train,
            groups=cv_groups,
            cv=cv,
            method="decision_function",
        )
        platt = LogisticRegression(C=1e6, max_iter=1000)
        platt.fit(cv_logits.reshape(-1, 1), y_train)
        self.platt = np.array([platt.coef_[0, 0], platt.intercept_[0]], dtype=np.float64)

        model = self._new_model(seed).fit(x_train, y_train)
        self.coef = np.zeros(feat.N_FEATURES, dtype=np.float64)
        self.coef[active] = model.coef_[0]
        self.intercept = float(model.intercept_[0])
        self.version = self._weights_version()

        metrics: dict[str, float | int] = {}
        if test.size:
            metrics = evaluate(y[test], self.predict_proba_prepared([docs[i] for i in test]))
        nan = float("nan")
        self.report = TrainReport(
            version=self.version,
            n_train=int(train.size),
            n_test=int(test.size),
            train_label_counts=_label_counts(y_train),
            test_label_counts=_label_counts(y[test]),
            grouped=g is not None,
            auroc=float(metrics.get("auroc", nan)),
            accuracy=float(metrics.get("accuracy", nan)),
            tpr_at_fpr_1pct=float(metrics.get("tpr_at_fpr_1pct", nan)),
            tpr_at_fpr_5pct=float(metrics.get("tpr_at_fpr_5pct", nan)),
            brier=float(metrics.get("brier", nan)),
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra={"platt_a": float(self.platt[0]), "platt_b": float(self.platt[1])},
        )
        return self.report

    def _weights_version(self) -> str:
        """Content hash of everything that determines predictions: same weights, same version."""
        assert self.coef is not None
        h = hashlib.sha256()
        h.update(f"{_FORMAT}|features={feat.FEATURE_VERSION}".encode())
        for arr in (
            self.coef,
            np.array([self.intercept]),
            self.platt,
            self.dense_mean,
            self.dense_scale,
        ):
            h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        return f"{self.name}-f{feat.FEATURE_VERSION}-{h.hexdigest()[:12]}"

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str] | BinaryIO) -> None:
        """Write the model to `path` (.npz), atomically so a reader never sees half a file.

        `path` may also be a binary file object (e.g. BytesIO, to store the weights in a
        database column); it is then written in place.
        """
        if self.coef is None:
            raise RuntimeError("cannot save an untrained detector")
        meta = {
            "format": _FORMAT,
            "name": self.name,
            "version": self.version,
            "feature_version": feat.FEATURE_VERSION,
            "hash_bits": feat.HASH_BITS,
            "dense_features": list(feat.DENSE_FEATURES),
            "c": self.c,
            "report": self.report.as_dict() if self.report else None,
        }
        coef = self.coef

        def write(f: BinaryIO) -> None:
            np.savez_compressed(
                f,
                coef=coef.astype("<f8"),
                intercept=np.array([self.intercept], dtype="<f8"),
                platt=self.platt.astype("<f8"),
                dense_mean=self.dense_mean.astype("<f8"),
                dense_scale=self.dense_scale.astype("<f8"),
                meta=np.array(json.dumps(meta, allow_nan=True)),
            )

        if not isinstance(path, str | os.PathLike):
            write(path)
            return
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str] | BinaryIO) -> LearnedDetector:
        """Load a model written by `save` (path or binary file object).

        Refuses files from another feature version and files whose weights do not hash to their
        recorded version (corrupted or edited).
        """
        where = os.fspath(path) if isinstance(path, str | os.PathLike) else "model data"
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{where}: not a learned-detector file ({meta.get('format')!r})")
            if meta["feature_version"] != feat.FEATURE_VERSION:
                raise ValueError(
                    f"{where}: trained with features v{meta['feature_version']}, "
                    f"this code computes v{feat.FEATURE_VERSION}; retrain"
                )
            det = cls(c=float(meta.get("c", 2.0)))
            det.coef = data["coef"].astype(np.float64)
            if det.coef.shape != (feat.N_FEATURES,):
                raise ValueError(f"{where}: weight vector has shape {det.coef.shape}")
            det.intercept = float(data["intercept"][0])
            det.platt = data["platt"].astype(np.float64)
            det.dense_mean = data["dense_mean"].astype(np.float64)
            det.dense_scale = data["dense_scale"].astype(np.float64)
        det.version = det._weights_version()
        if det.version != meta["version"]:
            raise ValueError(f"{where}: weights do not match their recorded version")
        report = meta.get("report")
        if report:
            det.report = TrainReport(**report)
        return det
