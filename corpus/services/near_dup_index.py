"""The near-duplicate index: LSH buckets of MinHash signatures in Redis sets.

Every worker on every host sees the same corpus because the buckets live in Redis; the signatures
they are built from live in the database (``Score.minhash``), so ``rebuild_index`` recreates the
index from scratch after a lost Redis. Keys carry the LSH layout version: a new band layout never
matches old buckets.

What is indexed: the items an incoming item is compared with, i.e. its dataset's reference corpus,
approved items and items waiting in the queue. Rejected items are removed.
"""

from collections.abc import Iterable, Sequence

from corpus.redis_client import redis_client
from corpus.scoring import lsh, minhash

PREFIX = f"sg:lsh:{lsh.LSH_VERSION}:"


def _key(dataset_id: int, band_key: bytes) -> bytes:
    return f"{PREFIX}{dataset_id}:".encode() + band_key


class RedisBucketStore:
    """``corpus.scoring.lsh.BucketStore`` on Redis sets, one key space per dataset."""

    def __init__(self, dataset_id: int) -> None:
        self.dataset_id = dataset_id
        self.client = redis_client()

    def add(self, keys: list[bytes], item_id: int) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.sadd(_key(self.dataset_id, key), item_id)
            pipe.execute()

    def candidates(self, keys: list[bytes]) -> set[int]:
        return candidates_many(self.dataset_id, [keys])[0]


def candidates_many(dataset_id: int, keys_per_item: Sequence[list[bytes]]) -> list[set[int]]:
    """Candidates for many items in one round trip: one SUNION over an item's band buckets."""
    client = redis_client()
    with client.pipeline(transaction=False) as pipe:
        for keys in keys_per_item:
            if keys:
                pipe.sunion([_key(dataset_id, key) for key in keys])
        replies = iter(pipe.execute())
    return [{int(m) for m in next(replies)} if keys else set() for keys in keys_per_item]


# One script call adds a whole batch: KEYS[i] gets member ARGV[i]. Far fewer round trips and
# client-side replies than a SADD per band per item.
_ADD_SCRIPT = """
for i, key in ipairs(KEYS) do
  redis.call('SADD', key, ARGV[i])
end
return #KEYS
"""


def index_add_many(dataset_id: int, entries: Iterable[tuple[int, bytes]]) -> int:
    """Index (item id, signature bytes) pairs; idempotent (SADD). Returns how many."""
    script = redis_client().register_script(_ADD_SCRIPT)
    count = 0
    keys: list[bytes] = []
    members: list[int] = []
    for item_id, sig_bytes in entries:
        for key in lsh.band_keys(minhash.from_bytes(sig_bytes)):
            keys.append(_key(dataset_id, key))
            members.append(item_id)
        count += 1
        if len(keys) >= 20_000:
            script(keys=keys, args=members)
            keys, members = [], []
    if keys:
        script(keys=keys, args=members)
    return count


def index_remove_many(dataset_id: int, entries: Iterable[tuple[int, bytes]]) -> None:
    client = redis_client()
    with client.pipeline(transaction=False) as pipe:
        for item_id, sig_bytes in entries:
            for key in lsh.band_keys(minhash.from_bytes(sig_bytes)):
                pipe.srem(_key(dataset_id, key), item_id)
        pipe.execute()


def index_clear(dataset_id: int | None = None) -> int:
    """Delete the buckets of one dataset (or all). Returns the number of keys removed."""
    client = redis_client()
    pattern = f"{PREFIX}{dataset_id}:*" if dataset_id is not None else f"{PREFIX}*"
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += client.unlink(*batch)
            batch.clear()
    if batch:
        removed += client.unlink(*batch)
    return removed
