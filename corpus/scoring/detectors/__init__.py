"""AI-text detectors: the `Detector` protocol, the learned detector, its baseline and metrics."""

from .base import TEXT_KINDS, Detector, TextKind
from .baseline import BaselineDetector
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
