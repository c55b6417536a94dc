"""The plain baseline every detector must beat: word n-gram TF-IDF + logistic regression.

sklearn's `TfidfVectorizer(ngram_range=(1, 2), min_df=2)` with default settings and a default
`LogisticRegression`, the supervised baseline of the detection literature (and of the review
that found the previous learned model below it). Used for evaluation only (`evaluate_detector`,
`bench/scoring.py`), never stored or used to score items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

__all__ = ["BaselineDetector"]


class BaselineDetector:
    name = "baseline-tfidf-word-lr"
    version = "sklearn-tfidf-1-2gram-lr"

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None
        self.n_train = 0

    def supports(self, kind: str) -> bool:
        return kind == "text"

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> BaselineDetector:
        y = np.asarray(labels).astype(np.int64)
        min_df = 2 if len(texts) >= 20 else 1
        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=min_df),
            LogisticRegression(max_iter=1000),
        ).fit(list(texts), y)
        self.n_train = len(texts)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("the baseline is not trained")
        if not texts:
            return np.empty(0)
        return self.pipeline.predict_proba(list(texts))[:, 1]
