"""The Redis near-duplicate index: batch scripts against the plain commands they replace."""

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


def test_batch_insert_and_query_agree_with_sadd_and_sunion(monkeypatch):
    # given items indexed with the batch script, in several script calls
    monkeypatch.setattr(near_dup_index, "_KEYS_PER_CALL", 50)
    entries = [(100 + n, _keys(n)) for n in range(30)]
    # one item shares two buckets with item 100 and one with item 105
    shared = [*entries[0][1][:2], entries[5][1][2], *_keys(999)[3:]]
    entries.append((200, shared))
    assert near_dup_index.index_add_keys(7, entries) == 31
    # then every bucket holds exactly what SADD would have put there
    client = redis_client()
    for item_id, keys in entries:
        for key in keys:
            assert str(item_id).encode() in client.smembers(near_dup_index._key(7, key))
    # and a batch query returns the SUNION of each item's buckets, empty key lists included
    queries = [entries[0][1], [], shared, _keys(5000), entries[5][1]]
    found = near_dup_index.candidates_many(7, queries)
    expected = [
        {int(m) for m in client.sunion([near_dup_index._key(7, k) for k in keys])}
        if keys
        else set()
        for keys in queries
    ]
    assert found == expected
    assert found[0] == {100, 200} and found[2] == {100, 105, 200} and found[3] == set()
    # and another dataset's key space is separate
    assert near_dup_index.candidates_many(8, queries) == [set()] * len(queries)


def test_batch_insert_is_idempotent_and_matches_signature_insert():
    sig = np.random.default_rng(1).integers(0, 2**32, size=minhash.NUM_PERM, dtype=np.uint32)
    near_dup_index.index_add_many(3, [(42, minhash.to_bytes(sig))])
    near_dup_index.index_add_keys(3, [(42, lsh.band_keys(sig))])
    client = redis_client()
    for key in lsh.band_keys(sig):
        assert client.smembers(near_dup_index._key(3, key)) == {b"42"}
    assert near_dup_index.candidates_many(3, [lsh.band_keys(sig)]) == [{42}]


def test_keys_of_another_length_are_refused():
    with pytest.raises(ValueError, match="9 bytes"):
        near_dup_index.candidates_many(1, [[b"short"]])
    with pytest.raises(ValueError, match="9 bytes"):
        near_dup_index.index_add_keys(1, [(1, [b"x" * 10])])


def test_an_error_reply_read_later_is_raised_and_the_pool_stays_usable():
    # given a bucket key that holds a string, so that the script's SADD fails
    client = redis_client()
    keys = _keys(77)
    client.set(near_dup_index._key(5, keys[0]), "not a set")
    # when the additions are sent, and only then read
    pending = near_dup_index.index_add_keys_send(5, [(1, keys)])
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        pending.wait()
    # then the next calls get whole replies of their own
    client.delete(near_dup_index._key(5, keys[0]))
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
