"""AI-text detectors: the `Detector` protocol, the learned detector, its baseline and metrics."""

from typing import TYPE_CHECKING, Any

from .base import TEXT_KINDS, Detector, TextKind
from .evaluation import evaluate, split_indices, stratified_sample, tpr_at_fpr
from .learned import (
    OK,
    OUT_OF_DISTRIBUTION,
    TOO_SHORT,
    Assessment,
    LearnedDetector,
    TrainReport,
)

__all__ = [
    "OK",
    "OUT_OF_DISTRIBUTION",
    "TEXT_KINDS",
    "TOO_SHORT",
    "Assessment",
    "BaselineDetector",
    "Detector",
    "LearnedDetector",
    "TextKind",
    "TrainReport",
    "evaluate",
    "split_indices",
    "stratified_sample",
    "tpr_at_fpr",
]

if TYPE_CHECKING:
    from .baseline import BaselineDetector


def __getattr__(name: str) -> Any:
    """``BaselineDetector`` on first use: it is scikit-learn's TF-IDF and logistic regression,
    whose import costs a process about 130 MB, and a scoring worker never uses it."""
    if name == "BaselineDetector":
        from .baseline import BaselineDetector

        return BaselineDetector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
