"""The near-duplicate index: LSH buckets of MinHash signatures in Redis sets.

Every worker on every host sees the same corpus because the buckets live in Redis; the signatures
they are built from live in the database (``Score.minhash``), so ``rebuild_index`` recreates the
index from scratch after a lost Redis. Keys carry the LSH layout version: a new band layout never
matches old buckets.

What is indexed: every item scored successfully, whatever its state (reference, approved, queued,
rejected), so that a match is found whichever of two items is scored second: near-duplicate
evidence must not depend on the order items were scored in. The rules, not the index, decide
which matches reject an item.

Beside the buckets, a marker holds the generation of the index (``NearDupIndexState``): the
number of scoring batches of the dataset it reflects. A flushed or restarted Redis loses the
marker with the buckets, and a Redis restored from an old snapshot brings back an old marker;
either way the scorer sees the index is not whole and heals it (``corpus.services.scoring``).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from corpus.redis_client import redis_client
from corpus.scoring import lsh, minhash

PREFIX = f"sg:lsh:{lsh.LSH_VERSION}:"
_ALL_VERSIONS = "sg:lsh:*"
_MARKER = f"sg:lsh-generation:{lsh.LSH_VERSION}:"


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


# The batch scripts below build each bucket's key from the dataset's key prefix and a band key
# cut out of one binary blob: a batch of 500 items has 10,500 band keys, and sending them as
# separate arguments cost more client CPU (redis-py packs every argument in Python) than the
# scoring of the batch itself. Keys named inside a script are not declared in KEYS, so the index
# needs a standalone Redis (or one cluster slot per dataset), which is what DESIGN.md runs.

# ARGV: key prefix, key blob, key length, comma-separated key count per item.
# Returns a flat array: for each item with candidates, its position (0-based) and its SUNION.
_QUERY_SCRIPT = """
local prefix, blob, klen = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out, offset, position = {}, 0, 0
for count in string.gmatch(ARGV[4], "%d+") do
  count = tonumber(count)
  if count > 0 then
    local keys = {}
    for j = 1, count do
      keys[j] = prefix .. string.sub(blob, offset + 1, offset + klen)
      offset = offset + klen
    end
    local found = redis.call('SUNION', unpack(keys))
    if #found > 0 then
      out[#out + 1] = position
      out[#out + 1] = found
    end
  end
  position = position + 1
end
return out
"""

# ARGV: key prefix, key blob, key length, comma-separated "item id:key count" pairs.
_ADD_SCRIPT = """
local prefix, blob, klen = ARGV[1], ARGV[2], tonumber(ARGV[3])
local offset, added = 0, 0
for id, count in string.gmatch(ARGV[4], "(%d+):(%d+)") do
  for j = 1, tonumber(count) do
    redis.call('SADD', prefix .. string.sub(blob, offset + 1, offset + klen), id)
    offset = offset + klen
  end
  added = added + 1
end
return added
"""

_KEY_LENGTH = lsh.BAND_KEY_BYTES
# Keys per script call: bounds how long one call holds the (single-threaded) Redis server.
_KEYS_PER_CALL = 20_000


def _prefix(dataset_id: int) -> bytes:
    return f"{PREFIX}{dataset_id}:".encode()


def _joined(keys: list[bytes]) -> bytes:
    """An item's keys as one string, refused unless each has the length the scripts cut by."""
    if keys and set(map(len, keys)) != {_KEY_LENGTH}:
        raise ValueError(f"band keys must be {_KEY_LENGTH} bytes")
    return b"".join(keys)


def candidates_many(dataset_id: int, keys_per_item: Sequence[list[bytes]]) -> list[set[int]]:
    """Candidates for many items in one round trip: one SUNION over each item's band buckets."""
    joined = [_joined(keys) for keys in keys_per_item]
    script = redis_client().register_script(_QUERY_SCRIPT)
    found: list[set[int]] = [set() for _ in keys_per_item]
    start = 0
    while start < len(keys_per_item):
        stop, n_keys = start, 0
        while stop < len(keys_per_item) and (stop == start or n_keys < _KEYS_PER_CALL):
            n_keys += len(keys_per_item[stop])
            stop += 1
        chunk = keys_per_item[start:stop]
        reply = script(
            args=[
                _prefix(dataset_id),
                b"".join(joined[start:stop]),
                _KEY_LENGTH,
                ",".join(str(len(keys)) for keys in chunk),
            ]
        )
        for position, members in zip(reply[::2], reply[1::2], strict=True):
            found[start + position] = {int(m) for m in members}
        start = stop
    return found


class IndexAdd:
    """Index additions sent to Redis whose replies are not read yet: Redis runs the SADDs while
    the caller goes on (scoring commits its transaction meanwhile). ``wait()`` reads the replies
    and raises what Redis raised; until then the connection is the caller's alone."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: Any = None
        self._conn: Any = None
        self._replies = 0

    def _send(self, dataset_id: int, blob: list[bytes], pairs: list[str]) -> None:
        if self._conn is None:
            self._pool = redis_client().connection_pool
            self._conn = self._pool.get_connection()
        # EVAL with the body: Redis caches the script by its digest, and there is no NOSCRIPT
        # reply to handle halfway through a batch of unread replies.
        self._conn.send_command(
            "EVAL",
            _ADD_SCRIPT,
            0,
            _prefix(dataset_id),
            b"".join(blob),
            _KEY_LENGTH,
            ",".join(pairs),
        )
        self._replies += 1

    def wait(self) -> int:
        """Read every reply (the items are indexed once this returns). Returns how many items."""
        conn, self._conn = self._conn, None
        if conn is None:
            return self.count
        try:
            for _ in range(self._replies):
                conn.read_response()
        except BaseException:
            conn.disconnect()  # replies may be left unread: never hand it back half-read
            raise
        finally:
            self._pool.release(conn)
        return self.count


def index_add_keys_send(dataset_id: int, entries: Iterable[tuple[int, list[bytes]]]) -> IndexAdd:
    """Send the index additions of (item id, band keys) pairs without waiting for Redis; the
    caller must call ``wait()`` on the result (in a ``finally``). Idempotent (SADD)."""
    pending = IndexAdd(0)
    blob: list[bytes] = []
    pairs: list[str] = []
    n_keys = 0
    try:
        for item_id, keys in entries:
            blob.append(_joined(keys))
            pairs.append(f"{int(item_id)}:{len(keys)}")
            n_keys += len(keys)
            pending.count += 1
            if n_keys >= _KEYS_PER_CALL:
                pending._send(dataset_id, blob, pairs)
                blob, pairs, n_keys = [], [], 0
        if pairs:
            pending._send(dataset_id, blob, pairs)
    except BaseException:
        if pending._conn is not None:
            pending._conn.disconnect()
            pending._pool.release(pending._conn)
            pending._conn = None
        raise
    return pending


def index_add_keys(dataset_id: int, entries: Iterable[tuple[int, list[bytes]]]) -> int:
    """Index (item id, band keys) pairs; idempotent (SADD). Returns how many items."""
    return index_add_keys_send(dataset_id, entries).wait()


def index_add_many(dataset_id: int, entries: Iterable[tuple[int, bytes]]) -> int:
    """Index (item id, signature bytes) pairs; idempotent (SADD). Returns how many."""
    return index_add_keys(
        dataset_id,
        ((item_id, lsh.band_keys(minhash.from_bytes(sig))) for item_id, sig in entries),
    )


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
    if dataset_id is not None:
        removed += client.unlink(_marker_key(dataset_id))
    else:
        removed += sum(client.unlink(k) for k in client.scan_iter(match=f"{_MARKER}*"))
    return removed


def _marker_key(dataset_id: int) -> str:
    return f"{_MARKER}{dataset_id}"


def index_marker_get(dataset_id: int) -> int | None:
    """The generation the dataset's index reflects, or None when Redis has no marker (an index
    never built, flushed, or of another layout version)."""
    value = redis_client().get(_marker_key(dataset_id))
    return None if value is None else int(value)


def index_marker_set(dataset_id: int, generation: int) -> None:
    redis_client().set(_marker_key(dataset_id), int(generation))


# ARGV: expected generation, new generation. 1 when the marker held the expected value.
_ADVANCE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def index_marker_advance(dataset_id: int, *, expected: int, new: int) -> bool:
    """Move the marker from ``expected`` to ``new`` atomically; False when it held anything
    else (missing: the index was lost since the batch checked it)."""
    script = redis_client().register_script(_ADVANCE_SCRIPT)
    return bool(script(keys=[_marker_key(dataset_id)], args=[int(expected), int(new)]))


def index_clear_other_versions() -> int:
    """Delete buckets and markers of other layout versions (left by an upgrade). Returns the
    number of keys removed."""
    client = redis_client()
    removed = 0
    for pattern, keep in ((_ALL_VERSIONS, PREFIX), ("sg:lsh-generation:*", _MARKER)):
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            if key.startswith(keep.encode()):
                continue
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.unlink(*batch)
                batch.clear()
        if batch:
            removed += client.unlink(*batch)
    return removed


def index_health() -> dict[str, object]:
    """Whether every dataset's index is whole: no heal under way and a marker in Redis at the
    generation the database counts. For ``/healthz`` ("degraded", with the reason, until it is).
    """
    from corpus.models import NearDupIndexState

    problems: dict[str, str] = {}
    states = NearDupIndexState.objects.select_related("dataset").order_by("pk")
    for state in states:
        if state.degraded_reason:
            problems[state.dataset.slug] = f"healing: {state.degraded_reason}"
            continue
        marker = index_marker_get(state.dataset_id)
        if marker is None and state.generation > 0:
            problems[state.dataset.slug] = "index missing in Redis; a scorer will rebuild it"
        elif marker is not None and marker != state.generation:
            problems[state.dataset.slug] = (
                f"index at generation {marker}, database at {state.generation}; "
                "a scorer will rebuild it"
            )
    if problems:
        return {"ok": False, "problem": "near-duplicate index incomplete", "datasets": problems}
    return {"ok": True}
