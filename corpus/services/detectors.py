"""Which detector scores a dataset's items, and retraining it on the dataset's own labels.

Out of the box every dataset uses the default learned model committed at
``corpus/detector_models/learned-default.npz`` (trained by ``manage.py train_detector`` on the
labelled file in ``../shared/data``; see README). Once a dataset has enough labels of its own,
``detector_train`` fits a model on them, keeps a held-out split, records AUROC, counts and a
version, and stores the weights in the database so every worker loads the same model.
"""

import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

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
        _cache[key] = LearnedDetector.load(DEFAULT_MODEL_PATH)
    return _cache[key]


def detector_for_dataset(dataset_id: int) -> LearnedDetector:
    """The dataset's active retrained model, else the default one."""
    row = (
        DetectorModel.objects.filter(dataset_id=dataset_id, name="learned", is_active=True)
        .values_list("id", "version")
        .first()
    )
    if row is None:
        return detector_default()
    key = (dataset_id, row[1])
    if key not in _cache:
        weights = DetectorModel.objects.values_list("weights", flat=True).get(pk=row[0])
        _cache[key] = LearnedDetector.load(io.BytesIO(bytes(weights)))
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
def detector_train(*, dataset: Dataset, actor: str, test_size: float = 0.2) -> DetectorModel:
    """Fit, evaluate on a held-out split, store and activate a model for ``dataset``."""
    data = detector_labels(dataset=dataset)
    n_ai = sum(data.labels)
    n_human = len(data.labels) - n_ai
    if n_ai < MIN_PER_CLASS or n_human < MIN_PER_CLASS:
        raise DetectorTrainError(
            f"dataset '{dataset.slug}' has {n_human} human and {n_ai} AI-labelled items; "
            f"retraining needs at least {MIN_PER_CLASS} of each"
        )
    detector = LearnedDetector()
    report = detector.fit(
        data.texts, np.array(data.labels), groups=data.groups, test_size=test_size
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        detector.save(path)
        weights = path.read_bytes()
    DetectorModel.objects.filter(dataset=dataset, name="learned", is_active=True).update(
        is_active=False
    )
    auroc = report.auroc if np.isfinite(report.auroc) else None
    model = DetectorModel.objects.create(
        dataset=dataset,
        name="learned",
        version=detector.version,
        weights=weights,
        auroc=auroc,
        n_train=report.n_train,
        n_test=report.n_test,
        report=_json_safe(report.as_dict()),
    )
    audit_append(
        actor=actor,
        action="detector.trained",
        object_type="detector_model",
        object_id=model.pk,
        dataset=dataset,
        payload={
            "version": model.version,
            "auroc": auroc,
            "n_train": report.n_train,
            "n_test": report.n_test,
            "labels": {"human": n_human, "ai": n_ai},
        },
    )
    return model


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
