"""AI-text detectors: the `Detector` protocol, the learned detector and evaluation metrics."""

from .base import TEXT_KINDS, Detector, TextKind
from .evaluation import evaluate, tpr_at_fpr
from .learned import LearnedDetector, TrainReport, split_indices

__all__ = [
    "TEXT_KINDS",
    "Detector",
    "LearnedDetector",
    "TextKind",
    "TrainReport",
    "evaluate",
    "split_indices",
    "tpr_at_fpr",
]
