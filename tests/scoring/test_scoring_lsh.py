"""LSH banding: recall, selectivity, verification, and the pluggable bucket store."""

from __future__ import annotations

import numpy as np

from corpus.scoring import lsh, minhash
from corpus.scoring.synthetic import mutate, random_text


class SetStore:
    """Stand-in for the Redis store: a dict of sets, like SADD/SUNION."""

    def __init__(self) -> None:
        self.sets: dict[bytes, set[int]] = {}

    def add(self, keys: list[bytes], item_id: int) -> None:
        for key in keys:
            self.sets.setdefault(key, set()).add(item_id)

    def candidates(self, keys: list[bytes]) -> set[int]:
        found: set[int] = set()
        for key in keys:
            found |= self.sets.get(key, set())
        return found


def near_duplicate_pairs(rng, vocab, n, low, high):
    """Texts and mutated copies with target shingle Jaccard in [low, high) (see test_minhash)."""
    pairs = []
    for target in rng.uniform(low, high, n):
        base = random_text(rng, vocab, 150)
        q = 1.0 - (2 * target / (1 + target)) ** (1 / minhash.SHINGLE_SIZE)
        pairs.append((base, mutate(rng, base, vocab, q)))
    return pairs


def test_band_layout_meets_the_recall_and_threshold_targets():
    assert lsh.NUM_BANDS * lsh.ROWS_PER_BAND <= minhash.NUM_PERM
    # Word-bigram Jaccard of a copy with <= 10% of its words edited is >= 0.69 (1st percentile,
    # tests/scoring/test_near_duplicate_edits.py); unrelated texts sit near 0.01 to 0.03.
    assert lsh.candidate_probability(0.69) >= 0.999
    assert lsh.candidate_probability(0.5) >= 0.85
    assert lsh.candidate_probability(0.03) <= 1e-4
    threshold = (1 / lsh.NUM_BANDS) ** (1 / lsh.ROWS_PER_BAND)
    assert 0.35 <= threshold <= 0.5


def test_band_keys_are_one_compact_key_per_band(rng, vocab):
    sig = minhash.signature(minhash.shingles(random_text(rng, vocab, 50)))
    keys = lsh.band_keys(sig)
    assert len(keys) == lsh.NUM_BANDS
    assert all(len(k) == lsh.BAND_KEY_BYTES == 9 for k in keys)
    assert [k[0] for k in keys] == list(range(lsh.NUM_BANDS))
    assert lsh.band_keys(sig.copy()) == keys  # a pure function of the signature


def test_empty_text_has_no_band_keys():
    assert lsh.band_keys(minhash.signature(minhash.shingles(""))) == []


def test_recall_is_at_least_95pct_for_jaccard_at_least_08(rng, vocab):
    pairs = near_duplicate_pairs(rng, vocab, 600, 0.78, 1.0)
    index = lsh.LSHIndex()
    distractors = [random_text(rng, vocab, 150) for _ in range(500)]
    for item_id, sig in enumerate(minhash.signatures(distractors), start=10_000):
        index.insert(item_id, sig)
    bases = minhash.signatures([a for a, _ in pairs])
    copies = minhash.signatures([b for _, b in pairs])
    for item_id, sig in enumerate(bases):
        index.insert(item_id, sig)

    found = []
    for item_id, ((a, b), sig) in enumerate(zip(pairs, copies, strict=True)):
        j = minhash.exact_jaccard(minhash.shingles(a), minhash.shingles(b))
        if j >= 0.8:
            found.append(item_id in index.query(sig))
    assert len(found) > 400
    assert np.mean(found) >= 0.95


def test_unrelated_texts_are_rarely_candidates(rng, vocab):
    index = lsh.LSHIndex()
    texts = [random_text(rng, vocab, 150) for _ in range(600)]
    sigs = minhash.signatures(texts)
    for item_id, sig in enumerate(sigs[:300]):
        index.insert(item_id, sig)
    false_candidates = sum(len(index.query(sig)) for sig in sigs[300:])
    assert false_candidates <= 3


def test_verified_near_duplicates_are_never_below_threshold(rng, vocab):
    threshold = 0.7
    query_text = random_text(rng, vocab, 150)
    variants = {
        i: mutate(rng, query_text, vocab, rate) for i, rate in enumerate(np.linspace(0, 0.2, 40))
    }
    index = lsh.LSHIndex()
    for item_id, sig in zip(variants, minhash.signatures(list(variants.values())), strict=True):
        index.insert(item_id, sig)
    query = minhash.shingles(query_text)
    candidates = index.query(minhash.signature(query))
    shingles = {i: minhash.shingles(variants[i]) for i in candidates}

    result = lsh.near_duplicates(query, shingles, threshold)

    exact = {i: minhash.exact_jaccard(query, s) for i, s in shingles.items()}
    assert [i for i, _ in result] == sorted(
        (i for i, j in exact.items() if j >= threshold), key=lambda i: (-exact[i], i)
    )
    assert all(j >= threshold for _, j in result)
    assert any(j < threshold for j in exact.values())  # LSH did propose some to reject
    assert lsh.near_duplicates(query, list(shingles.items()), threshold) == result


def test_index_works_on_any_bucket_store(rng, vocab):
    store = SetStore()
    assert isinstance(store, lsh.BucketStore)
    assert isinstance(lsh.InMemoryBucketStore(), lsh.BucketStore)
    index = lsh.LSHIndex(store)
    text = random_text(rng, vocab, 120)
    sig = minhash.signature(minhash.shingles(text))
    index.insert(1, sig)
    index.insert(1, sig)  # idempotent
    assert index.query(sig) == {1}
    assert all(members == {1} for members in store.sets.values())
    assert len(store.sets) == lsh.NUM_BANDS


def test_query_and_insert_returns_earlier_items_but_not_itself(rng, vocab):
    index = lsh.LSHIndex()
    text = random_text(rng, vocab, 120)
    sig = minhash.signature(minhash.shingles(text))
    assert index.query_and_insert(1, sig) == set()
    assert index.query_and_insert(2, sig) == {1}
    assert index.query_and_insert(2, sig) == {1}  # running twice changes nothing
    assert index.query(sig) == {1, 2}


def test_in_memory_store_add_is_idempotent_and_discard_removes():
    store = lsh.InMemoryBucketStore()
    store.add([b"k1", b"k2"], 1)
    store.add([b"k1"], 1)
    store.add([b"k1"], 2)
    assert store.candidates([b"k1"]) == {1, 2}
    assert store.candidates([b"k2", b"nope"]) == {1}
    store.discard([b"k1", b"k2"], 1)
    assert store.candidates([b"k1", b"k2"]) == {2}
    store.discard([b"k1"], 2)
    assert store.candidates([b"k1"]) == set()
    assert len(store) == 0


def test_batch_candidates_equal_querying_then_inserting_in_turn(rng, vocab):
    # given a batch with near-copies, exact copies, unrelated texts and an empty text
    base = [random_text(rng, vocab, 60) for _ in range(8)]
    texts = base + [mutate(rng, t, vocab, 0.05) for t in base[:5]] + base[:2] + [""]
    rng.shuffle(texts)
    sigs = [minhash.signature(minhash.shingles(t)) for t in texts]
    keys = [lsh.band_keys(s) for s in sigs]
    # when candidates are found for the whole batch at once
    found = lsh.batch_candidates(keys)
    # then each item gets what an in-memory index filled in batch order would give
    index = lsh.LSHIndex()
    expected = [index.query_and_insert(n, s) for n, s in enumerate(sigs)]
    assert found == expected
    assert sum(map(len, found)) >= 4  # the copies did collide
    assert lsh.batch_candidates([]) == [] and lsh.batch_candidates([[], []]) == [set(), set()]


def test_band_keys_of_many_signatures_equal_one_at_a_time(rng):
    # given signatures of texts, one of them the empty text's
    sigs = rng.integers(0, 2**32, size=(6, minhash.NUM_PERM), dtype=np.uint32)
    sigs[2] = minhash.EMPTY_SIGNATURE
    # when their band keys are computed together
    got = lsh.band_keys_many(sigs)
    # then each is what band_keys gives the signature alone, and the empty one has none
    assert got == [lsh.band_keys(sig) for sig in sigs]
    assert got[2] == []
    assert lsh.band_keys_many(np.empty((0, minhash.NUM_PERM), dtype=np.uint32)) == []
