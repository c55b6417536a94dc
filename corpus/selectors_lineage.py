"""Lineage: an item's ancestors and descendants as bounded-depth trees with generation depth.

Walked level by level (two queries a level), so an item with a deep or wide family costs a
bounded number of queries and rows: at most ``depth`` levels and ``MAX_NODES`` items each way.
A DAG is shown as a tree: an item reached a second time is a ``repeat`` leaf, not expanded
again; ``more`` marks an item whose own links lie beyond the depth limit.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corpus.models import Item, ItemParent

DEFAULT_DEPTH = 3
MAX_DEPTH = 10
MAX_NODES = 500
# Links read per level: a parent with 100,000 children must not load them all.
ROW_CAP = 4 * MAX_NODES

_DIRECTIONS = {"parents": ("child_id", "parent_id"), "children": ("parent_id", "child_id")}


def _walk(root_id: int, direction: str, depth: int) -> tuple[dict[int, list[int]], set[int], bool]:
    """{item: [linked items]}, the items at the depth limit that link further, truncated?"""
    source, target = _DIRECTIONS[direction]
    links: dict[int, list[int]] = {}
    seen = {root_id}
    frontier = [root_id]
    truncated = False
    for _ in range(depth):
        if not frontier:
            break
        rows = list(
            ItemParent.objects.filter(**{f"{source}__in": frontier})
            .order_by(source, target)
            .values_list(source, target)[: ROW_CAP + 1]
        )
        if len(rows) > ROW_CAP:
            truncated, rows = True, rows[:ROW_CAP]
        following = []
        for origin, linked in rows:
            if linked not in seen:
                if len(seen) > MAX_NODES:
                    truncated = True
                    continue
                seen.add(linked)
                following.append(linked)
            links.setdefault(origin, []).append(linked)
        frontier = following
    beyond = (
        set(
            ItemParent.objects.filter(**{f"{source}__in": frontier})
            .values_list(source, flat=True)
            .distinct()
        )
        if frontier
        else set()
    )
    return links, beyond, truncated


def _summaries(ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = Item.objects.filter(pk__in=ids).values(
        "id", "generation", "origin", "state", "dataset_id", "dataset__slug"
    )
    return {row["id"]: dict(row) for row in rows}


@dataclass
class _Tree:
    direction: str
    links: dict[int, list[int]]
    beyond: set[int]
    info: dict[int, dict[str, Any]]
    home_dataset_id: int
    may_see: Callable[[int], bool] | None
    expanded: set[int] = field(default_factory=set)

    def node(self, item_id: int) -> dict[str, Any]:
        row = self.info.get(item_id)
        if row is None:  # deleted between the two queries
            return {"id": item_id, "missing": True}
        dataset_id = row["dataset_id"]
        if dataset_id != self.home_dataset_id and self.may_see and not self.may_see(dataset_id):
            return {"id": item_id, "dataset": row["dataset__slug"], "restricted": True}
        repeat = item_id in self.expanded
        self.expanded.add(item_id)
        linked = [] if repeat else [self.node(i) for i in self.links.get(item_id, [])]
        return {
            "id": item_id,
            "generation": row["generation"],
            "origin": row["origin"],
            "state": row["state"],
            "dataset": row["dataset__slug"],
            self.direction: linked,
            "more": not repeat and item_id in self.beyond,
            "repeat": repeat,
        }


def item_lineage(
    *, item: Item, depth: int = DEFAULT_DEPTH, may_see: Callable[[int], bool] | None = None
) -> dict[str, Any]:
    """``{"item", "depth", "parents": [node], "children": [node], "truncated"}``.

    A node is ``{"id", "generation", "origin", "state", "dataset", "parents"|"children",
    "more", "repeat"}``; one in a dataset ``may_see`` refuses is only ``{"id", "dataset",
    "restricted": true}``.
    """
    depth = max(1, min(depth, MAX_DEPTH))
    result: dict[str, Any] = {
        "item": {
            "id": item.pk,
            "generation": item.generation,
            "origin": item.origin,
            "state": item.state,
            "dataset": item.dataset.slug,
        },
        "depth": depth,
        "truncated": False,
    }
    for direction in ("parents", "children"):
        links, beyond, truncated = _walk(item.pk, direction, depth)
        tree = _Tree(
            direction=direction,
            links=links,
            beyond=beyond,
            info=_summaries({i for targets in links.values() for i in targets}),
            home_dataset_id=item.dataset_id,
            may_see=may_see,
        )
        tree.expanded.add(item.pk)
        result[direction] = [tree.node(i) for i in links.get(item.pk, [])]
        result["truncated"] = result["truncated"] or truncated
    return result
