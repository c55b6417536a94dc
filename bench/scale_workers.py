"""Scoring that scales out: 1, 2 and 4 Celery worker processes sharing one PostgreSQL and one Redis.

    .venv/bin/python bench/scale_workers.py [--n 20000] [--workers 1 2 4] [--netns] [--pin]

Each round ingests ``--n`` items into a dataset of its own (their scoring tasks held back), starts
the round's worker processes (``celery worker --pool threads --concurrency 2`` each, as one
process of a worker host; ``--pool solo`` for one task at a time), waits until every one of them
is ready, sends the held tasks and times until no item is pending. It reports items/s, items/s
per worker and the scaling efficiency (rate / (workers x the one-worker rate)), and checks in the
database that every item left ``pending`` exactly once: each item is in exactly one
``items.scored`` audit event and has one score with ``attempts = 1`` (a batch delivered twice
finds its items scored and changes nothing; a lost one leaves them pending).

``--netns`` runs every worker in a network namespace of its own, as on a host of its own: its own
loopback, one veth pair to this host with addresses from 10.213.<i>.0/30 (created here, removed
at the end), and no route but that link. PostgreSQL and Redis listen on 127.0.0.1 only, so a
socat on this side of each link forwards 10.213.<i>.1:5432 and :6379 to them. Needs root
(``ip netns add``). ``--pin`` pins worker i to CPU i mod the CPU count, so that on a 2-core
machine two workers get a core each rather than whatever the scheduler gives them.

The machine has 2 cores: beyond 2 workers the rate is bounded by the CPUs, not by the design; the
figure that carries to a real cluster is whether 2 workers on 2 cores double the rate of one.

Uses --database (default sg_scale_workers, dropped and recreated) on the PostgreSQL of
BENCH_POSTGRES and Redis db --redis-db (default 15, flushed) on 127.0.0.1:6379. Not a test.
"""

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (  # noqa: SIM905 (a list literal of these is 40 lines)
    "river harbour lantern copper meadow signal orchard engine ledger thistle granite compass "
    "willow beacon furnace quarry pebble saddle kettle timber glacier ferry almanac barley cinder "
    "dialect ember fathom gravel hinge ivory juniper kiln lattice marble nettle oyster parcel"
).split()
NETNS_PREFIX = "sgscale-w"
NET = "10.213"


def text_of(rng: random.Random, serial: int, size: int = 1000) -> str:
    parts = [f"Item {serial}."]
    length = len(parts[0])
    while length < size:
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(6, 14))).capitalize() + "."
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)[:size]


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


class Namespaces:
    """One network namespace per worker with a veth link to this host and socat forwarders."""

    def __init__(self, count: int, pg_port: int, redis_port: int) -> None:
        self.count = count
        self.pg_port = pg_port
        self.redis_port = redis_port
        self.forwarders: list[subprocess.Popen] = []
        self.made: list[int] = []

    def host_address(self, i: int) -> str:
        return f"{NET}.{i + 1}.1"

    def __enter__(self) -> "Namespaces":
        try:
            for i in range(self.count):
                ns, host_if, ns_if = f"{NETNS_PREFIX}{i}", f"sgs-h{i}", f"sgs-n{i}"
                run("ip", "netns", "add", ns)
                self.made.append(i)
                run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
                run("ip", "link", "set", ns_if, "netns", ns)
                run("ip", "addr", "add", f"{self.host_address(i)}/30", "dev", host_if)
                run("ip", "link", "set", host_if, "up")
                run("ip", "-n", ns, "addr", "add", f"{NET}.{i + 1}.2/30", "dev", ns_if)
                run("ip", "-n", ns, "link", "set", ns_if, "up")
                run("ip", "-n", ns, "link", "set", "lo", "up")
                for port, target in ((5432, self.pg_port), (6379, self.redis_port)):
                    self.forwarders.append(
                        subprocess.Popen(
                            [
                                "socat",
                                f"TCP-LISTEN:{port},bind={self.host_address(i)},fork,reuseaddr",
                                f"TCP:127.0.0.1:{target}",
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
            time.sleep(0.3)  # socat binds
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for forwarder in self.forwarders:
            forwarder.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                forwarder.wait(5)
        for i in self.made:
            # Deleting the namespace deletes its end of the pair, and with it the host's end.
            subprocess.run(["ip", "netns", "delete", f"{NETNS_PREFIX}{i}"], check=False)
        self.made.clear()
        self.forwarders.clear()


def start_worker(
    i: int, env: dict[str, str], args: argparse.Namespace, log: Path, netns: Namespaces | None
) -> subprocess.Popen:
    argv = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "config",
        "worker",
        "-n",
        f"w{i}@sgscale",
        "--pool",
        args.pool,
        "--concurrency",
        str(1 if args.pool == "solo" else args.concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    worker_env = dict(env)
    if netns is not None:
        host = netns.host_address(i)
        worker_env["DATABASE_URL"] = env["DATABASE_URL"].replace("127.0.0.1", host)
        worker_env["REDIS_URL"] = env["REDIS_URL"].replace("127.0.0.1", host)
        argv = ["ip", "netns", "exec", f"{NETNS_PREFIX}{i}", *argv]
    cpus = os.sched_getaffinity(0)
    pin = sorted(cpus)[i % len(cpus)] if args.pin else None

    def preexec() -> None:
        os.setsid()
        if pin is not None:
            os.sched_setaffinity(0, {pin})

    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=worker_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=preexec,
    )


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, 15)
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
            worker.wait()


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def one_round(
    count: int, args: argparse.Namespace, env: dict[str, str], workdir: Path, label: str
) -> dict:
    from django.db import connection

    from corpus.models import AuditEvent, Dataset, Item, Score
    from corpus.services import ingest
    from corpus.services.audit import SYSTEM
    from corpus.services.maintenance import tables_analyze_stale

    datasets = [
        Dataset.objects.create(slug=f"bench-{label}-{d}", name=f"bench {label} {d}")
        for d in range(args.datasets)
    ]
    rng = random.Random(count)
    held: list[list[int]] = []
    send = ingest._score_enqueue
    ingest._score_enqueue = held.append
    try:
        for start in range(0, args.n, 1000):
            raw = [
                {"text": f"{label} " + text_of(rng, i), "origin": "synthetic"}
                for i in range(start, min(start + 1000, args.n))
            ]
            ingest.items_ingest(
                dataset=datasets[start // 1000 % len(datasets)],
                items=ingest.items_parse(raw),
                actor=SYSTEM,
                default_source="b",
            )
    finally:
        ingest._score_enqueue = send
    tables_analyze_stale()

    netns = Namespaces(count, 5432, 6379) if args.netns else None
    workers: list[subprocess.Popen] = []
    logs = [workdir / f"{label}-w{i}.log" for i in range(count)]
    with netns or contextlib.nullcontext():
        try:
            launched = time.perf_counter()
            workers = [start_worker(i, env, args, logs[i], netns) for i in range(count)]
            while not all(b" ready." in log.read_bytes() for log in logs):
                for worker, log in zip(workers, logs, strict=True):
                    if worker.poll() is not None:
                        raise SystemExit(f"a worker exited:\n{log.read_text()[-3000:]}")
                if time.perf_counter() - launched > 180:
                    raise SystemExit("the workers did not start within 180 s")
                time.sleep(0.05)
            cpu_before = [tree_cpu_seconds(w.pid) for w in workers]
            start = time.perf_counter()
            for ids in held:
                send(ids)
            scored = AuditEvent.objects.filter(dataset__in=datasets, action="items.scored")
            pending = Item.objects.filter(dataset__in=datasets, state=Item.State.PENDING)
            while scored.count() < len(held) or pending.exists():
                if time.perf_counter() - start > 1800:
                    raise SystemExit("timed out")
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            cpu = [tree_cpu_seconds(w.pid) - b for w, b in zip(workers, cpu_before, strict=True)]
        finally:
            stop_workers(workers)

    # Exactly once, checked in the database.
    seen: dict[int, int] = {}
    for payload in scored.values_list("payload", flat=True):
        moved = payload["queued"] + [int(i) for i in payload["auto_rejected"]]
        for item_id in moved + payload["score_failed"]:
            seen[item_id] = seen.get(item_id, 0) + 1
    item_ids = set(Item.objects.filter(dataset__in=datasets).values_list("id", flat=True))
    twice = sorted(i for i, n in seen.items() if n > 1)
    missed = sorted(item_ids - seen.keys())
    scores = Score.objects.filter(item__dataset__in=datasets)
    bad_attempts = scores.exclude(attempts=1).count()
    score_rows = scores.count()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT item_id FROM corpus_score s JOIN corpus_item i "
            "ON i.id = s.item_id WHERE i.dataset_id = ANY(%s) GROUP BY item_id "
            "HAVING count(*) > 1) d",
            [[d.pk for d in datasets]],
        )
        duplicate_scores = cursor.fetchone()[0]
    by_worker = [log.read_text(errors="replace").count("succeeded in") for log in logs]
    return {
        "workers": count,
        "items": args.n,
        "batches": len(held),
        "seconds": round(elapsed, 2),
        "items_per_s": round(args.n / elapsed),
        "items_per_s_per_worker": round(args.n / elapsed / count),
        "tasks_per_worker": by_worker,
        "worker_cpu_seconds": [round(c, 1) for c in cpu],
        "items_scored_twice": len(twice),
        "items_missed": len(missed),
        "score_rows": score_rows,
        "scores_with_attempts_not_1": bad_attempts,
        "items_with_two_scores": duplicate_scores,
        "exactly_once": not twice and not missed and score_rows == args.n and not bad_attempts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="items per round")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pool", choices=["threads", "solo", "prefork"], default="threads")
    parser.add_argument("--concurrency", type=int, default=2, help="tasks in flight per worker")
    parser.add_argument(
        "--datasets",
        type=int,
        default=1,
        help="datasets the items are spread over (scoring holds a lock per dataset)",
    )
    parser.add_argument("--netns", action="store_true", help="each worker in its own netns")
    parser.add_argument("--pin", action="store_true", help="pin worker i to CPU i mod CPUs")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--database", default="sg_scale_workers")
    parser.add_argument("--redis-db", type=int, default=15)
    args = parser.parse_args()
    if args.netns and os.geteuid() != 0:
        parser.error("--netns needs root (ip netns add)")
    if 1 not in args.workers:
        parser.error("--workers must include 1: efficiency is relative to one worker")

    base = args.postgres.rsplit("/", 1)[0]
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{args.database}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import tempfile

    import django

    django.setup()
    from django.core.management import call_command

    from corpus.redis_client import redis_client

    call_command("migrate", verbosity=0)
    redis_client().flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-scale-"))
    rounds = []
    try:
        for count in sorted(args.workers):
            result = one_round(count, args, env, workdir, label=f"{count}w")
            rounds.append(result)
            one = rounds[0]["items_per_s"]
            efficiency = result["items_per_s"] / (count * one)
            result["efficiency"] = round(efficiency, 2)
            print(
                f"{count} worker(s){' in netns' if args.netns else ''}: "
                f"{result['items_per_s']:,} items/s ({result['items_per_s_per_worker']:,} per "
                f"worker), efficiency {efficiency:.0%}, tasks per worker "
                f"{result['tasks_per_worker']}, CPU s {result['worker_cpu_seconds']}; "
                f"exactly once: {result['exactly_once']} (twice {result['items_scored_twice']}, "
                f"missed {result['items_missed']})",
                flush=True,
            )
    finally:
        redis_client().flushdb()
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "scale_workers",
                "pool": args.pool,
                "concurrency": args.concurrency,
                "netns": args.netns,
                "pin": args.pin,
                "datasets": args.datasets,
                "cpus": len(os.sched_getaffinity(0)),
                "rounds": rounds,
            }
        ),
        flush=True,
    )
    return 0 if all(r["exactly_once"] for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
