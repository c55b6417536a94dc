"""Helpers for the export tests: items approved through the corpus service (so the feed sees
them), export storage in a temporary folder, and a direct build (no worker)."""

from collections.abc import Iterable
from typing import Any

import pytest

from corpus.models import Dataset, Export, Item
from corpus.services.audit import SYSTEM
from corpus.services.exports.build import export_build, export_request
from corpus.services.items import item_outcome_set
from corpus.services.write_batch import write_batch
from tests.factories import ItemFactory, SourceFactory


@pytest.fixture(autouse=True)
def export_dirs(settings, tmp_path):
    settings.SYNTHGATE_EXPORT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "exports")},
    }
    settings.SYNTHGATE_EXPORT_TMP_DIR = str(tmp_path / "staging")
    return tmp_path


def approve(items: Iterable[Item], reviewer_ids: list[int] | None = None) -> list[Item]:
    items = list(items)
    for item in items:
        with write_batch() as wb:
            item_outcome_set(
                wb, item_id=item.pk, state=Item.State.APPROVED, reviewer_ids=reviewer_ids or [7]
            )
    return list(Item.objects.filter(pk__in=[i.pk for i in items]).order_by("pk"))


def approved_items(
    dataset: Dataset, n: int, *, source: str = "pipeline", **fields: Any
) -> list[Item]:
    """``n`` queued items of ``source``, then approved by reviewer 7."""
    src = SourceFactory(dataset=dataset, name=source)
    items = [ItemFactory(dataset=dataset, source=src, **fields) for _ in range(n)]
    return approve(items)


def build(dataset: Dataset, **kwargs: Any) -> Export:
    """Request an export and build it in this process (as the task would)."""
    export = export_request(dataset=dataset, actor=SYSTEM, **kwargs)
    export_build(export_id=export.pk)
    export.refresh_from_db()
    return export
