"""Reads. Each returns a queryset (or row) with its related rows already fetched."""

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from corpus.models import ApiToken, Dataset, Export, Item, ItemParent, NearDuplicate


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


# Matches listed beside an item (evidence panel, API item detail); the strongest first. An item
# copied many times lists the closest; the count says how many there are.
MATCHES_SHOWN = 8


def item_matches(*, item_id: int, limit: int = MATCHES_SHOWN) -> tuple[list[dict[str, Any]], int]:
    """The item's stored near-duplicate matches (found whichever of the two was scored first,
    stored both ways), strongest first, with the matched item's state: (the first ``limit``,
    how many)."""
    rows = list(
        NearDuplicate.objects.filter(item_id=item_id)
        .order_by("-jaccard", "other_id")
        .values("other_id", "jaccard", "containment", "other__state", "other__is_reference")[
            : limit + 1
        ]
    )
    total = len(rows)
    if total > limit:
        total = NearDuplicate.objects.filter(item_id=item_id).count()
    return [
        {
            "id": row["other_id"],
            "jaccard": row["jaccard"],
            "containment": row["containment"],
            "state": row["other__state"],
            "is_reference": row["other__is_reference"],
        }
        for row in rows[:limit]
    ], total


def item_with_dataset_get(*, item_id: int) -> Item:
    """The item with its dataset (what an access check reads), else 404."""
    return get_object_or_404(Item.objects.select_related("dataset"), pk=item_id)


def export_list(
    *, dataset: Dataset, status: str | None, before_id: int | None, limit: int
) -> list[Export]:
    """The dataset's exports, newest first, below ``before_id`` (a keyset page)."""
    exports = Export.objects.filter(dataset=dataset).select_related("dataset", "policy")
    if status:
        exports = exports.filter(status=status)
    if before_id is not None:
        exports = exports.filter(id__lt=before_id)
    return list(exports.order_by("-id")[:limit])


def export_get(*, dataset: Dataset, export_id: int) -> Export:
    """One export of the dataset, else 404."""
    return get_object_or_404(
        Export.objects.select_related("dataset", "policy"), pk=export_id, dataset=dataset
    )


# What the API shows of an item and of its score (ItemOutputSerializer, ScoreOutputSerializer).
ITEM_ROW_COLUMNS = (
    "id",
    "kind",
    "text",
    "messages",
    "language",
    "content_hash",
    "external_id",
    "origin",
    "generator_model",
    "generator_version",
    "prompt",
    "sampling_params",
    "generation",
    "metadata",
    "is_reference",
    "state",
    "state_reason",
    "priority",
    "decided_at",
    "decided_by",
    "created_at",
    "updated_at",
)
SCORE_ROW_COLUMNS = (
    "scorer_version",
    "exact_duplicate_of_id",
    "near_duplicate_of_id",
    "near_duplicate_jaccard",
    "near_duplicate_containment",
    "lexical",
    "degenerate",
    "degenerate_reason",
    "detector_name",
    "detector_version",
    "detector_probability",
    "detectors",
    "rule_flag",
    "priority",
    "computed_at",
)


def item_rows(
    *,
    dataset: Dataset,
    after_id: int | None = None,
    limit: int = 100,
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A keyset page of the dataset's items in id order, as plain rows (the shape the reviewer's
    list page reads): one query for the items (``ITEM_ROW_COLUMNS``) with ``source__name`` and
    their score's columns (``score__<column>`` of ``SCORE_ROW_COLUMNS``, all None for an item
    not scored yet; the signature bytes are not read), one for their parents (``parents``, in
    link order). No model instances: building 100 of
    them, their related objects and a prefetch cost more than the query itself.

    Ids are handed out in commit order (ingest inserts under the audit chain lock), so a cursor
    never skips a row that commits after the page was read.

    The page's ids are picked first, in a subquery of the item table alone, and only those
    rows are joined to their source and score. Joined in one query, PostgreSQL may merge-join
    the item and score tables in id order and read the score index from its first row up to
    the cursor on every page (the planner does not carry ``id > cursor`` over to the score
    side): at 1M items a page from the middle took about 1 s, so reading a dataset through
    from the start grew with the square of its size."""
    items = Item.objects.filter(dataset=dataset, **(filters or {}))
    if after_id is not None:
        items = items.filter(id__gt=after_id)
    page = items.order_by("id").values("id")[:limit]
    score_columns = [f"score__{c}" for c in SCORE_ROW_COLUMNS]
    rows: list[dict[str, Any]] = list(
        Item.objects.filter(id__in=page)
        .order_by("id")
        .values(*ITEM_ROW_COLUMNS, "source__name", *score_columns)
    )
    parents: dict[int, list[int]] = {}
    if rows:
        links = (
            ItemParent.objects.filter(child_id__in=[row["id"] for row in rows])
            .order_by("id")
            .values_list("child_id", "parent_id")
        )
        for child_id, parent_id in links:
            parents.setdefault(child_id, []).append(parent_id)
    for row in rows:
        row["parents"] = parents.get(row["id"], [])
    return rows
