"""Which approved items an export takes, under its policy.

1. Candidates: approved, non-gold items of the dataset; in delta mode only those approved after
   the earlier export's snapshot (their approval's feed seq is above its ``snapshot_seq``).
2. Filters: deeper than ``max_generation`` is left out; of each near-duplicate cluster (connected
   components of ``Score.near_duplicate_of`` links among the candidates) at most
   ``max_per_cluster`` stay, those with the smallest sampling ranks.
3. Caps: ``policy.quotas_plan`` on the counts per stratum (origin, source, generator,
   generation) gives each stratum's quota; within a stratum the ``quota`` items with the smallest
   seeded ranks stay (``policy.item_ranks``).

Counting uses GROUP BY; ranks are only computed for strata a cap cuts (8 bytes per item of such a
stratum, once, to find the rank threshold). Writing the ``ExportItem`` rows then walks the
candidates once in id order, in batches.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from corpus.db.copy import copy_rows
from corpus.models import Dataset, Export, ExportItem, FeedEntry, FeedKind, Item, Score
from corpus.services.policy import (
    PolicySpec,
    QuotaPlan,
    Stratum,
    clusters_cap,
    item_ranks,
    quotas_plan,
    rank_threshold,
    violations,
)

REASON_DEPTH = "max_generation"
REASON_CLUSTER = "max_per_cluster"
BATCH = 10_000
DIMENSIONS = ("origin", "source", "generator", "generation")


@dataclass(frozen=True)
class Since:
    """Where the export a delta follows took its snapshot: the feed position, and the largest
    item id then (ids are handed out under the audit chain lock, so in commit order)."""

    seq: int
    max_item_id: int | None

    @classmethod
    def of(cls, export: Export | None) -> Since | None:
        if export is None or export.snapshot_seq is None:
            return None
        snapshot = (export.manifest or {}).get("snapshot", {})
        return cls(seq=export.snapshot_seq, max_item_id=snapshot.get("max_item_id"))


def candidates(*, dataset: Dataset, since: Since | None) -> QuerySet[Item]:
    """Approved, non-gold items; for a delta, those approved after ``since``: approved by
    review after its feed position, or approved on arrival (a reference corpus load, which
    the feed does not number) with an id above its largest."""
    items = Item.objects.filter(dataset=dataset, state=Item.State.APPROVED, is_gold=False)
    if since is not None:
        approvals = FeedEntry.objects.filter(item=OuterRef("pk"), kind=FeedKind.APPROVED)
        new = Q(Exists(approvals.filter(seq__gt=since.seq)))
        if since.max_item_id is not None:
            new |= Q(id__gt=since.max_item_id) & ~Q(Exists(approvals))
        items = items.filter(new)
    return items


def _stratum(origin: str, source: str, generator: str, generation: int) -> Stratum:
    return Stratum(origin, source, generator or "", generation)


def strata_counts(items: QuerySet[Item]) -> dict[Stratum, int]:
    rows = (
        items.order_by()
        .values_list("origin", "source__name", "generator_model", "generation")
        .annotate(n=Count("id"))
    )
    counts: dict[Stratum, int] = Counter()
    for origin, source, generator, generation, n in rows:
        counts[_stratum(origin, source, generator, generation)] += n
    return dict(counts)


def by_dimension(counts: dict[Stratum, int]) -> dict[str, dict[str, int]]:
    """{"origin": {"human": 3, ...}, "source": ..., "generator": ..., "generation": ...}; the
    generator of items that name none is "(none)"."""
    out: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    for s, n in counts.items():
        if not n:
            continue
        out["origin"][s.origin] += n
        out["source"][s.source] += n
        out["generator"][s.generator or "(none)"] += n
        out["generation"][str(s.generation)] += n
    out_sorted = {d: dict(sorted(c.items())) for d, c in out.items()}
    out_sorted["generation"] = dict(sorted(out["generation"].items(), key=lambda kv: int(kv[0])))
    return out_sorted


def _chunked(values: Iterable[int], size: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class Plan:
    spec: PolicySpec
    available: dict[Stratum, int]
    depth_cut: dict[Stratum, int] = field(default_factory=dict)
    cluster_cut: dict[Stratum, int] = field(default_factory=dict)
    cluster_drop: set[int] = field(default_factory=set)
    quota: QuotaPlan | None = None
    thresholds: dict[Stratum, int | None] = field(default_factory=dict)

    @property
    def kept(self) -> dict[Stratum, int]:
        assert self.quota is not None
        return {s: n for s, n in self.quota.quotas.items() if n}

    @property
    def kept_total(self) -> int:
        return sum(self.kept.values())

    @property
    def available_total(self) -> int:
        return sum(self.available.values())

    def blocked(self) -> list[str]:
        """With ``on_violation: block``: every reason the export cannot take all candidates."""
        reasons = []
        depth = sum(self.depth_cut.values())
        if depth:
            reasons.append(
                f"{REASON_DEPTH}: {depth} items deeper than generation {self.spec.max_generation}"
            )
        cluster = sum(self.cluster_cut.values())
        if cluster:
            reasons.append(
                f"{REASON_CLUSTER}: {cluster} items beyond {self.spec.max_per_cluster} per "
                "near-duplicate cluster"
            )
        assert self.quota is not None
        return reasons + violations(self.quota.available, self.spec)

    def left_out(self) -> dict[str, Any]:
        """What the policy cuts, by reason and by stratum (for previews and manifests)."""
        assert self.quota is not None
        by_reason: Counter[str] = Counter()
        strata = []
        for s, n in sorted(self.depth_cut.items()):
            by_reason[REASON_DEPTH] += n
            strata.append({**s._asdict(), "available": n, "kept": 0, "reasons": [REASON_DEPTH]})
        if self.cluster_cut:
            by_reason[REASON_CLUSTER] += sum(self.cluster_cut.values())
        for s, cut in sorted(self.quota.cut.items()):
            reasons = self.quota.reasons.get(s, [])
            for reason in reasons:
                by_reason[reason] += cut
            strata.append(
                {
                    **s._asdict(),
                    "available": self.quota.available[s],
                    "kept": self.quota.quotas[s],
                    "reasons": reasons,
                }
            )
        return {
            "total": self.available_total - self.kept_total,
            # A stratum cut by two caps counts under both, so these may add up to more than
            # the total.
            "by_reason": dict(sorted(by_reason.items())),
            "strata": strata,
        }

    def reason_for(self, s: Stratum) -> str:
        assert self.quota is not None
        return ", ".join(self.quota.reasons.get(s, [])) or "policy"


def plan_compute(
    *, dataset: Dataset, spec: PolicySpec, since: Since | None, thresholds: bool
) -> Plan:
    """Count the candidates and decide each stratum's quota; with ``thresholds``, also the rank
    threshold of every stratum a cap cuts (a build needs them, a preview does not)."""
    items = candidates(dataset=dataset, since=since)
    available = strata_counts(items)
    plan = Plan(spec=spec, available=available)
    remaining = dict(available)
    if spec.max_generation is not None:
        for s in list(remaining):
            if s.generation > spec.max_generation:
                plan.depth_cut[s] = remaining.pop(s)
        items = items.filter(generation__lte=spec.max_generation)
    if spec.max_per_cluster is not None:
        edges = Score.objects.filter(item__in=items, near_duplicate_of__in=items).values_list(
            "item_id", "near_duplicate_of_id"
        )
        _, plan.cluster_drop = clusters_cap(edges.iterator(), spec.max_per_cluster, spec.seed)
        cut: Counter[Stratum] = Counter()
        for chunk in _chunked(sorted(plan.cluster_drop), BATCH):
            rows = Item.objects.filter(id__in=chunk).values_list(
                "origin", "source__name", "generator_model", "generation"
            )
            for row in rows:
                cut[_stratum(*row)] += 1
        plan.cluster_cut = dict(cut)
        for s, n in cut.items():
            remaining[s] -= n
    plan.quota = quotas_plan(remaining, spec)
    if thresholds:
        for s in plan.quota.cut:
            plan.thresholds[s] = _threshold(items, s, plan.quota.quotas[s], plan)
    return plan


def _stratum_filter(items: QuerySet[Item], s: Stratum) -> QuerySet[Item]:
    return items.filter(
        origin=s.origin, source__name=s.source, generator_model=s.generator, generation=s.generation
    )


def _threshold(items: QuerySet[Item], s: Stratum, keep: int, plan: Plan) -> int | None:
    ids = np.fromiter(
        (
            i
            for i in _stratum_filter(items, s).values_list("id", flat=True).iterator(BATCH)
            if i not in plan.cluster_drop
        ),
        dtype=np.uint64,
    )
    return rank_threshold(item_ranks(ids, plan.spec.seed), keep)


def export_items_write(*, export_id: int, dataset: Dataset, since: Since | None, plan: Plan) -> int:
    """Write one ExportItem per candidate (included, or left out with the reason) in the
    caller's transaction. Returns the number included."""
    items = candidates(dataset=dataset, since=since)
    if not plan.depth_cut and not plan.cluster_drop and not plan.thresholds:
        # Nothing is cut (the common case): one INSERT ... SELECT, all in the database.
        select, params = items.order_by().values_list("id").query.sql_with_params()
        table = ExportItem._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (export_id, item_id, included, reason) "
                f"SELECT %s, candidate.id, %s, %s FROM ({select}) AS candidate",
                [export_id, True, "", *params],
            )
            return cursor.rowcount
    spec = plan.spec
    included = 0
    after = 0
    while True:
        batch = list(
            items.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "origin", "source__name", "generator_model", "generation")[:BATCH]
        )
        if not batch:
            break
        after = batch[-1][0]
        ranks = item_ranks([row[0] for row in batch], spec.seed)
        out: list[tuple[int, int, bool, str]] = []
        for (item_id, origin, source, generator, generation), rank in zip(
            batch, ranks, strict=True
        ):
            s = _stratum(origin, source, generator, generation)
            reason = ""
            if spec.max_generation is not None and s.generation > spec.max_generation:
                reason = REASON_DEPTH
            elif item_id in plan.cluster_drop:
                reason = REASON_CLUSTER
            elif s in plan.thresholds:
                limit = plan.thresholds[s]
                if limit is None or int(rank) > limit:
                    reason = plan.reason_for(s)
            out.append((export_id, item_id, not reason, reason))
            included += not reason
        _insert(out)
    return included


def _insert(rows: list[tuple[int, int, bool, str]]) -> None:
    if connection.vendor == "postgresql":
        # COPY is several times faster than multi-row INSERTs for a million rows, and this
        # runs while the audit chain lock is held.
        copy_rows(ExportItem, ("export_id", "item_id", "included", "reason"), rows)
        return
    ExportItem.objects.bulk_create(
        [ExportItem(export_id=e, item_id=i, included=inc, reason=r) for e, i, inc, r in rows],
        batch_size=2000,
    )


def cluster_summary(edges: Iterable[tuple[int, int]]) -> dict[str, int]:
    """Near-duplicate clusters (connected components of two or more items) among these links."""
    roots, _ = clusters_cap(edges, max_per_cluster=2**62, seed=0)
    sizes = Counter(roots.values())
    return {
        "clusters": len(sizes),
        "items_in_clusters": sum(sizes.values()),
        "largest": max(sizes.values(), default=0),
    }


def left_out_sample(*, export_id: int, per_reason: int) -> dict[str, list[int]]:
    """The first ``per_reason`` left-out item ids of each reason (the full list is the export's
    ExportItem rows)."""
    out: dict[str, list[int]] = defaultdict(list)
    reasons = (
        ExportItem.objects.filter(export_id=export_id, included=False)
        .values_list("reason", flat=True)
        .distinct()
    )
    for reason in sorted(reasons):
        out[reason] = list(
            ExportItem.objects.filter(export_id=export_id, included=False, reason=reason)
            .order_by("item_id")
            .values_list("item_id", flat=True)[:per_reason]
        )
    return dict(out)
