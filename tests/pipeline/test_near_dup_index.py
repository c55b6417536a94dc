"""The Redis near-duplicate index: batch scripts against the plain commands they replace."""

import math
import statistics

import numpy as np
import pytest
from redis.exceptions import ResponseError

from corpus.redis_client import redis_client
from corpus.scoring import lsh, minhash
from corpus.services import near_dup_index

pytestmark = pytest.mark.django_db


def _keys(seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return lsh.band_keys(rng.integers(0, 2**32, size=minhash.NUM_PERM, dtype=np.uint32))


def _exact(entries: list[tuple[int, list[bytes]]]) -> dict[bytes, set[int]]:
    """What the index stands for: every band key's item ids."""
    buckets: dict[bytes, set[int]] = {}
    for item_id, keys in entries:
        for key in keys:
            buckets.setdefault(key, set()).add(item_id)
    return buckets


def _union(buckets: dict[bytes, set[int]], keys: list[bytes]) -> set[int]:
    return set().union(*(buckets.get(k, set()) for k in keys))


def test_batch_insert_and_query_agree_with_the_exact_buckets(monkeypatch):
    # given items indexed in several script calls, with a load of 4 records per bucket so that
    # the table splits hundreds of times along the way
    monkeypatch.setattr(near_dup_index, "_KEYS_PER_CALL", 50)
    monkeypatch.setattr(near_dup_index, "_LOAD", 4)
    entries = [(100 + n, _keys(n)) for n in range(300)]
    # one item shares two buckets with item 100 and one with item 105
    shared = [*entries[0][1][:2], entries[5][1][2], *_keys(999)[3:]]
    entries.append((200, shared))
    # and one has item 110's digests in other bands: no band key in common
    moved = [bytes([(k[0] + 1) % lsh.NUM_BANDS]) + k[1:] for k in entries[10][1]]
    entries.append((201, moved))
    assert near_dup_index.index_add_keys(7, entries[:150]) == 150
    assert near_dup_index.index_add_keys(7, entries[150:]) == 152
    # then a batch query returns the union of each item's buckets, empty key lists included
    buckets = _exact(entries)
    queries = [keys for _, keys in entries] + [[], _keys(5000)]
    found = near_dup_index.candidates_many(7, queries)
    assert found == [_union(buckets, keys) for keys in queries]
    assert found[0] == {100, 200} and found[300] == {100, 105, 200}
    assert found[10] == {110} and found[301] == {201} and found[-1] == set()
    # and the table grew by splits to about the load per bucket
    stats = near_dup_index.index_stats(7)
    assert stats["fields"] == len(buckets) == 302 * 32 - 3
    assert stats["buckets"] == math.ceil(stats["fields"] / 4)
    # and another dataset's key space is separate
    assert near_dup_index.candidates_many(8, queries) == [set()] * len(queries)


def test_query_and_add_in_one_call_agrees_with_a_query_then_an_addition(monkeypatch):
    """``candidates_and_add`` (what scoring calls) must answer what ``candidates_many`` would
    have answered just before each item was added, and leave the same table."""
    monkeypatch.setattr(near_dup_index, "_KEYS_PER_CALL", 50)
    monkeypatch.setattr(near_dup_index, "_LOAD", 4)
    rng = np.random.default_rng(5)
    base = [(100 + n, _keys(n)) for n in range(200)]
    # later items share a few bands with earlier ones, some of them in the same call
    entries = list(base)
    for n in range(120):
        a, b = (entries[i][1] for i in rng.integers(0, len(entries), size=2))
        entries.append((400 + n, [*a[:2], b[2], *_keys(7000 + n)[3:]]))
    # when dataset 7 is built by the combined call, in three calls, and dataset 8 by a query
    # before each addition, one item at a time
    found = []
    for lo, hi in ((0, 150), (150, 151), (151, len(entries))):
        found += near_dup_index.candidates_and_add(7, entries[lo:hi])
    expected = []
    for item_id, keys in entries:
        expected += near_dup_index.candidates_many(8, [keys])
        near_dup_index.index_add_keys(8, [(item_id, keys)])
    # then every item got the same candidates, and both tables hold the same buckets
    assert found == expected
    assert sum(map(bool, found)) >= 100
    assert near_dup_index.index_stats(7) == near_dup_index.index_stats(8)
    buckets = _exact(entries)
    queries = [keys for _, keys in entries]
    assert near_dup_index.candidates_many(7, queries) == [_union(buckets, k) for k in queries]
    # and adding the same items again adds nothing and never returns an item as its own
    # candidate
    stats = near_dup_index.index_stats(7)
    again = near_dup_index.candidates_and_add(7, entries[:5])
    assert near_dup_index.index_stats(7) == stats
    assert again == [_union(buckets, keys) - {item_id} for item_id, keys in entries[:5]]


def test_buckets_stay_near_the_load_as_the_table_grows(monkeypatch):
    monkeypatch.setattr(near_dup_index, "_LOAD", 16)
    near_dup_index.index_add_keys(4, [(n, _keys(10_000 + n)) for n in range(1, 1001)])
    client = redis_client()
    sizes = [
        client.hlen(near_dup_index._bucket_key(4, b))
        for b in range(near_dup_index.index_stats(4)["buckets"])
    ]
    assert sum(sizes) == 32_000
    assert statistics.mean(sizes) == pytest.approx(16, abs=0.5)
    assert max(sizes) <= 4 * 16  # no bucket a query must read grows with the corpus


def test_batch_insert_is_idempotent_and_matches_signature_insert(monkeypatch):
    monkeypatch.setattr(near_dup_index, "_LOAD", 2)
    sig = np.random.default_rng(1).integers(0, 2**32, size=minhash.NUM_PERM, dtype=np.uint32)
    near_dup_index.index_add_many(3, [(42, minhash.to_bytes(sig))])
    before = near_dup_index.index_stats(3)
    near_dup_index.index_add_keys(3, [(42, lsh.band_keys(sig)), (42, lsh.band_keys(sig))])
    assert near_dup_index.index_stats(3) == before == {**before, "fields": 32}
    assert near_dup_index.candidates_many(3, [lsh.band_keys(sig)]) == [{42}]


def test_large_item_ids_round_trip():
    keys = _keys(3)
    near_dup_index.index_add_keys(2, [(2**62, keys), (2**31 + 5, keys)])
    assert near_dup_index.candidates_many(2, [keys]) == [{2**62, 2**31 + 5}]


def test_keys_of_another_length_are_refused():
    with pytest.raises(ValueError, match="9 bytes"):
        near_dup_index.candidates_many(1, [[b"short"]])
    with pytest.raises(ValueError, match="9 bytes"):
        near_dup_index.index_add_keys(1, [(1, [b"x" * 10])])


def test_an_error_reply_read_later_is_raised_and_the_pool_stays_usable():
    # given the table's one bucket holding a string, so that the script's HSETNX fails
    client = redis_client()
    keys = _keys(77)
    client.set(near_dup_index._bucket_key(5, 0), "not a hash")
    # when the additions are sent, and only then read
    pending = near_dup_index.index_add_keys_send(5, [(1, keys)])
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        pending.wait()
    # then the next calls get whole replies of their own
    client.delete(near_dup_index._bucket_key(5, 0))
    assert near_dup_index.index_add_keys(5, [(1, keys)]) == 1
    assert near_dup_index.candidates_many(5, [keys]) == [{1}]
    assert client.ping()


def test_sent_additions_are_in_the_index_once_waited_for():
    entries = [(300 + n, _keys(400 + n)) for n in range(5)]
    pending = near_dup_index.index_add_keys_send(9, entries)
    assert pending.wait() == 5
    assert near_dup_index.candidates_many(9, [keys for _, keys in entries]) == [
        {item_id} for item_id, _ in entries
    ]
