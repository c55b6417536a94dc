"""The near-duplicate index in Redis: memory per million items and query cost, flat in size.

    .venv/bin/python bench/near_dup_index.py [--n 1000000] [--small 10000] [--redis-url URL]

Issue 16.3 asks for the index's Redis memory per million items kept under a stated bound, with
the arithmetic for 100M; issue 12.2 asks that the query stay flat in corpus size. For each
layout this fills a private redis-server (started here, under a temporary directory, as the
embedded default runs it) with ``--n`` items, the way scoring does (the product's
``index_add_keys``, 500 items a call), and measures:

- ``used_memory`` (``INFO memory``) added per million items, and the keys;
- the fill's rate (items/s, the client's and Redis's work together);
- a query of 500 items a call (the product's ``candidates_many``) when the index holds
  ``--small`` items and when it holds ``--n``: microseconds per queried item, half of the
  queried items near-copies of indexed ones (one band in common), half new; and that every
  near-copy found its original;
- the Redis server's CPU (``INFO cpu``) per item filled and per item queried: what the layout
  costs Redis, which on a busy machine wall time does not show;
- for the packed layout, scoring's own use of the full index (query a batch of new items, then
  add them): the Redis CPU per item of the two calls scoring made before (``candidates_many``
  then ``index_add_keys``) and of the one script it makes now (``candidates_and_add``), on
  alternating batches.

Signatures are random, as for unrelated texts: every band key is its own, the worst case for
memory. The layouts: ``packed`` is the product's (``corpus.services.near_dup_index``: linear
hashing over small Redis hashes of 4-byte fingerprint fields); ``sets``, the reference timed in
the same run, is the first layout (a Redis set per band key, SADD and SUNION in the same batch
scripts), kept here to measure against. Prints a summary and ``RESULT {json}``, writes
bench/results/near_dup_index.json. Not a test.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import embedded_redis  # noqa: E402

BATCH = 500

# The first layout, for reference: one Redis set per band key.
_SETS_QUERY = """
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
_SETS_ADD = """
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


class SetsLayout:
    prefix = b"sg:bench-sets:1:"

    def __init__(self, client: Any) -> None:
        self.query_script = client.register_script(_SETS_QUERY)
        self.add_script = client.register_script(_SETS_ADD)

    def add(self, entries: list[tuple[int, list[bytes]]]) -> None:
        blob = b"".join(b"".join(keys) for _, keys in entries)
        pairs = ",".join(f"{i}:{len(keys)}" for i, keys in entries)
        self.add_script(args=[self.prefix, blob, 9, pairs])

    def query(self, keys_per_item: list[list[bytes]]) -> list[set[int]]:
        reply = self.query_script(
            args=[
                self.prefix,
                b"".join(b"".join(k) for k in keys_per_item),
                9,
                ",".join(str(len(k)) for k in keys_per_item),
            ]
        )
        found: list[set[int]] = [set() for _ in keys_per_item]
        for position, members in zip(reply[::2], reply[1::2], strict=True):
            found[position] = {int(m) for m in members}
        return found


class PackedLayout:
    dataset = 1

    def add(self, entries: list[tuple[int, list[bytes]]]) -> None:
        from corpus.services import near_dup_index

        near_dup_index.index_add_keys(self.dataset, entries)

    def query(self, keys_per_item: list[list[bytes]]) -> list[set[int]]:
        from corpus.services import near_dup_index

        return near_dup_index.candidates_many(self.dataset, keys_per_item)


def _keys_for(sigs: np.ndarray) -> list[list[bytes]]:
    from corpus.scoring import lsh

    return lsh.band_keys_many(sigs)


def _near_copies(keys_of: Callable[[int], list[bytes]], ids: np.ndarray, rng: Any) -> list:
    """For each id, keys sharing exactly one band key with that item, the rest new."""
    from corpus.scoring import minhash

    fresh = _keys_for(rng.integers(0, 2**32, size=(len(ids), minhash.NUM_PERM), dtype=np.uint32))
    out = []
    for item_id, keys in zip(ids.tolist(), fresh, strict=True):
        band = int(item_id) % len(keys)
        copy = list(keys)
        copy[band] = keys_of(int(item_id))[band]
        out.append(copy)
    return out


def _probe_batch(probe: Any, signatures: dict[int, list[bytes]], indexed: int) -> tuple:
    """A batch of BATCH items to query: near-copies (one band in common) of BATCH / 2 of the
    first ``indexed`` items (at most the first 100,000, whose keys are kept), then as many new
    ones. Returns the copied ids and the batch's band keys."""
    from corpus.scoring import minhash

    ids = probe.integers(1, min(indexed, 100_000) + 1, size=BATCH // 2)
    copies = _near_copies(signatures.__getitem__, ids, probe)
    new = _keys_for(probe.integers(0, 2**32, size=(BATCH // 2, minhash.NUM_PERM), dtype=np.uint32))
    return ids, copies + new


def _flush(client: Any) -> None:
    """FLUSHDB with no socket timeout: dropping 32M keys takes Redis longer than the product's
    client waits."""
    import redis

    with redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=None) as patient:
        patient.flushdb()


def redis_cpu(client: Any) -> float:
    """The Redis server's CPU seconds so far (user + system): on a busy machine its CPU per
    operation says what the layout costs when wall time measures the neighbours."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(layout: Any, client: Any, n: int, small: int, seed: int) -> dict[str, Any]:
    from corpus.scoring import minhash

    _flush(client)
    before = client.info("memory")["used_memory"]
    rng = np.random.default_rng(seed)
    signatures = {}  # the first 100,000 items' keys, to build near-copies of
    fill_seconds = fill_cpu = 0.0
    queries: dict[str, float] = {}
    queries_cpu: dict[str, float] = {}
    missed = 0
    for lo in range(0, n, BATCH):
        size = min(BATCH, n - lo)
        keys = _keys_for(rng.integers(0, 2**32, size=(size, minhash.NUM_PERM), dtype=np.uint32))
        entries = [(lo + i + 1, k) for i, k in enumerate(keys)]
        for item_id, k in entries:
            if item_id <= 100_000:
                signatures[item_id] = k
        start, cpu = time.perf_counter(), redis_cpu(client)
        layout.add(entries)
        fill_seconds += time.perf_counter() - start
        fill_cpu += redis_cpu(client) - cpu
        done = lo + size
        if done in (small, n):
            # 20 query calls of 500 items: half near-copies of indexed items, half new
            probe = np.random.default_rng(seed + done)
            elapsed = cpu_used = 0.0
            for _ in range(20):
                ids, queried = _probe_batch(probe, signatures, done)
                start, cpu = time.perf_counter(), redis_cpu(client)
                found = layout.query(queried)
                elapsed += time.perf_counter() - start
                cpu_used += redis_cpu(client) - cpu
                missed += sum(int(i) not in f for i, f in zip(ids, found, strict=False))
            queries[str(done)] = round(elapsed / (20 * BATCH) * 1e6, 2)
            queries_cpu[str(done)] = round(cpu_used / (20 * BATCH) * 1e6, 2)
    used = client.info("memory")["used_memory"] - before
    keys = client.dbsize()
    scoring = _scoring_path(client, signatures, n, seed) if isinstance(layout, PackedLayout) else {}
    _flush(client)
    return {
        **scoring,
        "items": n,
        "mb_per_million": round(used / 2**20 / n * 1e6, 1),
        "bytes_per_item": round(used / n, 1),
        "keys": keys,
        "fill_items_per_s": round(n / fill_seconds),
        "fill_redis_cpu_us_per_item": round(fill_cpu / n * 1e6, 1),
        "query_us_per_item": queries,
        "query_growth": round(queries[str(n)] / queries[str(small)], 2),
        "query_redis_cpu_us_per_item": queries_cpu,
        "query_cpu_growth": round(queries_cpu[str(n)] / queries_cpu[str(small)], 2),
        "near_copies_missed": missed,
    }


def _scoring_path(client: Any, signatures: dict[int, list[bytes]], n: int, seed: int) -> dict:
    """What scoring asks of the full index for each batch: query the batch's new items, then add
    them. Timed both ways on alternating batches of 500 fresh items (half near-copies of indexed
    items, half new): the two calls scoring made before (``candidates_many``, then
    ``index_add_keys``) and the one script it makes now (``candidates_and_add``). Redis CPU per
    item, and that every near-copy found its original either way."""
    from corpus.services import near_dup_index

    probe = np.random.default_rng(seed + 1)
    cpu = {"two_calls": 0.0, "one_script": 0.0}
    missed = 0
    next_id = n + 1
    rounds = 20
    for _ in range(rounds):
        for way in cpu:
            ids, queried = _probe_batch(probe, signatures, n)
            entries = [(next_id + i, keys) for i, keys in enumerate(queried)]
            next_id += len(entries)
            start = redis_cpu(client)
            if way == "two_calls":
                found = near_dup_index.candidates_many(PackedLayout.dataset, queried)
                near_dup_index.index_add_keys(PackedLayout.dataset, entries)
            else:
                found = near_dup_index.candidates_and_add(PackedLayout.dataset, entries)
            cpu[way] += redis_cpu(client) - start
            missed += sum(int(i) not in f for i, f in zip(ids, found, strict=False))
    per_item = {way: round(used / (rounds * BATCH) * 1e6, 1) for way, used in cpu.items()}
    return {
        "scoring_redis_cpu_us_per_item": per_item,
        "scoring_one_script_ratio": round(per_item["one_script"] / per_item["two_calls"], 2),
        "scoring_near_copies_missed": missed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--layouts", default="sets,packed")
    parser.add_argument(
        "--redis-url",
        help="a Redis to measure instead of a private embedded one: its database is FLUSHED",
    )
    args = parser.parse_args()
    if args.small % BATCH or args.n % BATCH or args.small >= args.n:
        parser.error(f"--small and --n must be multiples of {BATCH}, --small below --n")

    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-ndi-"))
    redis_process = None
    if not args.redis_url:
        redis_process = embedded_redis.start(workdir / "redis", persist=False, die_with_parent=True)
    os.environ.update(
        REDIS_URL=args.redis_url or f"unix://{embedded_redis.socket_path(workdir / 'redis')}",
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from bench.review import results_write
    from corpus.redis_client import redis_client

    load_before = os.getloadavg()
    try:
        client = redis_client()
        server = client.info("server")
        result: dict[str, Any] = {
            "bench": "near_dup_index",
            "n": args.n,
            "small": args.small,
            "redis": f"{server['redis_version']} ({client.info('memory')['mem_allocator']})",
        }
        for name in args.layouts.split(","):
            layout = SetsLayout(client) if name == "sets" else PackedLayout()
            result[name] = measure(layout, client, args.n, args.small, seed=16)
            print(f"{name}: {result[name]}", flush=True)
        if "sets" in result and "packed" in result:
            result["memory_ratio"] = round(
                result["packed"]["bytes_per_item"] / result["sets"]["bytes_per_item"], 3
            )
            print(f"packed / sets memory: {result['memory_ratio']}", flush=True)
        results_write(ROOT / "bench" / "results" / "near_dup_index.json", result, load_before)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    finally:
        embedded_redis.stop(redis_process)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    raise SystemExit(main())
