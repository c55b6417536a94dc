"""Benchmark: one Celery worker process takes N ingested items from `pending` to `queued`.

The worker runs two tasks at a time in threads of its one process (`--pool threads --concurrency
2`, the default here): scoring computes a batch's signals without the dataset's lock, so one
thread computes while the other waits on PostgreSQL and Redis. `--pool solo` runs one task at a
time, as the benchmark did before. Besides wall time it reports the worker's CPU seconds (on a
shared machine, CPU time says what the pipeline costs when wall time measures the neighbours).

Target (issue 3): >= 3,000 items/s with PostgreSQL and Redis. Also measures the near-duplicate
index query time in Redis at two corpus sizes (10k and --index-large items) to check it grows at
most 2x.

    python bench/pipeline.py [--n 100000] [--index-large 1000000] [--pool threads|solo]
                             [--concurrency 2]

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/sg_bench_pipeline, dropped and
recreated) and REDIS_URL (default redis://127.0.0.1:6379/9, flushed). Not a test.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    "river",
    "delta",
    "flood",
    "spring",
    "farmer",
    "rice",
    "water",
    "recede",
    "team",
    "billing",
    "service",
    "weekend",
    "switch",
    "sourdough",
    "starter",
    "flour",
    "patience",
    "warm",
    "corner",
    "kitchen",
    "museum",
    "wing",
    "collection",
    "maps",
    "century",
    "cyclist",
    "city",
    "tram",
    "lines",
    "delivery",
    "vans",
    "buses",
    "violin",
    "concert",
    "hall",
    "dry",
    "summer",
    "glacier",
    "melt",
    "harbour",
    "crane",
    "container",
    "ship",
    "night",
    "shift",
    "nurse",
    "ward",
    "quiet",
    "lamp",
    "library",
    "archive",
    "letter",
]


def text_1kb(rng: random.Random, i: int) -> str:
    words = [rng.choice(WORDS) for _ in range(150)]
    words[rng.randrange(150)] = f"tag{i}"
    return " ".join(words)[:1024]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--index-small", type=int, default=10_000)
    parser.add_argument("--index-large", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument(
        "--pool",
        default="threads",
        choices=["solo", "threads"],
        help="the worker's execution pool: one process either way (default threads)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="tasks in flight in that one process (threads pool; solo runs one)",
    )
    args = parser.parse_args()
    concurrency = 1 if args.pool == "solo" else args.concurrency

    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sg_bench_pipeline")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    if db_url.startswith("postgres"):
        import psycopg

        name = db_url.rsplit("/", 1)[1]
        admin = db_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import CaptureQueriesContext  # noqa: F401

    call_command("migrate", verbosity=0)
    import numpy as np

    from corpus.models import Dataset, Item
    from corpus.redis_client import redis_client
    from corpus.scoring import lsh, minhash
    from corpus.services import near_dup_index
    from corpus.services.audit import SYSTEM
    from corpus.services.ingest import items_ingest, items_parse

    redis_client().flushdb()
    dataset = Dataset.objects.create(slug="bench", name="bench")
    rng = random.Random(1)
    # Ingest without a worker running: every batch's scoring task waits in the broker.
    t0 = time.perf_counter()
    for start in range(0, args.n, 1000):
        raw = [
            {"text": text_1kb(rng, i), "origin": "synthetic"}
            for i in range(start, min(start + 1000, args.n))
        ]
        items_ingest(dataset=dataset, items=items_parse(raw), actor=SYSTEM, default_source="b")
    ingest_s = time.perf_counter() - t0
    # This machine's PostgreSQL runs with autovacuum off: without statistics the exact-duplicate
    # lookup plans a scan of the dataset (180 ms per batch instead of 2). A server with
    # autovacuum (the default) analyzes the growing table by itself.
    if db_url.startswith("postgres"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE corpus_item")
    env = dict(os.environ)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            args.pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        t0 = time.perf_counter()
        first_done = None
        first_pending = args.n
        while True:
            pending = Item.objects.filter(dataset=dataset, state=Item.State.PENDING).count()
            if first_done is None and pending < args.n:
                first_done, first_pending = time.perf_counter(), pending
            if pending == 0:
                break
            if time.perf_counter() - t0 > 3600:
                raise SystemExit("timed out")
            time.sleep(0.25)
        elapsed = time.perf_counter() - t0
        # CPU seconds of the worker process (start-up included), read before it exits: on a
        # shared machine they say what the pipeline costs when wall time does not. (PostgreSQL's
        # side cannot be read the same way: Celery closes the database connection after every
        # task, so each batch is served by a backend process of its own.)
        worker_cpu = process_cpu_seconds(worker.pid)
    finally:
        worker.terminate()
        worker.wait(30)
    by_state = dict(
        Item.objects.filter(dataset=dataset)
        .values_list("state")
        .annotate(n=django.db.models.Count("id"))
    )
    pipeline_rate = args.n / elapsed
    # From the first batch done to the last: the rate once the worker has started and loaded
    # its models (the headline rate above includes that start-up).
    steady_rate = (first_pending / (elapsed - (first_done - t0))) if first_done else 0.0

    # Near-duplicate query time at two index sizes (random signatures, as for unrelated texts).
    def fill(count: int, offset: int) -> None:
        client = redis_client()
        sig_rng = np.random.default_rng(offset)
        with client.pipeline(transaction=False) as pipe:
            for i in range(count):
                sig = sig_rng.integers(0, 2**32, size=minhash.NUM_PERM, dtype=np.uint32)
                for key in lsh.band_keys(sig):
                    pipe.sadd(near_dup_index._key(99, key), offset + i)
                if i % 2000 == 1999:
                    pipe.execute()
            pipe.execute()

    def query_time(count: int) -> float:
        q_rng = np.random.default_rng(12345)
        keys = [
            lsh.band_keys(q_rng.integers(0, 2**32, size=minhash.NUM_PERM, dtype=np.uint32))
            for _ in range(args.queries)
        ]
        # Best of 5 rounds: one round of 2,000 queries lasts about 0.1 s, short enough for one
        # scheduling hiccup of a neighbour's process to double it on a shared machine.
        rounds = []
        for _ in range(5):
            t = time.perf_counter()
            for start in range(0, len(keys), 100):
                near_dup_index.candidates_many(99, keys[start : start + 100])
            rounds.append((time.perf_counter() - t) / len(keys) * 1e6)
        return min(rounds)

    near_dup_index.index_clear(99)
    fill(args.index_small, 0)
    small_us = query_time(args.index_small)
    fill(args.index_large - args.index_small, args.index_small)
    large_us = query_time(args.index_large)
    near_dup_index.index_clear(99)
    result = {
        "items": args.n,
        "ingest_seconds": round(ingest_s, 1),
        "pipeline_seconds": round(elapsed, 1),
        "pipeline_items_per_s": round(pipeline_rate),
        "steady_items_per_s": round(steady_rate),
        "worker": f"--pool {args.pool} --concurrency {concurrency}",
        "worker_cpu_seconds": round(worker_cpu, 1),
        "worker_cpu_items_per_s": round(args.n / worker_cpu) if worker_cpu else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "states": by_state,
        "near_dup_query_us_at": {
            str(args.index_small): round(small_us, 1),
            str(args.index_large): round(large_us, 1),
        },
        "near_dup_growth": round(large_us / small_us, 2),
        "database": db_url.split("@")[-1],
    }
    print(
        f"pipeline: {args.n} items pending->queued in {elapsed:.1f} s"
        f" = {pipeline_rate:,.0f} items/s (steady {steady_rate:,.0f}/s; worker CPU"
        f" {worker_cpu:.1f} s = {args.n / worker_cpu:,.0f} items per CPU-second)"
    )
    print(
        f"near-dup query: {small_us:.1f} us at {args.index_small:,}, {large_us:.1f} us at "
        f"{args.index_large:,} ({large_us / small_us:.2f}x)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
