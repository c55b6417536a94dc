"""The export policy: its JSON document, its versions, and the pure arithmetic of applying it.

The policy says what share of an export may be synthetic or of unknown origin, how much must be
human, how much any one source or generator may contribute (a share of the export or a count),
how deep a generation chain may go, and how many items of one near-duplicate cluster may stay.

Applying it (``quotas_plan``) works on strata: the approved items grouped by (origin, source,
generator, generation). A cap that binds scales its whole group down proportionally, stratum by
stratum (largest remainder), so what is left keeps the group's composition; caps interact (cutting
synthetic items raises every human source's share), so they are applied repeatedly until none
binds. Every step only removes items, so this ends, at the latest when nothing is left. Which
items of a stratum stay is decided by ``item_ranks``: a seeded bijective 64-bit hash of the item
id; the items with the smallest ranks stay. The same seed and the same approved items therefore
always give the same sample, and a different seed gives an independent one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import numpy as np
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from corpus.models import Dataset, ExportPolicy, Item
from corpus.services.audit import audit_append, audit_lock

Share = Field(default=None, ge=0.0, le=1.0)


class PolicyError(ValueError):
    """An invalid policy document: ``errors`` are ``{"field", "message"}`` dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e.get('field', '')}: {e['message']}" for e in errors))
        self.errors = errors


class Cap(BaseModel):
    """At most ``share`` of the export, or at most ``count`` items: exactly one of the two."""

    model_config = ConfigDict(extra="forbid", strict=True)

    share: float | None = Share
    count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Cap:
        if (self.share is None) == (self.count is None):
            raise ValueError("give exactly one of 'share' (0 to 1) or 'count' (items)")
        return self


class PolicySpec(BaseModel):
    """The policy document, as ``GET``/``PUT /api/v1/datasets/{slug}/export-policy/`` carry it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["accumulate", "delta"] = "accumulate"
    max_synthetic_share: float | None = Share
    max_unknown_share: float | None = Share
    min_human_share: float | None = Share
    source_caps: dict[str, Cap] = Field(default_factory=dict)
    generator_caps: dict[str, Cap] = Field(default_factory=dict)
    max_generation: int | None = Field(default=None, ge=0)
    max_per_cluster: int | None = Field(default=None, ge=1)
    on_violation: Literal["sample", "block"] = "sample"
    seed: int = Field(default=0, ge=0, le=2**63 - 1)

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for caps in ("source_caps", "generator_caps"):
            data[caps] = {
                name: {k: v for k, v in cap.items() if v is not None}
                for name, cap in data[caps].items()
            }
        return data


def policy_parse(raw: Any) -> PolicySpec:
    """Validate a policy document; PolicyError lists every bad field (``source_caps.web.share``)."""
    if not isinstance(raw, dict):
        raise PolicyError([{"message": "the policy must be a JSON object"}])
    try:
        return PolicySpec.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = [str(part) for part in err["loc"]]
            message = err["msg"].removeprefix("Value error, ")
            errors.append(
                {"field": ".".join(loc), "message": message} if loc else {"message": message}
            )
        raise PolicyError(errors) from None


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    spec: PolicySpec
    row: ExportPolicy | None  # None: the built-in default, version 0

    @property
    def created_by(self) -> str | None:
        return self.row.created_by if self.row else None

    @property
    def created_at(self) -> Any:
        return self.row.created_at if self.row else None


def policy_current(*, dataset: Dataset) -> PolicyVersion:
    """The newest version, or version 0 (no caps, accumulate, sample) when none was ever set."""
    row = ExportPolicy.objects.filter(dataset=dataset).order_by("-version").first()
    if row is None:
        return PolicyVersion(version=0, spec=PolicySpec(), row=None)
    return PolicyVersion(version=row.version, spec=PolicySpec.model_validate(row.spec), row=row)


@transaction.atomic
def policy_set(*, dataset: Dataset, raw: Any, actor: str) -> PolicyVersion:
    """Validate and store a new version (every call makes one), audited in the same transaction.

    Holds the audit chain lock while numbering so two concurrent PUTs get consecutive versions.
    """
    spec = policy_parse(raw)
    audit_lock()
    last = ExportPolicy.objects.filter(dataset=dataset).order_by("-version").first()
    version = (last.version if last else 0) + 1
    row = ExportPolicy.objects.create(
        dataset=dataset, version=version, spec=spec.as_json(), created_by=actor
    )
    audit_append(
        actor=actor,
        action="export_policy.updated",
        object_type="export_policy",
        object_id=f"{dataset.slug}:v{version}",
        dataset=dataset,
        payload={"version": version, "spec": spec.as_json()},
    )
    return PolicyVersion(version=version, spec=spec, row=row)


# --- Applying a policy: pure functions, no database. ---------------------------------------


class Stratum(NamedTuple):
    origin: str
    source: str
    generator: str  # "" when the item names no generator model
    generation: int


@dataclass(frozen=True)
class Constraint:
    name: str  # as reported in manifests: max_synthetic_share, source_caps[web], ...
    member: Callable[[Stratum], bool]
    kind: Literal["max_share", "min_share", "max_count"]
    bound: Fraction | int


def constraints_of(spec: PolicySpec) -> list[Constraint]:
    out: list[Constraint] = []

    def share(value: float) -> Fraction:
        # Fraction(str(x)) keeps 0.3 as 3/10, so "at most 30%" is checked exactly.
        return Fraction(str(value))

    if spec.max_synthetic_share is not None:
        out.append(
            Constraint(
                "max_synthetic_share",
                lambda s: s.origin == Item.Origin.SYNTHETIC,
                "max_share",
                share(spec.max_synthetic_share),
            )
        )
    if spec.max_unknown_share is not None:
        out.append(
            Constraint(
                "max_unknown_share",
                lambda s: s.origin == Item.Origin.UNKNOWN,
                "max_share",
                share(spec.max_unknown_share),
            )
        )
    if spec.min_human_share is not None:
        out.append(
            Constraint(
                "min_human_share",
                lambda s: s.origin == Item.Origin.HUMAN,
                "min_share",
                share(spec.min_human_share),
            )
        )
    for attr, caps in (("source", spec.source_caps), ("generator", spec.generator_caps)):
        for name in sorted(caps):
            cap = caps[name]

            def member(s: Stratum, attr: str = attr, name: str = name) -> bool:
                return getattr(s, attr) == name

            label = f"{attr}_caps[{name}]"
            if cap.count is not None:
                out.append(Constraint(label, member, "max_count", cap.count))
            else:
                assert cap.share is not None
                out.append(Constraint(label, member, "max_share", share(cap.share)))
    return out


def _violation(c: Constraint, group: int, total: int) -> str | None:
    """Why ``group`` items of ``total`` break ``c``, or None when they do not."""
    if c.kind == "max_count":
        if group > c.bound:
            return f"{c.name}: {group} items, at most {c.bound} allowed"
        return None
    if total == 0:
        return None
    ratio = Fraction(group, total)
    if c.kind == "max_share" and ratio > c.bound:
        return f"{c.name}: {float(ratio):.1%} of {total} items, at most {float(c.bound):.1%}"
    if c.kind == "min_share" and ratio < c.bound:
        return f"{c.name}: {float(ratio):.1%} of {total} items, at least {float(c.bound):.1%}"
    return None


def violations(counts: Mapping[Stratum, int], spec: PolicySpec) -> list[str]:
    """Every share and count cap these stratum counts break (empty: the counts comply)."""
    total = sum(counts.values())
    out = []
    for c in constraints_of(spec):
        group = sum(n for s, n in counts.items() if c.member(s))
        problem = _violation(c, group, total)
        if problem:
            out.append(problem)
    return out


def _apportion(
    counts: dict[Stratum, int], strata: list[Stratum], target: int
) -> dict[Stratum, int]:
    """Scale ``strata`` down to ``target`` items in proportion to their counts (largest
    remainder; ties by stratum order, so the result is deterministic)."""
    current = sum(counts[s] for s in strata)
    if current == 0:
        return dict.fromkeys(strata, 0)
    exact = {s: Fraction(counts[s] * target, current) for s in strata}
    floors = {s: int(exact[s]) for s in strata}
    left = target - sum(floors.values())
    for s in sorted(strata, key=lambda s: (-(exact[s] - floors[s]), s))[:left]:
        floors[s] += 1
    return floors


@dataclass
class QuotaPlan:
    """How many items of each stratum stay, and which caps cut the strata that lost items."""

    available: dict[Stratum, int]
    quotas: dict[Stratum, int]
    reasons: dict[Stratum, list[str]] = field(default_factory=dict)

    @property
    def cut(self) -> dict[Stratum, int]:
        return {s: n - self.quotas[s] for s, n in self.available.items() if self.quotas[s] < n}


def quotas_plan(available: Mapping[Stratum, int], spec: PolicySpec) -> QuotaPlan:
    """The largest proportional sub-counts of ``available`` that break no share or count cap."""
    counts = {s: n for s, n in available.items() if n > 0}
    strata = sorted(counts)
    reasons: dict[Stratum, set[str]] = defaultdict(set)
    constraints = constraints_of(spec)
    changed = True
    while changed:
        changed = False
        for c in constraints:
            members = [s for s in strata if c.member(s)]
            others = [s for s in strata if not c.member(s)]
            group = sum(counts[s] for s in members)
            rest = sum(counts[s] for s in others)
            if c.kind == "max_count":
                scaled, target = members, min(group, int(c.bound))
            elif c.kind == "max_share":
                # group <= share * (group + rest)  <=>  group * (1 - share) <= share * rest
                limit = group if c.bound >= 1 else int(c.bound * rest / (1 - c.bound))
                scaled, target = members, min(group, limit)
            else:
                # group >= share * (group + rest)  <=>  rest * share <= group * (1 - share);
                # human items cannot be added, so the others are scaled down.
                limit = rest if c.bound == 0 else int(group * (1 - c.bound) / c.bound)
                scaled, target = others, min(rest, limit)
            current = sum(counts[s] for s in scaled)
            if target >= current:
                continue
            new = _apportion(counts, scaled, target)
            for s in scaled:
                if new[s] < counts[s]:
                    reasons[s].add(c.name)
                counts[s] = new[s]
            changed = True
    quotas = {s: counts.get(s, 0) for s in available}
    return QuotaPlan(
        available=dict(available),
        quotas=quotas,
        reasons={s: sorted(r) for s, r in reasons.items() if quotas[s] < available[s]},
    )


# Sampling ranks: seeded, bijective on 64-bit ids, identical on every machine.

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def seed_mask(seed: int) -> np.uint64:
    digest = hashlib.sha256(f"synthgate-export-sample:{seed}".encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


def item_ranks(ids: Iterable[int] | np.ndarray, seed: int) -> np.ndarray:
    """The sampling rank of each id: MurmurHash3's fmix64 of (id XOR a mask derived from the
    seed). fmix64 is a bijection, so two items never share a rank and the order is total."""
    x = np.asarray(ids, dtype=np.uint64) ^ seed_mask(seed)
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


def rank_threshold(ranks: np.ndarray, keep: int) -> int | None:
    """The largest rank that stays when ``keep`` of these items stay (None: none stays)."""
    if keep <= 0:
        return None
    if keep >= ranks.size:
        return int(ranks.max()) if ranks.size else None
    return int(np.partition(ranks, keep - 1)[keep - 1])


def clusters_cap(
    edges: Iterable[tuple[int, int]], max_per_cluster: int, seed: int
) -> tuple[dict[int, int], set[int]]:
    """Connected components of near-duplicate links among candidate items, and the members to
    drop so that at most ``max_per_cluster`` of each stay (those with the smallest ranks).

    Returns (item id -> cluster root id, ids to drop). Memory is proportional to the linked
    items only; unlinked items are singletons and never dropped.
    """
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    roots = {}
    for x in parent:
        roots[x] = find(x)
        members[roots[x]].append(x)
    drop: set[int] = set()
    for group in members.values():
        if len(group) > max_per_cluster:
            ids = np.array(sorted(group), dtype=np.uint64)
            order = np.argsort(item_ranks(ids, seed), kind="stable")
            drop.update(int(i) for i in ids[order[max_per_cluster:]])
    return roots, drop
