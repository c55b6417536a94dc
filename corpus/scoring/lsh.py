"""Locality-sensitive hashing (banding) over MinHash signatures.

Banding
    The signature is cut into `NUM_BANDS` bands of `ROWS_PER_BAND` values; two items become
    candidates when any band matches exactly. For Jaccard similarity s, one band matches with
    probability s**r, so

        P(candidate | s) = 1 - (1 - s**r) ** b,

    an S-curve whose steepest point is near the threshold t ~ (1 / b) ** (1 / r).

    With 128 permutations we use b = 32 bands of r = 4 rows (all 128 values):

        s     0.05    0.1     0.2     0.3     0.4     0.5     0.6     0.7     0.8
        P     0.0002  0.003   0.050   0.23    0.56    0.87    0.988   0.9998  1.000

    t ~ 0.42. The curve is set for word-bigram shingles (`minhash`): copies with up to 10% of
    their words edited keep Jaccard >= 0.69 (1st percentile on 1 KB English texts), where a
    pair becomes a candidate with probability >= 0.999, while unrelated texts of one domain
    (Jaccard mostly below 0.03, at most 0.09 measured) rarely cost a verification: about one
    candidate per million indexed items at J = 0.02, so the query stays flat in corpus size.
    (Word 5-grams used 21 x 6, t ~ 0.60; for bigram Jaccard that curve would miss a quarter of
    the pairs at 0.5.)

Verification
    LSH only proposes candidates; `near_duplicates` keeps those whose exact Jaccard (on shingles
    recomputed from their text) reaches the threshold, so a reported near-duplicate is never below
    it. Estimated Jaccard on signatures (`minhash.estimate_jaccard`) is a cheaper filter when the
    texts are not at hand, with the binomial error documented in `minhash`.

Storage
    `band_keys` gives one 9-byte key per band: the band index, then the xxh3_64 digest of the
    band's values. Buckets can live anywhere implementing `BucketStore`; this module ships an
    in-memory one, and the Django side implements the same protocol on Redis sets (the key is the
    bucket, the members are item ids) under its own key prefix. That prefix should include
    `LSH_VERSION`, because keys from different band layouts or signature seeds never match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import xxhash

from . import minhash
from .minhash import containment, exact_jaccard

__all__ = [
    "BAND_KEY_BYTES",
    "LSH_VERSION",
    "NUM_BANDS",
    "ROWS_PER_BAND",
    "BucketStore",
    "InMemoryBucketStore",
    "LSHIndex",
    "band_keys",
    "band_keys_many",
    "batch_candidates",
    "candidate_probability",
    "near_duplicate_matches",
    "near_duplicates",
]

NUM_BANDS = 32
ROWS_PER_BAND = 4
assert NUM_BANDS * ROWS_PER_BAND <= minhash.NUM_PERM
assert NUM_BANDS < 256  # the band index is one byte of the key
_BAND_BYTES = ROWS_PER_BAND * minhash.SIGNATURE_DTYPE.itemsize
_BAND_PREFIX = [bytes([i]) for i in range(NUM_BANDS)]
# Every key returned by `band_keys`: one band-index byte and an 8-byte xxh3_64 digest.
BAND_KEY_BYTES = 9

# Bump when the band layout, the key format or the MinHash scheme changes.
LSH_VERSION = f"b{NUM_BANDS}r{ROWS_PER_BAND}-{minhash.SHINGLING_VERSION}"


def candidate_probability(s: float, bands: int = NUM_BANDS, rows: int = ROWS_PER_BAND) -> float:
    """Probability that two items with Jaccard similarity `s` share at least one band."""
    return 1.0 - (1.0 - s**rows) ** bands


def band_keys(sig: np.ndarray) -> list[bytes]:
    """One bucket key per band: band index byte + xxh3_64 digest of the band (9 bytes).

    An empty signature (text with no shingles) has no keys: it would otherwise put every empty
    text into one giant bucket, and empty texts are already caught by the exact content hash.
    """
    if minhash.is_empty(sig):
        return []
    raw = sig.astype(minhash.SIGNATURE_DTYPE, copy=False).tobytes()
    digest = xxhash.xxh3_64_digest
    return [
        _BAND_PREFIX[i] + digest(raw[i * _BAND_BYTES : (i + 1) * _BAND_BYTES])
        for i in range(NUM_BANDS)
    ]


def band_keys_many(sigs: np.ndarray) -> list[list[bytes]]:
    """`[band_keys(sig) for sig in sigs]` for a (n, NUM_PERM) array of signatures: the empty
    ones found in one numpy call and every row serialized at once, instead of a comparison and
    a conversion per signature."""
    sigs = np.asarray(sigs, dtype=minhash.SIGNATURE_DTYPE)
    empty = (sigs == minhash.EMPTY_SIGNATURE).all(axis=1).tolist()
    raw = sigs[:, : NUM_BANDS * ROWS_PER_BAND].tobytes()
    digest = xxhash.xxh3_64_digest
    offsets = [(prefix, i * _BAND_BYTES) for i, prefix in enumerate(_BAND_PREFIX)]
    width = NUM_BANDS * _BAND_BYTES
    out: list[list[bytes]] = []
    for row, is_empty in enumerate(empty):
        if is_empty:
            out.append([])
            continue
        base = row * width
        out.append(
            [prefix + digest(raw[base + o : base + o + _BAND_BYTES]) for prefix, o in offsets]
        )
    return out


@runtime_checkable
class BucketStore(Protocol):
    """Where LSH buckets live. Must be safe to call `add` twice with the same arguments."""

    def add(self, keys: list[bytes], item_id: int) -> None:
        """Put `item_id` into the bucket of every key."""

    def candidates(self, keys: list[bytes]) -> set[int]:
        """Union of the members of the buckets of `keys`."""


class InMemoryBucketStore:
    """Dict-backed `BucketStore` for tests, benchmarks and single-process use.

    A bucket holding one item stores the bare int instead of a set: almost every bucket is a
    singleton (unrelated texts do not collide), and this keeps a million indexed items at about
    2 GB instead of 6.
    """

    def __init__(self) -> None:
        self._buckets: dict[bytes, int | set[int]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def add(self, keys: list[bytes], item_id: int) -> None:
        buckets = self._buckets
        for key in keys:
            members = buckets.get(key)
            if members is None:
                buckets[key] = item_id
            elif isinstance(members, int):
                if members != item_id:
                    buckets[key] = {members, item_id}
            else:
                members.add(item_id)

    def candidates(self, keys: list[bytes]) -> set[int]:
        found: set[int] = set()
        buckets = self._buckets
        for key in keys:
            members = buckets.get(key)
            if members is None:
                continue
            if isinstance(members, int):
                found.add(members)
            else:
                found |= members
        return found

    def discard(self, keys: list[bytes], item_id: int) -> None:
        """Remove `item_id` from the buckets of `keys` (no error if absent)."""
        buckets = self._buckets
        for key in keys:
            members = buckets.get(key)
            if members == item_id:
                del buckets[key]
            elif isinstance(members, set):
                members.discard(item_id)
                if len(members) == 1:
                    buckets[key] = next(iter(members))


class LSHIndex:
    """Candidate search over MinHash signatures on top of any `BucketStore`."""

    def __init__(self, store: BucketStore | None = None) -> None:
        self.store: BucketStore = store if store is not None else InMemoryBucketStore()

    def insert(self, item_id: int, sig: np.ndarray) -> None:
        """Index `item_id` under the bands of `sig` (idempotent)."""
        keys = band_keys(sig)
        if keys:
            self.store.add(keys, item_id)

    def query(self, sig: np.ndarray) -> set[int]:
        """Ids of indexed items sharing at least one band with `sig` (unverified candidates)."""
        keys = band_keys(sig)
        return self.store.candidates(keys) if keys else set()

    def query_and_insert(self, item_id: int, sig: np.ndarray) -> set[int]:
        """Candidates for `sig` among items indexed so far, then index it; the ingest hot path.

        Computes the band keys once. `item_id` itself is not among the returned candidates.
        """
        keys = band_keys(sig)
        if not keys:
            return set()
        found = self.store.candidates(keys)
        self.store.add(keys, item_id)
        found.discard(item_id)
        return found


def batch_candidates(keys_per_item: Sequence[list[bytes]]) -> list[set[int]]:
    """For each item of a batch, the positions of the earlier items sharing a band key with it.

    The same sets as querying then inserting each item in turn into an empty `LSHIndex`
    (`query_and_insert`), but with one sort of all the batch's keys instead of 42 dict
    operations per item: only the keys that occur more than once are looked at in Python.
    Every key must be `BAND_KEY_BYTES` long (as `band_keys` makes them).
    """
    found: list[set[int]] = [set() for _ in keys_per_item]
    lengths = np.fromiter(map(len, keys_per_item), dtype=np.int64, count=len(keys_per_item))
    total = int(lengths.sum())
    if total == 0:
        return found
    blob = b"".join(b"".join(keys) for keys in keys_per_item)
    if len(blob) != total * BAND_KEY_BYTES:
        raise ValueError(f"band keys must be {BAND_KEY_BYTES} bytes")
    keys = np.frombuffer(blob, dtype=np.dtype((np.void, BAND_KEY_BYTES)))
    owners = np.repeat(np.arange(len(keys_per_item)), lengths)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    shared = counts[inverse] > 1
    buckets: dict[int, list[int]] = {}
    # Owners ascend, so each bucket lists its items in batch order.
    for bucket, owner in zip(inverse[shared].tolist(), owners[shared].tolist(), strict=True):
        buckets.setdefault(bucket, []).append(owner)
    for members in buckets.values():
        for i in range(1, len(members)):
            found[members[i]].update(m for m in members[:i] if m != members[i])
    return found


def near_duplicates(
    query_shingles: np.ndarray,
    candidate_shingles: Mapping[int, np.ndarray] | Iterable[tuple[int, np.ndarray]],
    threshold: float,
) -> list[tuple[int, float]]:
    """Candidates whose exact Jaccard with the query is >= `threshold`, most similar first.

    This is the verification step after `LSHIndex.query`: LSH has false positives (and, with
    probability given by the S-curve, false negatives); the exact check removes the former, so
    nothing below the threshold is ever reported.
    """
    items = (
        candidate_shingles.items()
        if isinstance(candidate_shingles, Mapping)
        else (candidate_shingles)
    )
    kept = []
    for item_id, cand in items:
        j = exact_jaccard(query_shingles, cand)
        if j >= threshold:
            kept.append((item_id, j))
    kept.sort(key=lambda pair: (-pair[1], pair[0]))
    return kept


def near_duplicate_matches(
    query_shingles: np.ndarray,
    candidate_shingles: Mapping[int, np.ndarray] | Iterable[tuple[int, np.ndarray]],
    threshold: float,
) -> list[tuple[int, float, float]]:
    """`near_duplicates` with each match's containment beside its Jaccard:
    (id, jaccard, containment), most similar (by Jaccard, then smaller id) first."""
    pool = dict(
        candidate_shingles.items()
        if isinstance(candidate_shingles, Mapping)
        else candidate_shingles
    )
    return [
        (item_id, j, containment(query_shingles, pool[item_id]))
        for item_id, j in near_duplicates(query_shingles, pool, threshold)
    ]
