"""Benchmark: export N approved ~1 KB items from PostgreSQL through a real Celery worker.

Targets (issue 5): 1,000,000 items exported as JSONL at >= 50 MB/s with the worker's peak RSS
<= 250 MB, and as Parquet at >= 30 MB/s.

    .venv/bin/python bench/export.py [--items 1000000] [--formats jsonl,parquet] [--reuse]
        [--verify] [--dataset SLUG]

Database: DATABASE_URL if it is PostgreSQL, else sg_bench_exports on the server of
BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432); results also go to
bench/results/export.json. ``--dataset SLUG`` exports the approved items of an existing
dataset of DATABASE_URL instead, loading nothing (the 1M and 10M corpora of bench/scale.py).

What it does: (re)creates the database (``--reuse`` keeps it when it already holds the items),
loads N approved items of ~1 KB of text, each with a score row, with COPY; starts an embedded
Redis and, per format, a fresh ``celery worker --pool solo`` (so each format's peak RSS is its
own); requests the export as a pipeline would (the build is enqueued on commit) and waits.

Reported per format: build time (the export's started_at to finished_at: the snapshot under
the audit lock, the streamed write and the manifest); rows MB/s, the rows exported per second
counted as their JSON lines (MB = 10**6 bytes; for JSONL that is the file, for Parquet the same
rows compressed into a smaller file); file MB/s; text MB/s (the texts alone); and the worker's
RSS after boot and its peak during the build (VmHWM from /proc). Not a test.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/sg_bench_exports"
RESULTS = ROOT / "bench" / "results" / "export.json"


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def load_items(n: int) -> int:
    """N approved items of ~1 KB (random words from a 20,000-word vocabulary, so the diversity
    summary has something to measure), with a score each. Returns the bytes of text loaded."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from corpus.models import Dataset, Item, Score, Source
    from corpus.scoring.text import content_hash

    dataset = Dataset.objects.create(slug="bench", name="bench")
    sources = [Source.objects.create(dataset=dataset, name=f"source-{i}") for i in range(4)]
    rng = np.random.default_rng(1)
    vocabulary = np.array(
        [
            "".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(3, 10)))
            for _ in range(20_000)
        ]
    )
    now = timezone.now()
    given = {
        "dataset": dataset.pk,
        "state": Item.State.APPROVED,
        "decided_at": now,
        "decided_by": json.dumps([1, 2]),
        "created_at": now,
        "updated_at": now,
        "external_id": None,
    }
    fields = [f for f in Item._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f.column for f in fields)
    origins = ["synthetic", "synthetic", "synthetic", "human", "unknown"]
    text_bytes = 0
    batch = 20_000
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {Item._meta.db_table} ({columns}) FROM STDIN") as copy:
            for start in range(0, n, batch):
                size = min(batch, n - start)
                words = vocabulary[rng.integers(0, vocabulary.size, (size, 150))]
                for k in range(size):
                    i = start + k
                    text = (f"item {i}: " + " ".join(words[k]))[:1024]
                    text_bytes += len(text.encode())
                    origin = origins[i % len(origins)]
                    values = {
                        **given,
                        "source": sources[i % len(sources)].pk,
                        "text": text,
                        "content_hash": content_hash(text),
                        "origin": origin,
                        "generator_model": "" if origin == "human" else f"model-{i % 3}",
                        "generator_version": "" if origin == "human" else "1",
                        "generation": 0 if origin == "human" else 1 + i % 3,
                        "metadata": json.dumps({"lang": "en", "batch": i // batch}),
                    }
                    row = []
                    for f in fields:
                        if f.attname in values or f.name in values:
                            row.append(values.get(f.name, values.get(f.attname)))
                        else:
                            default = f.get_default()
                            if isinstance(default, dict | list):
                                default = json.dumps(default)
                            row.append(default)
                    copy.write_row(row)
                print(f"  loaded {start + size:,} items ({time.perf_counter() - started:.0f} s)")
        score_fields = [f for f in Score._meta.concrete_fields if f.column != "item_id"]
        defaults = {
            "scorer_version": "1",
            "lexical": json.dumps({"distinct_1": 0.71, "compression_ratio": 2.4}),
            "detector_name": "features",
            "detector_version": "1",
            "detector_probability": 0.42,
            "detectors": json.dumps({"features": {"version": "1", "probability": 0.42}}),
            "computed_at": now,
        }
        values = []
        for f in score_fields:
            value = defaults.get(f.name, f.get_default())
            values.append(json.dumps(value) if isinstance(value, dict | list) else value)
        cols = ", ".join(f.column for f in score_fields)
        marks = ", ".join(["%s"] * len(values))
        cursor.execute(
            f"INSERT INTO {Score._meta.db_table} (item_id, {cols}) "
            f"SELECT id, {marks} FROM {Item._meta.db_table} WHERE dataset_id = %s",
            [*values, dataset.pk],
        )
        cursor.execute("ANALYZE")
    print(f"  loaded {n:,} items and scores in {time.perf_counter() - started:.0f} s")
    return text_bytes


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    from django.conf import settings
    from django.core.cache import cache

    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
        "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
        "--hostname", f"bench-export-{os.getpid()}@%h",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while cache.get(settings.SYNTHGATE_WORKER_HEARTBEAT_KEY) != process.pid:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,parquet")
    parser.add_argument("--reuse", action="store_true", help="keep the database if loaded")
    parser.add_argument("--verify", action="store_true", help="also time verify_export")
    parser.add_argument(
        "--dataset",
        help="export the approved items of this dataset of DATABASE_URL as it is, loading "
        "nothing (e.g. 'big' in a database bench/scale.py kept with --keep)",
    )
    args = parser.parse_args()

    # DATABASE_URL when it names PostgreSQL, else the scratch database on BENCH_POSTGRES's
    # server (the convention of the other benchmarks), else on 127.0.0.1.
    db_url = os.environ.get("DATABASE_URL", "")
    if not db_url.startswith("postgres"):
        server = urlsplit(os.environ.get("BENCH_POSTGRES", DEFAULT_DB))
        db_url = urlunsplit(server._replace(path="/sg_bench_exports"))
    var_dir = Path(os.environ.get("SYNTHGATE_VAR_DIR", ROOT / "var")) / "bench-export"
    var_dir.mkdir(parents=True, exist_ok=True)
    from config import embedded_redis

    redis_dir = var_dir / "redis"
    redis_process = embedded_redis.start(redis_dir, persist=False)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": f"unix://{embedded_redis.socket_path(redis_dir)}",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "SYNTHGATE_EXPORT_DIR": str(var_dir / "exports"),
        "SYNTHGATE_EXPORT_TMP_DIR": str(var_dir / "staging"),
    }
    os.environ.update(env)
    try:
        run(args, db_url, env, var_dir)
    finally:
        embedded_redis.stop(redis_process)


def run(args: argparse.Namespace, db_url: str, env: dict[str, str], var_dir: Path) -> None:
    import psycopg

    reuse = bool(args.dataset)
    if args.reuse and not reuse:
        try:
            with psycopg.connect(db_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM corpus_item i JOIN corpus_dataset d ON d.id = "
                    "i.dataset_id WHERE d.slug = 'bench' AND i.state = 'approved'"
                ).fetchone()
                reuse = bool(row and row[0] == args.items)
        except psycopg.Error:
            reuse = False
    if not reuse:
        recreate_database(db_url)
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db.models import Sum
    from django.db.models.functions import Length

    from corpus.models import AuditEvent, Dataset, Export
    from corpus.services.exports.build import export_request

    call_command("migrate", verbosity=0)
    cache.clear()
    if reuse:
        print(f"reusing the items in {db_url}")
    else:
        print(f"loading {args.items:,} items into {db_url}")
        load_items(args.items)
    dataset = Dataset.objects.get(slug=args.dataset or "bench")
    approved = dataset.items.filter(state="approved")
    text_bytes = approved.aggregate(n=Sum(Length("text")))["n"] or 0
    args.items = approved.count()
    results = []
    json_bytes = None  # the rows' size as JSON lines, from the JSONL export
    for fmt in args.formats.split(","):
        process = start_worker(env, var_dir / f"worker-{fmt}.log")
        try:
            boot_rss = rss_mb(process.pid, "VmRSS")
            export = export_request(dataset=dataset, actor="bench", format=fmt)
            peak_seen = boot_rss
            while True:
                export.refresh_from_db()
                peak_seen = max(peak_seen, rss_mb(process.pid, "VmRSS"))
                if export.status in (Export.Status.READY, Export.Status.FAILED):
                    break
                if process.poll() is not None:
                    raise RuntimeError(
                        f"worker died: {(var_dir / f'worker-{fmt}.log').read_text()}"
                    )
                time.sleep(0.2)
            peak = rss_mb(process.pid, "VmHWM")
        finally:
            stop_worker(process)
        if export.status != Export.Status.READY:
            raise RuntimeError(f"{fmt} export failed: {export.error}")
        seconds = (export.finished_at - export.started_at).total_seconds()
        if fmt == "jsonl":
            json_bytes = export.size
        started = AuditEvent.objects.get(action="export.started", object_id=str(export.pk))
        snapshot = (started.time - export.started_at).total_seconds()
        result = {
            "format": fmt,
            "rows": export.rows_written,
            "file_mb": round(export.size / 1e6, 1),
            "seconds": round(seconds, 1),
            "snapshot_seconds": round(snapshot, 1),
            "file_mb_per_s": round(export.size / 1e6 / seconds, 1),
            # the rows exported per second, counted as their JSON lines (for JSONL the file)
            "rows_mb_per_s": round(json_bytes / 1e6 / seconds, 1) if json_bytes else None,
            "text_mb_per_s": round(text_bytes / 1e6 / seconds, 1),
            "worker_rss_boot_mb": round(boot_rss),
            "worker_rss_peak_mb": round(peak),
        }
        if args.verify:
            t0 = time.perf_counter()
            call_command("verify_export", str(export.pk))
            result["verify_seconds"] = round(time.perf_counter() - t0, 1)
        print("RESULT " + json.dumps({"bench": "export", **result}), flush=True)
        results.append(result)
        (var_dir / "exports" / export.file).unlink(missing_ok=True)  # 1 GB: do not keep it
    load = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"items": args.items, "load_average": round(load, 1), "cpus": os.cpu_count(),
             "results": results},
            indent=2,
        )
        + "\n"
    )  # fmt: skip
    print(f"\nload average at the end: {load:.1f} ({os.cpu_count()} CPUs); saved to {RESULTS}")
    print("format   rows       file MB  seconds  rows MB/s  file MB/s  text MB/s  RSS boot→peak")
    for r in results:
        print(
            f"{r['format']:8} {r['rows']:<10,} {r['file_mb']:<8} {r['seconds']:<8} "
            f"{r['rows_mb_per_s']!s:<10} {r['file_mb_per_s']:<10} {r['text_mb_per_s']:<10} "
            f"{r['worker_rss_boot_mb']}→{r['worker_rss_peak_mb']} MB"
        )


if __name__ == "__main__":
    main()
