"""Reads. Each returns a queryset (or row) with its related rows already fetched."""

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from corpus.models import ApiToken, Dataset, Item, ItemParent


def dataset_list(*, token: ApiToken | None = None) -> QuerySet[Dataset]:
    datasets = Dataset.objects.order_by("slug")
    if token is not None and token.dataset_id is not None:
        datasets = datasets.filter(pk=token.dataset_id)
    return datasets


def dataset_get(*, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


def _with_relations(items: QuerySet[Item]) -> QuerySet[Item]:
    return items.select_related("dataset", "source", "score").prefetch_related(
        Prefetch("parent_links", queryset=ItemParent.objects.only("child_id", "parent_id"))
    )


def item_get(*, item_id: int) -> Item:
    return get_object_or_404(_with_relations(Item.objects.all()), pk=item_id)


def item_list(
    *,
    dataset: Dataset,
    after_id: int | None = None,
    limit: int = 100,
    filters: dict[str, Any] | None = None,
) -> list[Item]:
    """Keyset page in id order. Ids are handed out in commit order (ingest inserts under the audit
    chain lock), so a cursor never skips a row that commits after the page was read."""
    items = Item.objects.filter(dataset=dataset, **(filters or {}))
    if after_id is not None:
        items = items.filter(id__gt=after_id)
    return list(_with_relations(items).order_by("id")[:limit])
