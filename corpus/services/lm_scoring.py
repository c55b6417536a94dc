"""The language-model detector's evidence, computed on its own Celery queue ("lm").

Fast-DetectGPT needs torch and a causal LM: an install may not have them (requirements-lm.txt is
optional), and a GPU worker should take this work while CPU workers do the cheap signals. So the
scoring service only enqueues ``items_lm_score_task`` when ``SYNTHGATE_LM_DETECTOR`` is on, and
this service adds one more entry to ``Score.detectors``; it never changes an item's state.
"""

from typing import Any

import numpy as np
from django.db import transaction

from corpus.models import Score
from corpus.scoring import kinds


def lm_detector() -> Any:
    """The process-wide LM detector (imported lazily: torch is optional)."""
    from corpus.scoring.detectors import lm

    return lm.load_default()


@transaction.atomic
def items_lm_score(*, item_ids: list[int], detector: Any = None) -> int:
    """Record the LM detector's verdict for items that have a score. Returns how many changed.

    Safe to run twice: an item already scored by this detector version is skipped.
    """
    detector = detector if detector is not None else lm_detector()
    scores = list(
        Score.objects.select_for_update()
        .filter(item_id__in=item_ids)
        .select_related("item")
        .order_by("item_id")
    )
    todo = [
        s for s in scores if s.detectors.get(detector.name, {}).get("version") != detector.version
    ]
    if not todo:
        return 0
    supported = [s for s in todo if detector.supports(s.item.kind)]
    texts = [
        kinds.scoring_text(s.item.kind, s.item.text, s.item.messages, s.item.language)
        for s in supported
    ]
    probabilities: Any = (
        np.asarray(detector.predict_proba(texts), dtype=np.float64) if texts else []
    )
    verdict: dict[int, dict[str, Any]] = {
        s.item_id: {"version": detector.version, "unsupported": s.item.kind} for s in todo
    }
    for s, p in zip(supported, probabilities, strict=True):
        verdict[s.item_id] = (
            {"version": detector.version, "probability": float(p)}
            if np.isfinite(p)
            else {"version": detector.version, "too_short": True}
        )
    for s in todo:
        s.detectors = {**s.detectors, detector.name: verdict[s.item_id]}
    Score.objects.bulk_update(todo, ["detectors"])
    return len(todo)


def lm_enqueue(*, item_ids: list[int]) -> None:
    from corpus.tasks import items_lm_score_task

    try:
        items_lm_score_task.delay(item_ids)
    except Exception:  # evidence, not state: a lost message only means a missing LM verdict
        import logging

        logging.getLogger(__name__).warning(
            "could not enqueue LM scoring of %d items", len(item_ids)
        )
