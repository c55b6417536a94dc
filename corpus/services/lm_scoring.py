"""The language-model detector's evidence, computed on its own Celery queue ("lm").

Fast-DetectGPT needs torch and a causal LM: an install may not have them (requirements-lm.txt is
optional), and a GPU worker should take this work while CPU workers do the cheap signals. So the
scoring service only enqueues ``items_lm_score_task`` when ``SYNTHGATE_LM_DETECTOR`` is on, and
this service adds one more entry to ``Score.detectors`` (two when the dataset has a fused model:
``corpus.services.detectors``); it never changes an item's state.

Keeping up with ingest
    One CPU core scores a few texts/s (bench/lm_detector.py: about 5 in bf16 on a CPU with AMX,
    1 to 2 in float32), orders of magnitude below the cheap signals, so the LM does not see
    every item. Each batch the worker scores folds its texts and CPU seconds (wall seconds on a
    GPU) into a measured rate in the cache (``lm_throughput``, older batches halving in weight
    every 2,000 texts); before any measurement SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE stands
    in. ``lm_sample`` takes every text item the learned detector is unsure about
    (probability within SYNTHGATE_LM_UNSURE_BAND of 0.5) or abstained on (out of its scope, too
    short) -- where a second opinion changes a reviewer's view -- plus a deterministic random
    SYNTHGATE_LM_SAMPLE_SHARE of the confident rest, which keeps measuring how the two detectors
    agree. ``lm_capacity`` states the share of an ingest rate the queue keeps up with.
    Items are queued for review as soon as the cheap signals are in: they never wait for the
    LM. An item whose cheap scoring is older than SYNTHGATE_LM_MAX_WAIT_SECONDS when the LM
    reaches it (a backlog) is skipped and keeps the cheap evidence alone; either skip is
    recorded, so the panel says why there is no LM verdict.
"""

import hashlib
import logging
import os
import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from corpus.models import Score
from corpus.scoring import kinds
from corpus.services.detectors import FUSED_NAME, detector_fused_for_dataset

logger = logging.getLogger(__name__)


def lm_detector() -> Any:
    """The process-wide LM detector (imported lazily: torch is optional)."""
    from corpus.scoring.detectors import lm

    return lm.load_default()


THROUGHPUT_KEY = "synthgate:lm:throughput"
# A batch's weight in the measured rate halves with every this many texts scored after it.
THROUGHPUT_HALF_LIFE_TEXTS = 2000


def record_throughput(*, texts: int, seconds: float, detector: Any) -> None:
    """Fold one scored batch into the measured rate (`lm_throughput`).

    `seconds` is the process's CPU time for the batch on a CPU (all its threads: the rate is per
    core whatever SYNTHGATE_LM_THREADS says), wall time on a GPU. Workers on several hosts fold
    into the same entry, so it is the fleet's average; the entry restarts when the detector
    version (model, cap, precision) changes. A lost update between two workers costs one batch.
    """
    if texts <= 0 or seconds <= 0:
        return
    device = str(getattr(detector, "device", "cpu"))
    try:
        old = cache.get(THROUGHPUT_KEY)
        if not old or old.get("version") != detector.version:
            old = {"texts": 0.0, "seconds": 0.0}
        decay = 0.5 ** (texts / THROUGHPUT_HALF_LIFE_TEXTS)
        cache.set(
            THROUGHPUT_KEY,
            {
                "texts": old["texts"] * decay + texts,
                "seconds": old["seconds"] * decay + seconds,
                "version": detector.version,
                "precision": getattr(detector, "precision", ""),
                "device": device,
                "cores": len(os.sched_getaffinity(0)) if device == "cpu" else 1,
                "measured_at": timezone.now().isoformat(),
            },
            timeout=None,
        )
    except Exception:  # a measurement: the verdicts it rode along with are stored regardless
        logger.warning("could not record the LM throughput of %d texts", texts, exc_info=True)


def lm_throughput() -> dict[str, Any] | None:
    """The measured rate: texts per second per core (per GPU), the cores of the last worker to
    report, the detector version, precision and device; None before the first batch."""
    data = cache.get(THROUGHPUT_KEY)
    if not data or data.get("seconds", 0) <= 0:
        return None
    return {**data, "texts_per_second_per_core": data["texts"] / data["seconds"]}


def lm_capacity(*, ingest_items_per_second: float, cores: int | None = None) -> dict[str, Any]:
    """What the lm queue keeps up with: texts/s per core x cores, and that as a share of ingest.

    Per core: the measured rate when workers have reported one, else the setting. Cores: the
    argument, else those of the last worker to report, else this process's."""
    measured = lm_throughput()
    per_core = (
        measured["texts_per_second_per_core"]
        if measured
        else settings.SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE
    )
    cores = cores or (measured["cores"] if measured else len(os.sched_getaffinity(0)))
    per_second = per_core * cores
    share = 1.0 if ingest_items_per_second <= 0 else min(1.0, per_second / ingest_items_per_second)
    return {
        "texts_per_second": per_second,
        "texts_per_second_per_core": per_core,
        "cores": cores,
        "share_of_ingest": share,
        "measured": measured is not None,
    }


def _random_share(item_id: int) -> float:
    """A uniform number in [0, 1) fixed per item, so every worker samples the same items."""
    digest = hashlib.blake2b(str(item_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def lm_sample(*, probability: float | None, item_id: int) -> bool:
    """Whether the LM scores an item the learned detector gave `probability` (None: abstained)."""
    if probability is None:
        return True
    if abs(probability - 0.5) < settings.SYNTHGATE_LM_UNSURE_BAND:
        return True
    return _random_share(item_id) < settings.SYNTHGATE_LM_SAMPLE_SHARE


@transaction.atomic
def items_lm_score(*, item_ids: list[int], detector: Any = None) -> int:
    """Record the LM detector's verdict for items that have a score. Returns how many changed.

    Safe to run twice: an item already given a verdict by this detector version is skipped.
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
    oldest = timezone.now() - timedelta(seconds=settings.SYNTHGATE_LM_MAX_WAIT_SECONDS)
    verdict: dict[int, dict[str, Any]] = {}
    supported = []
    for s in todo:
        if not detector.supports(s.item.kind):
            verdict[s.item_id] = {"version": detector.version, "unsupported": s.item.kind}
        elif s.computed_at < oldest:
            verdict[s.item_id] = {"version": detector.version, "skipped": "backlog"}
        elif not lm_sample(probability=s.detector_probability, item_id=s.item_id):
            verdict[s.item_id] = {"version": detector.version, "skipped": "sampled_out"}
        else:
            supported.append(s)
    texts = [
        kinds.scoring_text(s.item.kind, s.item.text, s.item.messages, s.item.language)
        for s in supported
    ]
    # One LM pass gives the statistics; the verdict is the calibrated curvature among them.
    features = np.empty((0, 4))
    probabilities = np.empty(0)
    if texts:
        on_cpu = str(getattr(detector, "device", "cpu")) == "cpu"
        clock = time.process_time if on_cpu else time.perf_counter
        started = clock()
        features = np.asarray(detector.features(texts), dtype=np.float64).reshape(len(texts), 4)
        record_throughput(texts=len(texts), seconds=clock() - started, detector=detector)
        probabilities = np.asarray(detector.calibration.apply(features[:, 3]), dtype=np.float64)
    for s, p, row in zip(supported, probabilities, features, strict=True):
        verdict[s.item_id] = (
            {
                "version": detector.version,
                "probability": float(p),
                # kept for the fused model's retraining (corpus.services.detectors)
                "features": [round(float(x), 6) for x in row],
            }
            if np.isfinite(p)
            else {"version": detector.version, "too_short": True}
        )
    fused = {}
    if texts:
        fused = _fused_verdicts(supported, texts, features, lm_version=detector.version)
    for s in todo:
        s.detectors = {**s.detectors, detector.name: verdict[s.item_id]}
        if s.item_id in fused:
            s.detectors[FUSED_NAME] = fused[s.item_id]
    Score.objects.bulk_update(todo, ["detectors"])
    return len(todo)


def _fused_verdicts(
    scores: list[Score], texts: list[str], features: np.ndarray, *, lm_version: str
) -> dict[int, dict[str, Any]]:
    """The verdicts of each dataset's fused model (text and LM features), for the datasets that
    have one trained on this LM's statistics."""
    by_dataset: dict[int, list[int]] = {}
    for position, s in enumerate(scores):
        by_dataset.setdefault(s.item.dataset_id, []).append(position)
    out: dict[int, dict[str, Any]] = {}
    for dataset_id, positions in by_dataset.items():
        loaded = detector_fused_for_dataset(dataset_id)
        if loaded is None or loaded[1] != lm_version:
            continue  # none, or trained on another LM's statistics: wait for a retraining
        fused = loaded[0]
        assessment = fused.assess([texts[i] for i in positions], lm_features=features[positions])
        for i, p, status in zip(positions, assessment.probability, assessment.status, strict=True):
            entry: dict[str, Any] = {"version": fused.version, "quality": fused.quality}
            if status == "ok":
                entry["probability"] = float(p)
            else:
                entry["abstained"] = str(status)
            out[scores[i].item_id] = entry
    return out


def lm_enqueue(*, item_ids: list[int]) -> None:
    from corpus.tasks import items_lm_score_task

    try:
        items_lm_score_task.delay(item_ids)
    except Exception:  # evidence, not state: a lost message only means a missing LM verdict
        logger.warning("could not enqueue LM scoring of %d items", len(item_ids))
