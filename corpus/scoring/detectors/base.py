"""The interface every AI-text detector implements.

A Protocol rather than an ABC so detectors living elsewhere (the LM-based Fast-DetectGPT
detector runs in its own service code) conform without importing or inheriting from this
package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["TEXT_KINDS", "Detector", "TextKind"]

TextKind = Literal["text", "chat", "code"]
TEXT_KINDS: tuple[TextKind, ...] = ("text", "chat", "code")


@runtime_checkable
class Detector(Protocol):
    """Estimates the probability that texts were written by a model.

    `name` identifies the method ("learned", "fast-detectgpt"); `version` identifies the exact
    trained weights, so a stored score can always be traced to what produced it. A detector is
    only evidence for the kinds it was trained on: callers must check `supports(kind)` and store
    no score (rather than a meaningless one) for other kinds.
    """

    name: str
    version: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated P(AI-written) for each text, float64 array of len(texts)."""
        ...

    def supports(self, kind: str) -> bool:
        """Whether `kind` (one of TEXT_KINDS) is within what the detector was trained on."""
        ...
