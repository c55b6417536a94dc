"""Which detector scores a dataset's items, and retraining it on the dataset's own labels.

Out of the box every dataset uses the default learned model committed at
``corpus/detector_models/learned-default.npz`` (trained by ``manage.py train_detector`` on the
labelled file in ``../shared/data``; see README). Once a dataset has enough labels of its own,
``detector_train`` splits them (exact duplicates grouped), fits the learned detector and the
TF-IDF baseline on one side, measures both on the other, and stores the weights with the
held-out AUROC and the number of labelled items behind it, so every worker loads the same model
and the evidence panel can say how good the detector is on this dataset.
"""

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from corpus.models import Dataset, DetectorModel, Item
from corpus.scoring.detectors.learned import LearnedDetector
from corpus.services.audit import audit_append

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(settings.BASE_DIR) / "corpus" / "detector_models" / "learned-default.npz"
MACHINE_WRITTEN_REASON = "machine_written"
MIN_PER_CLASS = 20

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
    row = (
        DetectorModel.objects.filter(dataset_id=dataset_id, name="learned", is_active=True)
        .values_list("id", "version", "auroc", "n_train", "n_test")
        .first()
    )
    if row is None:
        return detector_default()
    model_id, version, auroc, n_train, n_test = row
    key = (dataset_id, version)
    if key not in _cache:
        weights = DetectorModel.objects.values_list("weights", flat=True).get(pk=model_id)
        try:
            detector = LearnedDetector.load(io.BytesIO(bytes(weights)))
        except ValueError as exc:
            # A model of an older feature version (retrain it): score with the default one
            # rather than fail every batch of the dataset.
            logger.warning("dataset %s: detector model %s unusable (%s)", dataset_id, version, exc)
            return detector_default()
        detector.quality = (
            {"auroc": round(auroc, 4), "n_items": n_train + n_test} if auroc is not None else None
        )
        _cache[key] = detector
    return _cache[key]


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int]  # 1 = AI, 0 = human
    groups: list[str]


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
    texts: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    for label, queryset in ((0, human), (1, ai)):
        for text, digest in queryset.order_by("id").values_list("text", "content_hash")[
            :limit_per_class
        ]:
            texts.append(text)
            labels.append(label)
            # Exact duplicates share a group so the same text never sits on both sides of the
            # held-out split.
            groups.append(digest)
    return LabelledTexts(texts=texts, labels=labels, groups=groups)


@transaction.atomic
def detector_train(*, dataset: Dataset, actor: str, test_size: float = 0.3) -> DetectorModel:
    """Fit, evaluate on a held-out split (beside the baseline), store and activate a model."""
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
    detector = holdout.detector
    buffer = io.BytesIO()
    detector.save(buffer)
    DetectorModel.objects.filter(dataset=dataset, name="learned", is_active=True).update(
        is_active=False
    )
    learned = holdout.result["learned"]
    auroc = learned["auroc"] if np.isfinite(learned["auroc"]) else None
    report = {
        **(detector.report.as_dict() if detector.report else {}),
        "n_labelled": len(data.labels),
        "labels": {"human": n_human, "ai": n_ai},
        "held_out": holdout.result,
    }
    model = DetectorModel.objects.create(
        dataset=dataset,
        name="learned",
        version=detector.version,
        weights=buffer.getvalue(),
        auroc=auroc,
        n_train=int(holdout.result["trained_on"]),
        n_test=int(holdout.result["n_test"]),
        report=_json_safe(report),
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
                "version": model.version,
                "auroc": auroc,
                "baseline_auroc": baseline_auroc,
                "n_train": model.n_train,
                "n_test": model.n_test,
                "labels": {"human": n_human, "ai": n_ai},
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
