"""Ingest throughput through the real HTTP server, against PostgreSQL's COPY of the same rows.

    .venv/bin/python bench/ingest.py [--n 100000] [--batch 1000] [--clients 4] [--web-workers 2]
    .venv/bin/python bench/ingest.py --cold [--analyze-seconds 5]   # as the corpus grows

What it does:

1. creates a fresh PostgreSQL database (``--database``, dropped first and again at the end unless
   ``--keep``), migrates it, creates a dataset and a produce token;
2. starts an embedded Redis (the broker scoring tasks are enqueued to) and gunicorn with the
   production settings on a free port. No Celery worker runs, so scoring does not compete with
   ingest for the two cores: this measures the ingest path alone (request parsing, validation,
   hashing, the idempotency lookups, the insert, the audit event, the enqueue);
3. posts ``--n`` items of about ``--text-bytes`` bytes each in requests of ``--batch`` items from
   ``--clients`` concurrent client threads (bodies are serialized before the clock starts);
4. samples the resident memory of the gunicorn master and its workers (summed) every 50 ms;
5. times ``COPY`` of the same rows into a scratch table shaped like the item table (its
   constraints and indexes included) as the physical reference, and prints the ratio.

Prints one summary line per measure and a JSON line (``RESULT {...}``) that run_all.py collects.

``--cold`` measures ingest as the corpus grows from nothing, as a new installation sees it: no
warm-up and no ANALYZE before the clock, a Celery worker scoring what arrives (as ``make run``
starts it, ``--worker-concurrency`` 2), requests sent one after the other unless ``--clients``
says otherwise, and the throughput of the first and of the last 10 requests. It runs twice on
fresh databases, one after the other: without Celery beat (nothing refreshes the planner
statistics when the server's autovacuum is off; ``SHOW autovacuum``), then with beat running the
statistics task every ``--analyze-seconds``, and prints last-10 / first-10 for both. Autovacuum
is turned off on the scratch tables whatever the server's setting, so both passes see the worst
case. The COPY reference is skipped in this mode.
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import embedded_redis  # noqa: E402
from corpus.scoring.text import content_hash  # noqa: E402

# fmt: off
WORDS = [
    "river", "harbour", "lantern", "copper", "meadow", "signal", "orchard", "engine", "ledger",
    "thistle", "granite", "compass", "willow", "beacon", "furnace", "quarry", "pebble", "saddle",
    "kettle", "timber", "glacier", "ferry", "almanac", "barley", "cinder", "dialect", "ember",
    "fathom", "gravel", "hinge", "ivory", "juniper", "kiln", "lattice", "marble", "nettle",
    "oyster", "parcel", "quill", "rafter", "sorrel", "tundra", "umber", "vessel", "walnut",
    "yarrow", "zephyr", "anchor", "bramble", "cobalt", "dune", "estuary", "fennel", "gorse",
    "heron", "inlet", "jetty", "kestrel",
]
# fmt: on


def text_of(rng: random.Random, size: int, serial: int) -> str:
    """About ``size`` bytes of prose-like words, unique by construction (the serial)."""
    parts = [f"Item {serial}."]
    length = len(parts[0])
    while length < size:
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(6, 14))).capitalize() + "."
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)[:size]


def make_items(n: int, size: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "text": text_of(rng, size, serial),
            "external_id": f"bench-{serial}",
            "origin": "synthetic",
            "generator_model": "bench-gen",
            "generator_version": "1.0",
            "sampling_params": {"temperature": 0.8},
            "metadata": {"bench": True},
        }
        for serial in range(n)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_dsn(base: str) -> str:
    return base.rsplit("/", 1)[0] + "/postgres"


def recreate_database(base_url: str, name: str) -> str:
    with psycopg.connect(admin_dsn(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(base_url: str, name: str) -> None:
    with psycopg.connect(admin_dsn(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


class RssSampler(threading.Thread):
    """Peak of the summed RSS of a process and its descendants."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.running = True

    def sample(self) -> int:
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.sample())
            time.sleep(self.interval)


def post_all(
    port: int, key: str, slug: str, bodies: list[bytes], clients: int
) -> tuple[list[dict], list[float]]:
    """Send every body (each a request) from ``clients`` threads; returns the parsed responses
    and the ``perf_counter`` time each request completed at."""
    responses: list[dict] = [{} for _ in bodies]
    done_at: list[float] = [0.0 for _ in bodies]
    errors: list[str] = []
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None or errors:
                return
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request(
                "POST",
                f"/api/v1/datasets/{slug}/items/",
                body=bodies[index],
                headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            payload = response.read()
            conn.close()
            if response.status != 201:
                errors.append(f"request {index}: HTTP {response.status} {payload[:500]!r}")
                return
            responses[index] = orjson.loads(payload)
            done_at[index] = time.perf_counter()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit("ingest failed: " + "; ".join(errors[:3]))
    return responses, done_at


def window_rates(start: float, done_at: list[float], batch: int, window: int = 10) -> dict:
    """Items/s over the first and over the last ``window`` requests to complete."""
    times = sorted(done_at)
    first = window * batch / (times[window - 1] - start)
    last = window * batch / (times[-1] - times[-window - 1])
    return {"first10_items_per_s": round(first), "last10_items_per_s": round(last),
            "last_over_first": round(last / first, 2)}  # fmt: skip


def copy_reference(dsn: str, env: dict[str, str], items: list[dict]) -> float:
    """Seconds to COPY the same rows into a table shaped like corpus_item (constraints and
    indexes included, foreign keys not), in one transaction. The rows are built from the Item
    model's own fields, so the reference follows the model as it changes."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from corpus.models import Item

    fields = [f for f in Item._meta.concrete_fields if not f.primary_key]
    rows = []
    for item in items:
        obj = Item(
            dataset_id=1,
            source_id=1,
            content_hash=content_hash(item["text"]),
            generation=1,
            **{k: v for k, v in item.items() if k != "parents"},
        )
        rows.append([f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields])
    columns = ", ".join(f.column for f in fields)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (LIKE corpus_item INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES INCLUDING IDENTITY)"
        )
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return elapsed


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # 503 without a worker: serving anyway
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on {url}")


def stop_group(process: subprocess.Popen | None, grace: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def serving(args: argparse.Namespace, *, worker: bool = False, beat_seconds: int = 0):
    """A fresh database, an embedded Redis and gunicorn (and, if asked, a Celery worker and
    Celery beat); yields ``(dsn, env, port, key, web_process)`` and stops them all after."""
    dsn = recreate_database(args.postgres, args.database)
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-ingest-"))
    redis_dir = workdir / "redis"
    redis_process = embedded_redis.start(redis_dir, persist=False, die_with_parent=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "SYNTHGATE_SECURE_COOKIES": "false",
        # Plain HTTP on 127.0.0.1, no TLS proxy in front: no redirect to https.
        "SYNTHGATE_SSL_REDIRECT": "false",
        "DATABASE_URL": dsn,
        "REDIS_URL": f"unix://{embedded_redis.socket_path(redis_dir)}",
        "SYNTHGATE_VAR_DIR": str(workdir),
        "SYNTHGATE_TOKEN_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    if beat_seconds:
        env["SYNTHGATE_ANALYZE_SECONDS"] = str(beat_seconds)
    processes: list[subprocess.Popen] = []
    try:
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        if args.cold:
            # The worst case whatever this server's setting: nothing but the product analyzes.
            with psycopg.connect(dsn, autocommit=True) as conn:
                tables = conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
                for (table,) in tables:
                    conn.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = false)')
        manage(env, "create_dataset", "bench")
        key = manage(
            env, "create_token", "--name", "bench", "--scopes", "produce", "--dataset", "bench"
        ).strip()
        port = free_port()
        bin_dir = Path(sys.executable).parent
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if worker:
            processes.append(
                subprocess.Popen(
                    [
                        str(bin_dir / "celery"),
                        "-A",
                        "config",
                        "worker",
                        "--loglevel",
                        "WARNING",
                        "--concurrency",
                        str(args.worker_concurrency),
                    ],
                    cwd=ROOT,
                    env=env,
                    start_new_session=True,
                    **quiet,
                )
            )
        if beat_seconds:
            processes.append(
                subprocess.Popen(
                    [
                        str(bin_dir / "celery"),
                        "-A",
                        "config",
                        "beat",
                        "--loglevel",
                        "WARNING",
                        "--schedule",
                        str(workdir / "celerybeat-schedule"),
                        "--pidfile=",
                    ],
                    cwd=ROOT,
                    env=env,
                    start_new_session=True,
                    **quiet,
                )
            )
        gunicorn = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--threads",
                str(args.threads),
                "--timeout",
                "300",
                "--control-socket",
                str(workdir / "gunicorn.ctl"),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        processes.insert(0, gunicorn)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", gunicorn)
        yield dsn, env, port, key, gunicorn
    finally:
        for process in processes:
            stop_group(process)
        embedded_redis.stop(redis_process)
        if not args.keep:
            drop_database(args.postgres, args.database)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def cold_pass(args: argparse.Namespace, bodies: list[bytes], beat_seconds: int) -> dict:
    """One pass of ``--cold``: a fresh database, a worker, beat only if ``beat_seconds``."""
    with serving(args, worker=True, beat_seconds=beat_seconds) as (dsn, _env, port, key, _web):
        start = time.perf_counter()
        responses, done_at = post_all(port, key, "bench", bodies, args.clients)
        elapsed = time.perf_counter() - start
        created = sum(r["created"] for r in responses)
        if created != args.n:
            raise SystemExit(f"expected {args.n} created, the server says {created}")
        with psycopg.connect(dsn) as conn:
            analyzed = conn.execute(
                "SELECT analyze_count + autoanalyze_count FROM pg_stat_user_tables "
                "WHERE relname = 'corpus_item'"
            ).fetchone()[0]
            scored = conn.execute(
                "SELECT count(*) FROM corpus_item WHERE state <> 'pending'"
            ).fetchone()[0]
    rates = window_rates(start, done_at, args.batch)
    label = f"statistics task every {beat_seconds} s" if beat_seconds else "no statistics task"
    print(f"{label:<32}: {args.n / elapsed:,.0f} items/s overall; first 10 requests "
          f"{rates['first10_items_per_s']:,} items/s, last 10 {rates['last10_items_per_s']:,} "
          f"(x{rates['last_over_first']}); item table analyzed {analyzed} times; "
          f"{scored:,} items scored during the run", flush=True)  # fmt: skip
    return {
        "analyze_seconds": beat_seconds,
        "seconds": round(elapsed, 2),
        "items_per_s": round(args.n / elapsed),
        **rates,
        "item_table_analyzed": analyzed,
        "scored_during_run": scored,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="items to post")
    parser.add_argument("--batch", type=int, default=1000, help="items per request")
    parser.add_argument(
        "--clients", type=int, default=None, help="concurrent client threads (4; 1 with --cold)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (gthread when > 1)"
    )
    parser.add_argument("--text-bytes", type=int, default=1000, help="size of each text")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL whose server hosts the scratch database",
    )
    parser.add_argument("--database", default="sg_bench_ingest", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--warmup",
        type=int,
        default=5000,
        help="items posted (and the table analyzed) before the clock starts",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up, a scoring worker running; first vs last 10 requests, without and "
        "with the statistics task",
    )
    parser.add_argument(
        "--analyze-seconds",
        type=int,
        default=5,
        help="with --cold: the statistics task's period in the second pass (default 5)",
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="with --cold: Celery worker processes"
    )
    args = parser.parse_args()
    if args.clients is None:
        args.clients = 1 if args.cold else 4
    if args.n < 20 * args.batch and args.cold:
        parser.error("--cold needs at least 20 requests (--n >= 20 x --batch)")

    print(f"preparing {args.n} items of {args.text_bytes} bytes ...", flush=True)
    items = make_items(args.n, args.text_bytes, seed=20261124)
    bodies = [
        orjson.dumps({"items": items[i : i + args.batch]}) for i in range(0, args.n, args.batch)
    ]
    body_mb = sum(map(len, bodies)) / 1e6

    if args.cold:
        print(
            f"posting {args.n} items in {len(bodies)} requests from {args.clients} client(s), "
            f"a worker of {args.worker_concurrency} processes scoring, twice ...",
            flush=True,
        )
        without = cold_pass(args, bodies, beat_seconds=0)
        with_task = cold_pass(args, bodies, beat_seconds=args.analyze_seconds)
        result = {
            "bench": "ingest_cold",
            "n": args.n,
            "batch": args.batch,
            "clients": args.clients,
            "web_workers": args.web_workers,
            "worker_concurrency": args.worker_concurrency,
            "without_task": without,
            "with_task": with_task,
        }
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    with serving(args) as (dsn, env, port, key, gunicorn):
        sampler = RssSampler(gunicorn.pid)
        idle_rss = sampler.sample()
        sampler.start()

        if args.warmup:
            # A fresh table has no planner statistics, and this server may run without
            # autovacuum: the idempotency lookup then plans as if the source held a few hundred
            # rows and scans all of it. A warm-up batch and one ANALYZE stand for what
            # autovacuum does on any long-lived database (see bench/RESULTS.md).
            warm = make_items(args.warmup, args.text_bytes, seed=1)
            for item in warm:
                item["external_id"] = "warmup-" + item["external_id"]
            post_all(
                port,
                key,
                "bench",
                [
                    orjson.dumps({"items": warm[i : i + args.batch]})
                    for i in range(0, len(warm), args.batch)
                ],
                args.clients,
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("ANALYZE")
        print(
            f"posting {args.n} items ({body_mb:.0f} MB of JSON) in {len(bodies)} requests from "
            f"{args.clients} clients to {args.web_workers} gunicorn workers ...",
            flush=True,
        )
        start = time.perf_counter()
        responses, _done_at = post_all(port, key, "bench", bodies, args.clients)
        elapsed = time.perf_counter() - start
        sampler.running = False
        sampler.join()
        created = sum(r["created"] for r in responses)
        if created != args.n:
            raise SystemExit(f"expected {args.n} created, the server says {created}")
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM corpus_item").fetchone()[0]
        if stored != args.n + args.warmup:
            raise SystemExit(f"expected {args.n + args.warmup} rows, the database has {stored}")
        rate = args.n / elapsed

        copy_seconds = copy_reference(dsn, env, items)
    copy_rate = args.n / copy_seconds
    result = {
        "bench": "ingest",
        "n": args.n,
        "batch": args.batch,
        "clients": args.clients,
        "web_workers": args.web_workers,
        "threads": args.threads,
        "text_bytes": args.text_bytes,
        "seconds": round(elapsed, 2),
        "items_per_s": round(rate),
        "mb_per_s": round(body_mb / elapsed, 1),
        "web_rss_idle_mb": round(idle_rss / 2**20),
        "web_rss_peak_mb": round(sampler.peak / 2**20),
        "copy_seconds": round(copy_seconds, 2),
        "copy_items_per_s": round(copy_rate),
        "ratio_to_copy": round(rate / copy_rate, 3),
    }
    print(f"ingest over HTTP : {rate:,.0f} items/s ({elapsed:.1f} s, {body_mb / elapsed:.1f} "
          "MB/s of JSON)")  # fmt: skip
    print(f"web peak RSS     : {sampler.peak / 2**20:.0f} MB (idle {idle_rss / 2**20:.0f} MB, "
          f"master + {args.web_workers} workers)")  # fmt: skip
    print(f"PostgreSQL COPY  : {copy_rate:,.0f} items/s ({copy_seconds:.1f} s)")
    print(f"ratio to COPY    : {rate / copy_rate:.1%}")
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
