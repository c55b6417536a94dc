"""Which detector scores a dataset's items, and retraining it on the dataset's own labels.

Out of the box every dataset uses the default learned model committed at
``corpus/detector_models/learned-default.npz`` (trained by ``manage.py train_detector`` on the
labelled file in ``../shared/data``; see README). Once a dataset has enough labels of its own,
``detector_train`` splits them (exact duplicates grouped), fits the learned detector and the
TF-IDF baseline on one side, measures both on the other, and stores the weights with the
held-out AUROC and the number of labelled items behind it, so every worker loads the same model
and the evidence panel can say how good the detector is on this dataset.

When the LM tier runs (``corpus.services.lm_scoring``), it stores each item's LM statistics
(mean log-likelihood, log-rank, entropy, the Fast-DetectGPT curvature) beside its verdict, and
retraining also fits a fused model (``learned+lm``: the same features plus those four) on the
labelled items the LM has scored, measured on its own held-out split beside the baseline. The LM
task then scores with it, so an item the LM sees gets a third verdict: the strongest the
installation has. Only statistics of the LM the fused model was trained on are fused: an
upgraded LM waits for the next retraining.
"""

import io
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from corpus.models import Dataset, DetectorModel, Item, Score
from corpus.scoring.detectors.learned import LearnedDetector
from corpus.services.audit import audit_append

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(settings.BASE_DIR) / "corpus" / "detector_models" / "learned-default.npz"
MACHINE_WRITTEN_REASON = "machine_written"
MIN_PER_CLASS = 20
FUSED_NAME = "learned+lm"
# The LM detector's entry in Score.detectors (corpus.scoring.detectors.lm.LMDetector.name).
LM_NAME = "fast-detectgpt"

# Per-process cache: (dataset id, model version) -> detector. Workers score thousands of items
# per second; loading weights for each batch would dominate.
_cache: dict[object, LearnedDetector] = {}


class DetectorTrainError(ValueError):
    """Not enough (or unusable) labels; the message says what is missing."""


def detector_default() -> LearnedDetector:
    key = ("default", DEFAULT_MODEL_PATH)
    if key not in _cache:
        detector = LearnedDetector.load(DEFAULT_MODEL_PATH)
        detector.quality = None  # never measured on any dataset's own labels
        _cache[key] = detector
    return _cache[key]


def detector_for_dataset(dataset_id: int) -> LearnedDetector:
    """The dataset's active retrained model, else the default one.

    `quality` on the returned detector is its held-out AUROC on this dataset and the number of
    labelled items behind it (None for the default model): scoring stores it beside each
    probability, so the evidence panel shows how good the detector that scored an item is.
    """
    loaded = _model_load(dataset_id, "learned")
    return loaded[0] if loaded is not None else detector_default()


def detector_fused_for_dataset(dataset_id: int) -> tuple[LearnedDetector, str] | None:
    """The dataset's active fused model (text and LM features) and the version of the LM whose
    statistics it was trained on, or None when it has none."""
    return _model_load(dataset_id, FUSED_NAME)


def _model_load(dataset_id: int, name: str) -> tuple[LearnedDetector, str] | None:
    row = (
        DetectorModel.objects.filter(dataset_id=dataset_id, name=name, is_active=True)
        .values_list("id", "version", "auroc", "n_train", "n_test", "report__lm_version")
        .first()
    )
    if row is None:
        return None
    model_id, version, auroc, n_train, n_test, lm_version = row
    key = (dataset_id, name, version)
    if key not in _cache:
        weights = DetectorModel.objects.values_list("weights", flat=True).get(pk=model_id)
        try:
            detector = LearnedDetector.load(io.BytesIO(bytes(weights)))
        except ValueError as exc:
            # A model of an older feature version (retrain it): score with the default one
            # rather than fail every batch of the dataset.
            logger.warning("dataset %s: detector model %s unusable (%s)", dataset_id, version, exc)
            return None
        detector.quality = (
            {"auroc": round(auroc, 4), "n_items": n_train + n_test} if auroc is not None else None
        )
        _cache[key] = detector
    return _cache[key], lm_version or ""


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int]  # 1 = AI, 0 = human
    groups: list[str]
    item_ids: list[int]


def detector_labels(*, dataset: Dataset, limit_per_class: int = 50_000) -> LabelledTexts:
    """The dataset's own labels: its human reference corpus and declared-human items against
    declared-synthetic items and items reviewers rejected as machine-written."""
    human = Item.objects.filter(dataset=dataset).filter(
        Q(is_reference=True) | Q(origin=Item.Origin.HUMAN)
    )
    ai = (
        Item.objects.filter(dataset=dataset)
        .filter(
            Q(origin=Item.Origin.SYNTHETIC)
            | Q(state=Item.State.REJECTED, state_reason=MACHINE_WRITTEN_REASON)
        )
        .exclude(Q(is_reference=True) | Q(origin=Item.Origin.HUMAN))
    )
    data = LabelledTexts(texts=[], labels=[], groups=[], item_ids=[])
    for label, queryset in ((0, human), (1, ai)):
        for item_id, text, digest in queryset.order_by("id").values_list(
            "id", "text", "content_hash"
        )[:limit_per_class]:
            data.item_ids.append(item_id)
            data.texts.append(text)
            data.labels.append(label)
            # Exact duplicates share a group so the same text never sits on both sides of the
            # held-out split.
            data.groups.append(digest)
    return data


def detector_lm_features(data: LabelledTexts) -> tuple[list[int], np.ndarray, str]:
    """The labelled rows the LM tier has scored with its most used version: their positions in
    ``data``, their LM statistics ((n, 4), NaN rows where the text was too short for the LM) and
    that version ("" and no rows when it scored none)."""
    stored = dict(
        Score.objects.filter(item_id__in=data.item_ids).values_list("item_id", "detectors")
    )
    entries = {}
    for item_id, detectors in stored.items():
        entry = (detectors or {}).get(LM_NAME)
        if isinstance(entry, dict) and ("features" in entry or entry.get("too_short")):
            entries[item_id] = entry
    versions = Counter(entry.get("version", "") for entry in entries.values())
    if not versions:
        return [], np.empty((0, 4)), ""
    version = versions.most_common(1)[0][0]
    rows, features = [], []
    for position, item_id in enumerate(data.item_ids):
        entry = entries.get(item_id)
        if entry is None or entry.get("version", "") != version:
            continue
        rows.append(position)
        features.append(entry.get("features") or [np.nan] * 4)
    return rows, np.asarray(features, dtype=np.float64).reshape(len(rows), 4), version


@transaction.atomic
def detector_train(*, dataset: Dataset, actor: str, test_size: float = 0.3) -> DetectorModel:
    """Fit, evaluate on a held-out split (beside the baseline), store and activate a model;
    and the fused model (``learned+lm``) beside it when the LM tier has scored enough of the
    labelled items (the main model's report says why not otherwise)."""
    data = detector_labels(dataset=dataset)
    n_ai = sum(data.labels)
    n_human = len(data.labels) - n_ai
    if n_ai < MIN_PER_CLASS or n_human < MIN_PER_CLASS:
        raise DetectorTrainError(
            f"dataset '{dataset.slug}' has {n_human} human and {n_ai} AI-labelled items; "
            f"retraining needs at least {MIN_PER_CLASS} of each"
        )
    # The baseline's scikit-learn is loaded only to retrain (about 130 MB a process).
    from corpus.scoring.detectors.holdout import holdout_compare

    try:
        holdout = holdout_compare(
            data.texts, np.array(data.labels), data.groups, test_size=test_size
        )
    except ValueError as exc:
        raise DetectorTrainError(f"dataset '{dataset.slug}': {exc}") from None
    fused, fusion = _fused_train(data, test_size=test_size)
    model = _model_store(
        dataset,
        "learned",
        holdout,
        actor=actor,
        report={
            "n_labelled": len(data.labels),
            "labels": {"human": n_human, "ai": n_ai},
            "lm_fusion": fusion,
        },
    )
    if fused is not None:
        _model_store(dataset, FUSED_NAME, fused, actor=actor, report=fusion)
    return model


def _fused_train(data: LabelledTexts, *, test_size: float) -> tuple[Any, dict[str, Any]]:
    """The fused model's holdout (None when too few labelled items have LM statistics) and what
    happened, for the reports."""
    from corpus.scoring.detectors.holdout import holdout_compare

    rows, features, version = detector_lm_features(data)
    labels = [data.labels[i] for i in rows]
    n_ai = sum(labels)
    fusion: dict[str, Any] = {
        "lm_version": version,
        "labels": {"human": len(labels) - n_ai, "ai": n_ai},
    }
    if n_ai < MIN_PER_CLASS or len(labels) - n_ai < MIN_PER_CLASS:
        fusion["skipped"] = (
            f"the LM tier has scored {len(labels) - n_ai} human and {n_ai} AI-labelled items; "
            f"a model with LM features needs at least {MIN_PER_CLASS} of each"
        )
        return None, fusion
    try:
        holdout = holdout_compare(
            [data.texts[i] for i in rows],
            np.array(labels),
            [data.groups[i] for i in rows],
            test_size=test_size,
            lm_features=features,
        )
    except ValueError as exc:
        fusion["skipped"] = str(exc)
        return None, fusion
    fusion["held_out"] = holdout.result
    return holdout, fusion


def _model_store(
    dataset: Dataset, name: str, holdout: Any, *, actor: str, report: dict[str, Any]
) -> DetectorModel:
    """Store a retrained model as the dataset's active one of its name, with its held-out
    figures, and audit it."""
    detector = holdout.detector
    buffer = io.BytesIO()
    detector.save(buffer)
    DetectorModel.objects.filter(dataset=dataset, name=name, is_active=True).update(is_active=False)
    learned = holdout.result["learned"]
    auroc = learned["auroc"] if np.isfinite(learned["auroc"]) else None
    model = DetectorModel.objects.create(
        dataset=dataset,
        name=name,
        version=detector.version,
        weights=buffer.getvalue(),
        auroc=auroc,
        n_train=int(holdout.result["trained_on"]),
        n_test=int(holdout.result["n_test"]),
        report=_json_safe(
            {
                **(detector.report.as_dict() if detector.report else {}),
                **report,
                "held_out": holdout.result,
            }
        ),
    )
    baseline_auroc = holdout.result["baseline"].get("auroc")
    audit_append(
        actor=actor,
        action="detector.trained",
        object_type="detector_model",
        object_id=model.pk,
        dataset=dataset,
        payload=_json_safe_dict(
            {
                "name": name,
                "version": model.version,
                "auroc": auroc,
                "baseline_auroc": baseline_auroc,
                "n_train": model.n_train,
                "n_test": model.n_test,
                "labels": report.get("labels"),
            }
        ),
    )
    return model


def _json_safe_dict(value: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], _json_safe(value))


def _json_safe(value: object) -> object:
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, np.floating | np.integer):
        return value.item()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
