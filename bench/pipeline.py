"""Benchmark: one Celery worker process takes N ingested items from `pending` to `queued`.

The worker runs two tasks at a time in threads of its one process (`--pool threads --concurrency
2`, the default here): scoring computes a batch's signals without the dataset's lock, so one
thread computes while the other waits on PostgreSQL and Redis. `--pool solo` runs one task at a
time, as the benchmark did before. Besides wall time it reports the worker's CPU seconds (on a
shared machine, CPU time says what the pipeline costs when wall time measures the neighbours).

The clock starts when the worker is ready (its heartbeat is in Redis, config/celery.py: by then
it has loaded the scoring stack) and the scoring tasks are sent; the items are ingested before
the worker starts, their tasks held back until then. The worker's start-up time is reported
beside it, with the rate start-up included (the clock from the worker's launch, as this bench
measured before).

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
sys.path.insert(0, str(ROOT / "bench"))

import textgen  # noqa: E402

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


def text_1kb_words52(rng: random.Random, i: int) -> str:
    """The texts this bench used before 2026-12-07: 150 words drawn uniformly from WORDS. Every
    pair shares about 2.7% of its word bigrams, so near-duplicate candidates grow with the
    corpus (see bench/textgen.py); kept to reproduce the old figures (``--text words52``)."""
    words = [rng.choice(WORDS) for _ in range(150)]
    words[rng.randrange(150)] = f"tag{i}"
    return " ".join(words)[:1024]


def text_1kb(rng: random.Random, i: int) -> str:
    """1 KB of Zipfian prose (bench/textgen.py), unique by its tag."""
    return textgen.prose(rng, 1024, tag=f"tag{i}")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(pid: int) -> list[float]:
    """User + system CPU seconds of each thread of a live process, busiest first."""
    return sorted(
        (_stat_cpu_seconds(task / "stat") for task in Path(f"/proc/{pid}/task").iterdir()),
        reverse=True,
    )


def _stat_cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_seconds() -> float:
    """User + system CPU seconds of the Redis server (INFO cpu), main thread and others."""
    from corpus.redis_client import redis_client

    info = redis_client().info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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
    parser.add_argument(
        "--text",
        default="prose",
        choices=["prose", "words52"],
        help="item texts: Zipfian prose (default) or the 52-word salad of the old runs",
    )
    args = parser.parse_args()
    make_text = text_1kb if args.text == "prose" else text_1kb_words52
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
    from django.conf import settings
    from django.core.cache import cache

    from corpus.models import AuditEvent, Dataset, Item
    from corpus.redis_client import redis_client
    from corpus.scoring import lsh, minhash
    from corpus.services import ingest, near_dup_index
    from corpus.services.audit import SYSTEM
    from corpus.services.ingest import items_ingest, items_parse

    redis_client().flushdb()
    dataset = Dataset.objects.create(slug="bench", name="bench")
    rng = random.Random(1)
    # Ingest before the worker starts, holding back the scoring tasks each ingest call sends
    # after its commit (the same batches, sent once the worker is ready).
    held: list[list[int]] = []
    send_scoring = ingest._score_enqueue
    ingest._score_enqueue = held.append
    t0 = time.perf_counter()
    try:
        for start in range(0, args.n, 1000):
            raw = [
                {"text": make_text(rng, i), "origin": "synthetic"}
                for i in range(start, min(start + 1000, args.n))
            ]
            items_ingest(dataset=dataset, items=items_parse(raw), actor=SYSTEM, default_source="b")
    finally:
        ingest._score_enqueue = send_scoring
    ingest_s = time.perf_counter() - t0
    # This machine's PostgreSQL runs with autovacuum off: without statistics the exact-duplicate
    # lookup plans a scan of the dataset (180 ms per batch instead of 2). A server with
    # autovacuum (the default) analyzes the growing table by itself.
    if db_url.startswith("postgres"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE corpus_item")
    env = dict(os.environ)
    t_launch = time.perf_counter()
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
        # Ready: the worker's heartbeat (written once it has started, after its warm-up) carries
        # its pid.
        while cache.get(settings.SYNTHGATE_WORKER_HEARTBEAT_KEY) != worker.pid:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            if time.perf_counter() - t_launch > 120:
                raise SystemExit("the worker did not start within 120 s")
            time.sleep(0.02)
        t0 = time.perf_counter()
        startup_s = t0 - t_launch
        redis_cpu_before = redis_cpu_seconds()
        for ids in held:
            send_scoring(ids)
        # Progress: every scored batch appends one "items.scored" audit event, a count over a
        # few hundred rows. Counting pending items instead cost PostgreSQL a scan of the item
        # table 4 times a second (the planner, told by ANALYZE that every row is pending,
        # chooses a sequential scan: 100 ms and more at 100,000 items), CPU taken from the
        # pipeline it measures on a 2-core machine.
        scored = AuditEvent.objects.filter(dataset=dataset, action="items.scored")
        pending_items = Item.objects.filter(dataset=dataset, state=Item.State.PENDING)
        first_done = None
        first_pending = args.n
        while True:
            events = scored.count()
            if first_done is None and events:
                first_done, first_pending = time.perf_counter(), pending_items.count()
            # Confirmed by the item states once every batch has reported (a retried batch may
            # report later, or a failed one never: then this polls the states).
            if events >= len(held) and pending_items.count() == 0:
                break
            if time.perf_counter() - t0 > 3600:
                raise SystemExit("timed out")
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        # The Redis server's CPU seconds meanwhile (the index's scripts, the broker, the cache).
        redis_cpu = redis_cpu_seconds() - redis_cpu_before
        # CPU seconds of the worker process (start-up included), read before it exits: on a
        # shared machine they say what the pipeline costs when wall time does not.
        worker_cpu = process_cpu_seconds(worker.pid)
        threads_cpu = thread_cpu_seconds(worker.pid)
        # And of the PostgreSQL backends serving it (the worker keeps its connections,
        # CELERY_DB_REUSE_MAX): every other connection to the bench database.
        backends_cpu = None
        if db_url.startswith("postgres"):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                pids = [row[0] for row in cursor.fetchall()]
            try:
                backends_cpu = sum(process_cpu_seconds(pid) for pid in pids)
            except OSError:  # a server on another host, or a backend gone meanwhile
                backends_cpu = None
    finally:
        worker.terminate()
        worker.wait(30)
    by_state = dict(
        Item.objects.filter(dataset=dataset)
        .values_list("state")
        .annotate(n=django.db.models.Count("id"))
    )
    pipeline_rate = args.n / elapsed
    with_startup_rate = args.n / (startup_s + elapsed)
    # From the first batch done to the last: the rate once the worker has started and loaded
    # its models (the headline rate above includes that start-up).
    steady_rate = (first_pending / (elapsed - (first_done - t0))) if first_done else 0.0

    # Near-duplicate query time at two index sizes (random signatures, as for unrelated texts).
    def fill(count: int, offset: int) -> None:
        sig_rng = np.random.default_rng(offset)
        for lo in range(0, count, 500):
            sigs = sig_rng.integers(
                0, 2**32, size=(min(500, count - lo), minhash.NUM_PERM), dtype=np.uint32
            )
            near_dup_index.index_add_keys(
                99, ((offset + lo + i + 1, k) for i, k in enumerate(lsh.band_keys_many(sigs)))
            )

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
        "text": args.text,
        "ingest_seconds": round(ingest_s, 1),
        "pipeline_seconds": round(elapsed, 1),
        "pipeline_items_per_s": round(pipeline_rate),
        "worker_startup_seconds": round(startup_s, 2),
        "with_startup_items_per_s": round(with_startup_rate),
        "steady_items_per_s": round(steady_rate),
        "worker": f"--pool {args.pool} --concurrency {concurrency}",
        "worker_cpu_seconds": round(worker_cpu, 1),
        "worker_cpu_items_per_s": round(args.n / worker_cpu) if worker_cpu else None,
        "worker_threads_cpu_seconds": [round(x, 1) for x in threads_cpu if x >= 0.05],
        "redis_cpu_seconds": round(redis_cpu, 1),
        "redis_cpu_us_per_item": round(redis_cpu / args.n * 1e6),
        "postgres_backends_cpu_seconds": None if backends_cpu is None else round(backends_cpu, 1),
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
        f" {worker_cpu:.1f} s = {args.n / worker_cpu:,.0f} items per CPU-second; Redis CPU"
        f" {redis_cpu:.1f} s = {redis_cpu / args.n * 1e6:.0f} us per item)"
    )
    print(
        f"worker start-up (launch to ready): {startup_s:.2f} s; start-up included:"
        f" {startup_s + elapsed:.1f} s = {with_startup_rate:,.0f} items/s"
    )
    print(
        f"near-dup query: {small_us:.1f} us at {args.index_small:,}, {large_us:.1f} us at "
        f"{args.index_large:,} ({large_us / small_us:.2f}x)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
