"""Benchmark: audited decisions per second with concurrent writers, and verify_audit over a
million events, on PostgreSQL.

Targets (issue 6): >= 5,000 audited decisions/s with 8 concurrent writers, and ``verify_audit``
over 1,000,000 events in <= 60 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench_audit \\
        .venv/bin/python bench/audit.py [--writers 8] [--decisions 48000] [--batch 64]
                                        [--events 1000000] [--processes] [--keep]

What it does:

1. (re)creates the database named by DATABASE_URL (dropped again at the end unless ``--keep``),
   migrates it, and loads the queued items the runs below decide;
2. decisions: ``--writers`` threads (``--processes``: forked processes), each with its own
   connection, decide their share of the items. A decision is a conditional ``UPDATE
   corpus_item ... WHERE id = %s AND state = 'queued'`` (its result checked) plus its own audit
   event. Each transaction holds ``--batch`` decisions: their updates go first, in pipeline mode
   and without the chain lock; then ``audit_append_many`` takes the head lock, chains the
   batch's events, inserts them and moves the head, and the commit releases the lock. The lock
   is held across one commit (one WAL flush) per batch instead of per decision: with one
   decision per transaction every decision waits for its own fsync under the lock, which caps
   the rate at 1 / fsync time. That unbatched run is measured too (``--unbatched-decisions``),
   for comparison. The chain is verified afterwards;
3. verification: appends events (as ``audit_append_many`` batches of 10,000 ``review.decided``
   shaped events) until the chain holds ``--events``, then times ``manage.py verify_audit`` (the
   whole chain, keyset batches, anchors included) in its own process, and its peak RSS.

Not a test: it prints the numbers, and a ``RESULT {json}`` line for bench/run_all.py.
"""

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/sg_bench_audit"


def configure(url: str, var_dir: Path) -> None:
    """Environment for Django before it loads: the bench database, no DEBUG (it would keep
    every query in memory), an anchor file of its own."""
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SYNTHGATE_VAR_DIR", str(var_dir))
    os.environ["SYNTHGATE_AUDIT_ANCHOR_PATH"] = str(var_dir / "bench-audit-anchors.log")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_items(n: int) -> tuple[int, list[int]]:
    """``n`` queued items (bulk inserts through the model, so new columns get their defaults);
    returns (dataset id, item ids)."""
    from corpus.models import Dataset, Item, Source

    dataset = Dataset.objects.create(slug="bench", name="Bench")
    source = Source.objects.create(dataset=dataset, name="bench")
    Item.objects.bulk_create(
        (
            Item(
                dataset=dataset,
                source=source,
                text=f"synthetic answer {i} about topic {i % 977}",
                content_hash=f"{i:064x}",
                origin=Item.Origin.SYNTHETIC,
                state=Item.State.QUEUED,
                priority=0.5,
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    ids = list(Item.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True))
    return dataset.pk, ids


def decide(ids: list[int], *, dataset_id: int, reviewer: int, batch: int) -> int:
    """One writer: decide ``ids`` in transactions of ``batch`` decisions. Returns decisions."""
    from django.db import connection, transaction
    from django.utils import timezone

    from corpus.models import Dataset
    from corpus.services.audit import audit_append_many

    dataset = Dataset.objects.get(pk=dataset_id)
    actor = f"user:{reviewer}:reviewer{reviewer}"
    done = 0
    try:
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            with transaction.atomic():
                now = timezone.now()
                events = []
                with connection.cursor() as cursor:
                    # One conditional UPDATE per decision, sent in pipeline mode (psycopg's
                    # executemany): the statements are the same, the round trips overlap.
                    raw = cursor.cursor
                    raw.executemany(
                        "UPDATE corpus_item SET state = 'approved', decided_at = %s, "
                        "decided_by = %s, updated_at = %s WHERE id = %s AND state = 'queued' "
                        "RETURNING id",
                        [(now, f"[{reviewer}]", now, item_id) for item_id in chunk],
                        returning=True,
                    )
                    decided = []
                    while True:
                        decided += [row[0] for row in raw.fetchall()]
                        if not raw.nextset():
                            break
                    if decided != chunk:
                        missing = sorted(set(chunk) - set(decided))
                        raise RuntimeError(f"items {missing} were not queued")
                    for item_id in chunk:
                        events.append(
                            {
                                "actor": actor,
                                "action": "review.decided",
                                "object_type": "item",
                                "object_id": item_id,
                                "dataset": dataset,
                                "payload": {
                                    "verdict": "approve",
                                    "outcome": "approved",
                                    "via": "bench",
                                },
                            }
                        )
                # The chain lock is taken last, so it is held only for the appends and commit.
                audit_append_many(events=events)
            done += len(chunk)
    finally:
        connection.close()
    return done


def _process_writer(
    index: int, share: list[int], dataset_id: int, batch: int, barrier, out
) -> None:  # type: ignore[no-untyped-def]
    try:
        barrier.wait()
        out.put((index, decide(share, dataset_id=dataset_id, reviewer=index + 1, batch=batch)))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        out.put((index, exc))


def run_decisions(
    ids: list[int],
    *,
    dataset_id: int,
    writers: int,
    batch: int,
    processes: bool,
) -> dict:
    """``writers`` concurrent writers, as threads of this process or as forked processes (each
    with its own interpreter lock: the Python side of a decision then runs on both cores)."""
    from django.db import connections

    connections.close_all()
    shares = [ids[i::writers] for i in range(writers)]
    results: list[int] = [0] * writers
    errors: list[BaseException] = []
    if processes:
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(writers + 1)
        out = context.Queue()
        workers = [
            context.Process(
                target=_process_writer,
                args=(i, shares[i], dataset_id, batch, barrier, out),
            )
            for i in range(writers)
        ]
    else:
        barrier = threading.Barrier(writers + 1)

        def work(index: int) -> None:
            try:
                barrier.wait()
                results[index] = decide(
                    shares[index],
                    dataset_id=dataset_id,
                    reviewer=index + 1,
                    batch=batch,
                )
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    if processes:
        for _ in workers:
            index, outcome = out.get()
            if isinstance(outcome, BaseException):
                errors.append(outcome)
            else:
                results[index] = outcome
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = sum(results)
    return {
        "writers": writers,
        "as": "processes" if processes else "threads",
        "batch": batch,
        "decisions": total,
        "seconds": round(seconds, 2),
        "per_second": round(total / seconds),
    }


def fill_events(target: int) -> float:
    """Append events until the chain holds ``target``; returns the seconds it took."""
    from django.db import transaction

    from corpus.models import AuditHead, Dataset
    from corpus.services.audit import audit_append_many

    dataset = Dataset.objects.get(slug="bench")
    start = time.perf_counter()
    have = AuditHead.objects.get(pk=1).seq
    while have < target:
        n = min(10_000, target - have)
        with transaction.atomic():
            audit_append_many(
                events=[
                    {
                        "actor": f"user:{1 + i % 8}:reviewer{1 + i % 8}",
                        "action": "review.decided",
                        "object_type": "item",
                        "object_id": 1 + (have + i) % 50_000,
                        "dataset": dataset,
                        "payload": {
                            "decision": have + i,
                            "verdict": "approve" if i % 3 else "reject",
                            "reason": "" if i % 3 else "low_quality",
                            "via": "bench",
                            "seconds": 4.2,
                        },
                    }
                    for i in range(n)
                ]
            )
        have += n
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--decisions", type=int, default=48_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--unbatched-decisions", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--processes", action="store_true", help="writers as processes (default: threads)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    if not url.startswith("postgres"):
        print("bench/audit.py measures PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    if "bench" not in url.rsplit("/", 1)[1]:
        # The database is dropped and created again: never one that could hold real data.
        print("the benchmark database's name must contain 'bench'", file=sys.stderr)
        return 2
    var_dir = ROOT / "var" / "bench-audit"
    var_dir.mkdir(parents=True, exist_ok=True)
    configure(url, var_dir)
    recreate_database(url)
    anchors = Path(os.environ["SYNTHGATE_AUDIT_ANCHOR_PATH"])
    anchors.unlink(missing_ok=True)

    import django

    django.setup()
    from django.core.management import call_command

    from corpus.services.audit_verify import audit_verify

    call_command("migrate", verbosity=0)
    results: dict = {"database": url.rsplit("/", 1)[1], "cpus": os.cpu_count()}
    try:
        total = args.decisions + args.unbatched_decisions
        dataset_id, ids = load_items(total)
        print(f"loaded {len(ids)} queued items")
        runs = {}
        slices = {
            "batched": (ids[: args.decisions], args.batch),
            "unbatched": (ids[args.decisions :], 1),
        }
        for name, (share, batch) in slices.items():
            run = run_decisions(
                share,
                dataset_id=dataset_id,
                writers=args.writers,
                batch=batch,
                processes=args.processes,
            )
            runs[name] = run
            print(
                f"decisions, {run['writers']} writer {run['as']}, {run['batch']} per "
                f"transaction: {run['decisions']} in {run['seconds']} s = {run['per_second']}/s"
            )
        checked, problem = audit_verify()
        if problem or checked != total:
            raise RuntimeError(f"chain after the writers: {checked} events, {problem}")
        results["decisions"] = runs

        fill_seconds = fill_events(args.events)
        print(f"appended events up to {args.events} in {fill_seconds:.1f} s")
        # The command as an operator runs it, in its own process: its time and its peak RSS.
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=False,
        )
        verify_seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print((done.stdout or done.stderr).strip())
        if done.returncode != 0:
            raise RuntimeError("verify_audit failed")
        print(
            f"verify_audit over {args.events} events: {verify_seconds:.1f} s "
            f"({args.events / verify_seconds:,.0f} events/s), peak RSS {peak_mb:.0f} MB"
        )
        results["verify"] = {
            "events": args.events,
            "seconds": round(verify_seconds, 1),
            "events_per_second": round(args.events / verify_seconds),
            "peak_rss_mb": round(peak_mb),
            "append_seconds": round(fill_seconds, 1),
        }
        results["targets_met"] = {
            "decisions_per_second_5000": runs["batched"]["per_second"] >= 5000,
            "verify_1m_in_60s": verify_seconds <= 60 and args.events >= 1_000_000,
        }
        # bench/run_all.py collects these lines.
        print("RESULT " + json.dumps(results))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
