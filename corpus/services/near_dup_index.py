"""The near-duplicate index: LSH buckets of MinHash signatures in Redis, packed.

Every worker on every host sees the same corpus because the buckets live in Redis; the signatures
they are built from live in the database (``Score.minhash``), so ``rebuild_index`` recreates the
index from scratch after a lost Redis. Keys carry the LSH layout version and the storage version:
a new band layout or storage never matches old buckets, and an upgraded scorer finds no marker and
rebuilds the index (``corpus.services.scoring``).

What is indexed: every item scored successfully, whatever its state (reference, approved, queued,
rejected), so that a match is found whichever of two items is scored second: near-duplicate
evidence must not depend on the order items were scored in. The rules, not the index, decide
which matches reject an item.

Storage (issue 16.3: memory per million items). An item has one band key per LSH band (32), and
unrelated texts share none, so a Redis set per band key (the first layout) held almost only
one-member sets: about 127 bytes of per-key overhead for a few bytes of information, 3.9 to
4.2 GB per million items. Here the band keys of a dataset go into one linear-hashing table
(Litwin 1980) of small Redis hashes:

- a band key becomes a 32-bit fingerprint (its band index mixed into 4 bytes of its digest): the
  field, 4 bytes, whose value is the item id (or the ids, comma-separated, of the rare items
  sharing it);
- the field lives in the hash of its bucket, the fingerprint's low ``level`` bits (one more bit
  for buckets already split this round), so a bucket holds about ``_LOAD`` fields whatever the
  size of the corpus, and Redis keeps such a hash as one compact listpack (up to its
  ``hash-max-listpack-entries``, 128 by default): about 13 bytes a field, the Redis key's own
  overhead shared by ``_LOAD`` fields. A query is one HGET per band key, flat in corpus size;
- when the table holds more than ``_LOAD`` fields per bucket, the next bucket in turn splits in
  two (``level`` and ``split`` in the dataset's ``meta`` hash), so the table grows one bucket at
  a time, with no rebuild;
- two band keys with the same fingerprint are told apart by nothing: such a false candidate has
  probability 32 x N / 2^32 per query in a corpus of N items (0.0075 at 1M), and it costs one
  verification, because candidates are verified on their exact Jaccard before anything is
  reported (``corpus.services.scoring``).

Every read and write is one Lua script, atomic on the Redis server, so workers on several hosts
share the table safely. Adding an item id that is already under its fingerprint does nothing: a
retried batch re-adds the same items.

Beside the buckets, a marker holds the generation of the index (``NearDupIndexState``): the
number of scoring batches of the dataset it reflects. A flushed or restarted Redis loses the
marker with the buckets, and a Redis restored from an old snapshot brings back an old marker;
either way the scorer sees the index is not whole and heals it (``corpus.services.scoring``).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from corpus.redis_client import redis_client
from corpus.scoring import lsh, minhash

# Bump when the storage below changes (record layout, fingerprint, addressing).
STORAGE_VERSION = "lh1"
PREFIX = f"sg:lsh:{lsh.LSH_VERSION}:{STORAGE_VERSION}:"
_ALL_VERSIONS = "sg:lsh:*"
_MARKER = f"sg:lsh-generation:{lsh.LSH_VERSION}:{STORAGE_VERSION}:"

# Fields per bucket, on average, before the next bucket splits. A bucket not yet split this round
# holds up to twice as many, and Redis turns a hash of more than 128 fields (its default
# hash-max-listpack-entries) into a hash table of about five times the memory: 32 keeps the
# fullest buckets near 64 and far from it.
_LOAD = 32


def _bucket_key(dataset_id: int, bucket: int) -> bytes:
    return f"{PREFIX}{dataset_id}:{bucket}".encode()


def _meta_key(dataset_id: int) -> bytes:
    return f"{PREFIX}{dataset_id}:meta".encode()


# Keys named inside a script are not declared in KEYS, so the index needs a standalone Redis
# (or one cluster slot per dataset), which is what DESIGN.md runs. Every script gets the key
# prefix, one blob of band keys (each cut out of it by its length: sending 10,500 keys as
# separate arguments cost more client CPU than scoring the batch) and the load factor.
_COMMON = """
local prefix, blob, klen, load = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local meta = prefix .. 'meta'
local state = redis.call('HMGET', meta, 'level', 'split', 'n')
local level = tonumber(state[1]) or 0
local split = tonumber(state[2]) or 0
local n = tonumber(state[3]) or 0
local byte, char, floor, format = string.byte, string.char, math.floor, string.format
local low_mod, high_mod = 2 ^ level, 2 ^ (level + 1)

-- The fingerprint of the band key at position p: its band index mixed into 4 digest bytes.
local function fingerprint(p)
  local band, b1, b2, b3, b4 = byte(blob, p, p + 4)
  return (((b1 * 256 + b2) * 256 + b3) * 256 + b4 + band * 2654435761) % 4294967296
end

local function field_of(fp)
  return char(floor(fp / 16777216), floor(fp / 65536) % 256, floor(fp / 256) % 256, fp % 256)
end

local function bucket_key(fp)
  local b = fp % low_mod
  if b < split then b = fp % high_mod end
  return prefix .. format('%d', b)
end

-- A query's reply: for each item with candidates, its position (0-based) and its ids.
local out, position = {}, 0
local function emit(ids)
  if #ids > 0 then
    out[#out + 1] = position
    out[#out + 1] = ids
  end
  position = position + 1
end

-- Append to ids the comma-separated ids of value not yet seen.
local function gather(value, seen, ids)
  for id in string.gmatch(value, "%d+") do
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
end
"""

# ARGV: prefix, blob, key length, load, comma-separated key count per item.
# Returns a flat array: for each item with candidates, its position (0-based) and its ids.
_QUERY_SCRIPT = (
    _COMMON
    + """
local offset = 0
for count in string.gmatch(ARGV[5], "%d+") do
  local seen, ids = {}, {}
  for j = 1, tonumber(count) do
    local fp = fingerprint(offset + 1)
    offset = offset + klen
    local value = redis.call('HGET', bucket_key(fp), field_of(fp))
    if value then gather(value, seen, ids) end
  end
  emit(ids)
end
return out
"""
)

_ADD = """
-- Linear hashing: split the next bucket in turn, as soon as the table is above its load.
local function split_next()
  local low = prefix .. format('%d', split)
  local high = prefix .. format('%d', split + low_mod)
  local entries = redis.call('HGETALL', low)
  if #entries > 0 then
    local keep, move = {}, {}
    for i = 1, #entries, 2 do
      local b1, b2, b3, b4 = byte(entries[i], 1, 4)
      local into = ((((b1 * 256 + b2) * 256 + b3) * 256 + b4) % high_mod == split) and keep or move
      into[#into + 1] = entries[i]
      into[#into + 1] = entries[i + 1]
    end
    redis.call('DEL', low)
    if #keep > 0 then redis.call('HSET', low, unpack(keep)) end
    if #move > 0 then redis.call('HSET', high, unpack(move)) end
  end
  split = split + 1
  if split == low_mod then
    level, split = level + 1, 0
    low_mod, high_mod = 2 ^ level, 2 ^ (level + 1)
  end
end

-- Add the item id under the band key at position p of the blob. Returns the ids the field held
-- before (comma-separated), or nil for a new field: HSETNX both adds and says whether the field
-- was there, so a new band key (nearly all of them) costs one command.
local function add(p, id)
  local fp = fingerprint(p)
  local key, field = bucket_key(fp), field_of(fp)
  if redis.call('HSETNX', key, field, id) == 1 then
    n = n + 1
    if n > load * (low_mod + split) then split_next() end
    return nil
  end
  -- another item with this fingerprint (a shared band, or rarely a collision)
  local ids = redis.call('HGET', key, field)
  if not string.find(',' .. ids .. ',', ',' .. id .. ',', 1, true) then
    redis.call('HSET', key, field, ids .. ',' .. id)
  end
  return ids
end
"""

# ARGV: prefix, blob, key length, load, comma-separated "item id:key count" pairs.
# Returns the number of items.
_ADD_SCRIPT = (
    _COMMON
    + _ADD
    + """
local offset, items = 0, 0
for id, count in string.gmatch(ARGV[5], "(%d+):(%d+)") do
  for j = 1, tonumber(count) do
    add(offset + 1, id)
    offset = offset + klen
  end
  items = items + 1
end
redis.call('HSET', meta, 'level', level, 'split', split, 'n', n)
return items
"""
)

# The query and the addition of a scoring batch in one pass (scoring runs them back to back
# under the dataset's lock): each band key's bucket is found once, and a new band key costs one
# command instead of an HGET and then an HSETNX.
# ARGV: prefix, blob, key length, load, comma-separated "item id:key count" pairs.
# Returns a flat array: for each item with candidates, its position (0-based) and its ids.
_QUERY_ADD_SCRIPT = (
    _COMMON
    + _ADD
    + """
local offset = 0
for id, count in string.gmatch(ARGV[5], "(%d+):(%d+)") do
  local seen, ids = {[id] = true}, {}
  for j = 1, tonumber(count) do
    local before = add(offset + 1, id)
    offset = offset + klen
    if before then gather(before, seen, ids) end
  end
  emit(ids)
end
redis.call('HSET', meta, 'level', level, 'split', split, 'n', n)
return out
"""
)

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


def _candidates_calls(
    dataset_id: int, source: str, keys_per_item: Sequence[list[bytes]], tokens: Sequence[str]
) -> list[set[int]]:
    """Run a candidates script (``_QUERY_SCRIPT`` or ``_QUERY_ADD_SCRIPT``) over the items, in
    calls of about ``_KEYS_PER_CALL`` band keys; ``tokens`` is each item's entry of the script's
    comma-separated list. Every key is checked before the first call, so a bad one sends
    nothing."""
    joined = [_joined(keys) for keys in keys_per_item]
    script = redis_client().register_script(source)
    found: list[set[int]] = [set() for _ in keys_per_item]
    start = 0
    while start < len(keys_per_item):
        stop, n_keys = start, 0
        while stop < len(keys_per_item) and (stop == start or n_keys < _KEYS_PER_CALL):
            n_keys += len(keys_per_item[stop])
            stop += 1
        reply = script(
            args=[
                _prefix(dataset_id),
                b"".join(joined[start:stop]),
                _KEY_LENGTH,
                _LOAD,
                ",".join(tokens[start:stop]),
            ]
        )
        for position, members in zip(reply[::2], reply[1::2], strict=True):
            found[start + position] = {int(m) for m in members}
        start = stop
    return found


def candidates_many(dataset_id: int, keys_per_item: Sequence[list[bytes]]) -> list[set[int]]:
    """Candidates for many items in one round trip: the ids of every indexed item sharing a band
    key (or, rarely, only a fingerprint) with each item."""
    tokens = [str(len(keys)) for keys in keys_per_item]
    return _candidates_calls(dataset_id, _QUERY_SCRIPT, keys_per_item, tokens)


def candidates_and_add(
    dataset_id: int, entries: Sequence[tuple[int, list[bytes]]]
) -> list[set[int]]:
    """Index (item id, band keys) pairs and return each one's candidates, in one round trip:
    the ids of the other items that shared a band key (or, rarely, only a fingerprint) with it
    when it was added. The pairs are added in order, so an item's candidates include the items
    before it in ``entries`` that share a key. Idempotent: an item already indexed is not
    added twice and is never its own candidate."""
    keys_per_item = [keys for _, keys in entries]
    tokens = [f"{int(item_id)}:{len(keys)}" for item_id, keys in entries]
    return _candidates_calls(dataset_id, _QUERY_ADD_SCRIPT, keys_per_item, tokens)


class IndexAdd:
    """Index additions sent to Redis whose replies are not read yet: Redis runs the additions
    while the caller goes on (scoring commits its transaction meanwhile). ``wait()`` reads the
    replies and raises what Redis raised; until then the connection is the caller's alone."""

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
            _LOAD,
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
    caller must call ``wait()`` on the result (in a ``finally``). Idempotent."""
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
    """Index (item id, band keys) pairs; idempotent. Returns how many items."""
    return index_add_keys_send(dataset_id, entries).wait()


def index_add_many(dataset_id: int, entries: Iterable[tuple[int, bytes]]) -> int:
    """Index (item id, signature bytes) pairs; idempotent. Returns how many."""
    return index_add_keys(
        dataset_id,
        ((item_id, lsh.band_keys(minhash.from_bytes(sig))) for item_id, sig in entries),
    )


def index_stats(dataset_id: int) -> dict[str, int]:
    """The table's shape: fields (distinct fingerprints), buckets, level and split pointer."""
    level, split, n = redis_client().hmget(_meta_key(dataset_id), "level", "split", "n")
    level_i, split_i = int(level or 0), int(split or 0)
    return {"fields": int(n or 0), "buckets": 2**level_i + split_i, "level": level_i,
            "split": split_i}  # fmt: skip


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
