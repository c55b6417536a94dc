"""Property tests of the policy arithmetic (pure: no database)."""

import hashlib
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.services.exports.merkle import EMPTY_ROOT, leaf_hash, merkle_root, node_hash
from corpus.services.policy import (
    PolicySpec,
    Stratum,
    clusters_cap,
    item_ranks,
    quotas_plan,
    rank_threshold,
    violations,
)

ORIGINS = ["human", "synthetic", "unknown"]
SOURCES = ["web", "books", "pipe"]
GENERATORS = ["", "gpt", "llama"]

strata = st.dictionaries(
    st.builds(
        Stratum,
        st.sampled_from(ORIGINS),
        st.sampled_from(SOURCES),
        st.sampled_from(GENERATORS),
        st.integers(0, 3),
    ),
    st.integers(0, 400),
    max_size=20,
)
share = st.none() | st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 3))
cap = st.one_of(
    st.builds(lambda s: {"share": s}, st.floats(0, 1).map(lambda x: round(x, 3))),
    st.builds(lambda c: {"count": c}, st.integers(0, 500)),
)
policies = st.builds(
    lambda syn, unk, human, source_caps, generator_caps: PolicySpec.model_validate(
        {
            "max_synthetic_share": syn,
            "max_unknown_share": unk,
            "min_human_share": human,
            "source_caps": source_caps,
            "generator_caps": generator_caps,
        }
    ),
    share,
    share,
    share,
    st.dictionaries(st.sampled_from(SOURCES), cap, max_size=3),
    st.dictionaries(st.sampled_from(GENERATORS[1:]), cap, max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(available=strata, spec=policies)
def test_no_cap_is_ever_exceeded(available, spec):
    # Given any approved strata and any policy
    # When the quotas are planned
    plan = quotas_plan(available, spec)
    # Then no stratum gains items, and the kept counts break no cap
    assert all(0 <= plan.quotas[s] <= n for s, n in available.items())
    kept = {s: n for s, n in plan.quotas.items() if n}
    assert violations(kept, spec) == []
    total = sum(kept.values())
    if spec.max_synthetic_share is not None and total:
        synthetic = sum(n for s, n in kept.items() if s.origin == "synthetic")
        assert Fraction(synthetic, total) <= Fraction(str(spec.max_synthetic_share))


@settings(max_examples=200, deadline=None)
@given(available=strata, spec=policies)
def test_every_cut_stratum_names_the_caps_that_cut_it(available, spec):
    plan = quotas_plan(available, spec)
    for s, cut in plan.cut.items():
        assert cut > 0
        assert plan.reasons[s], f"{s} lost {cut} items with no reason"


@settings(max_examples=100, deadline=None)
@given(available=strata)
def test_a_policy_without_caps_keeps_everything(available):
    plan = quotas_plan(available, PolicySpec())
    assert plan.quotas == available
    assert plan.cut == {}


def test_a_binding_cap_scales_its_group_proportionally():
    # Given 60 synthetic items in two sources (40 + 20) and 40 human items
    available = {
        Stratum("synthetic", "a", "gpt", 1): 40,
        Stratum("synthetic", "b", "gpt", 1): 20,
        Stratum("human", "web", "", 0): 40,
    }
    # When synthetic items may be at most half
    plan = quotas_plan(available, PolicySpec(max_synthetic_share=0.5))
    # Then 40 synthetic items stay, split 2:1 like before, and every human item stays
    assert plan.quotas[Stratum("synthetic", "a", "gpt", 1)] == 27
    assert plan.quotas[Stratum("synthetic", "b", "gpt", 1)] == 13
    assert plan.quotas[Stratum("human", "web", "", 0)] == 40
    assert plan.reasons[Stratum("synthetic", "a", "gpt", 1)] == ["max_synthetic_share"]


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(st.integers(1, 2**40), min_size=1, max_size=300, unique=True),
    seed=st.integers(0, 2**63 - 1),
    keep_fraction=st.floats(0, 1),
)
def test_same_seed_same_sample(ids, seed, keep_fraction):
    # Given the same ids and seed, in any order
    keep = int(len(ids) * keep_fraction)

    def sample(order):
        ranks = item_ranks(order, seed)
        limit = rank_threshold(ranks, keep)
        return {i for i, r in zip(order, ranks, strict=True) if limit is not None and r <= limit}

    # When sampled twice
    first, second = sample(ids), sample(list(reversed(ids)))
    # Then the sample is the same, of exactly the quota
    assert first == second
    assert len(first) == keep


def test_different_seeds_give_different_samples():
    ids = np.arange(1, 1001, dtype=np.uint64)
    samples = []
    for seed in (0, 1, 2):
        ranks = item_ranks(ids, seed)
        samples.append(set(ids[ranks <= rank_threshold(ranks, 100)].tolist()))
    assert samples[0] != samples[1] != samples[2]
    # Independent samples of 10% overlap by about 10% of their size, not by most of it.
    assert len(samples[0] & samples[1]) < 40


def test_ranks_are_a_bijection():
    ids = np.arange(0, 200_000, dtype=np.uint64)
    assert np.unique(item_ranks(ids, 5)).size == ids.size


@settings(max_examples=200, deadline=None)
@given(
    edges=st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), max_size=80),
    cap_size=st.integers(1, 4),
    seed=st.integers(0, 10),
)
def test_cluster_cap_leaves_at_most_k_per_component(edges, cap_size, seed):
    roots, drop = clusters_cap(edges, cap_size, seed)
    kept_per_root: dict[int, int] = {}
    for item, root in roots.items():
        if item not in drop:
            kept_per_root[root] = kept_per_root.get(root, 0) + 1
    assert all(n <= cap_size for n in kept_per_root.values())
    # Every component keeps min(size, k): nothing more is dropped than needed.
    sizes: dict[int, int] = {}
    for root in roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    assert all(kept_per_root.get(r, 0) == min(n, cap_size) for r, n in sizes.items())
    # The same seed drops the same items.
    assert clusters_cap(edges, cap_size, seed)[1] == drop


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash, written recursively as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0].hex())
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_streaming_merkle_root_is_rfc6962(leaves):
    assert merkle_root([leaf.hex() for leaf in leaves]) == _mth(leaves).hex()


def test_merkle_root_depends_on_order_and_has_no_duplicate_last_collision():
    a, b, c = (hashlib.sha256(x).hexdigest() for x in (b"a", b"b", b"c"))
    assert merkle_root([a, b, c]) != merkle_root([b, a, c])
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([]) == EMPTY_ROOT
