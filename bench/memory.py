"""Resident memory of every Synthgate process, at rest and at peak, as ``make run`` starts them.

    .venv/bin/python bench/memory.py [--web-workers 3] [--worker-concurrency 2] [--items 20000]
                                     [--gunicorn-config config/gunicorn.py | --gunicorn-config ""]

Starts, on a fresh PostgreSQL database (``--database``, dropped at the end) and an embedded Redis,
what ``make run`` starts: gunicorn (``--web-workers``; with ``--gunicorn-config``, by default the
project's config/gunicorn.py: the application preloaded in the master and its objects frozen out
of the garbage collector before the fork), a Celery worker (prefork, ``--worker-concurrency``)
and Celery beat, plus the demo data. Then:

1. **rest**: once the worker's heartbeat is in, each web worker has served a few requests (the
   login page, /healthz, the API list) and the processes were left alone for ``--settle``
   seconds;
2. **peak**: the highest figure sampled every 0.2 s while ``--items`` items are posted through
   the API in requests of 1,000 (scoring runs as they arrive), and then the reviewer list
   and the API list are read 20 times each;
3. **after**: at rest again once every item is scored.

For each process: RSS (what ``ps`` shows) and PSS (its shared pages divided among the processes
that share them, from /proc/<pid>/smaps_rollup: the figure that adds up across forked
children). The targets of issue 16: a web worker under 150 MB, the scoring worker (its main
process and its children together, PSS) under 300 MB at rest.

Prints a table and a ``RESULT {json}`` line. Not a test.
"""

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import orjson
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import (  # noqa: E402
    drop_database,
    free_port,
    make_items,
    manage,
    recreate_database,
    wait_for_http,
)

from config import embedded_redis  # noqa: E402

MB = 2**20


def memory(proc: psutil.Process) -> tuple[int, int]:
    """(RSS, PSS) in bytes."""
    info = proc.memory_full_info()
    return info.rss, info.pss


def role_of(proc: psutil.Process, roots: dict[str, int]) -> str | None:
    for name, pid in roots.items():
        if proc.pid == pid:
            return f"{name} main"
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = proc.ppid()
        for name, pid in roots.items():
            if parent == pid:
                return f"{name} child"
    return None


class Sampler(threading.Thread):
    """Per process: the last and the highest (RSS, PSS), every ``interval`` seconds."""

    def __init__(self, roots: dict[str, int], interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.interval = interval
        self.running = True
        self.peak: dict[int, list[int]] = {}
        self.roles: dict[int, str] = {}
        self.lock = threading.Lock()

    def processes(self) -> list[psutil.Process]:
        found = []
        for pid in self.roots.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(pid)
                found += [root, *root.children(recursive=False)]
        return found

    def snapshot(self) -> dict[int, tuple[str, int, int]]:
        result = {}
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                role = role_of(proc, self.roots)
                if role is None:
                    continue
                rss, pss = memory(proc)
                result[proc.pid] = (role, rss, pss)
        return result

    def run(self) -> None:
        while self.running:
            for pid, (role, rss, pss) in self.snapshot().items():
                with self.lock:
                    self.roles[pid] = role
                    old = self.peak.get(pid, [0, 0])
                    self.peak[pid] = [max(old[0], rss), max(old[1], pss)]
            time.sleep(self.interval)


def table(title: str, snap: dict[int, tuple[str, int, int]]) -> list[dict]:
    rows = [
        {"pid": pid, "role": role, "rss_mb": round(rss / MB, 1), "pss_mb": round(pss / MB, 1)}
        for pid, (role, rss, pss) in sorted(snap.items(), key=lambda kv: (kv[1][0], kv[0]))
    ]
    print(f"\n{title}")
    for row in rows:
        print(f"  {row['role']:<14} pid {row['pid']:>7}  RSS {row['rss_mb']:>7.1f} MB  "
              f"PSS {row['pss_mb']:>7.1f} MB")  # fmt: skip
    for role in ("web", "worker", "beat"):
        pss = sum(r["pss_mb"] for r in rows if r["role"].startswith(role))
        print(f"  {role + ' total PSS':<22} {pss:>7.1f} MB")
    return rows


def request(port: int, method: str, path: str, headers: dict | None = None, body=None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response, payload


def login(port: int, username: str, password: str) -> str:
    """A session cookie header for a demo user, through the login form (CSRF included)."""
    response, payload = request(port, "GET", "/accounts/login/")
    cookies = {
        c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0]
        for c in response.headers.get_all("Set-Cookie") or []
    }
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', payload)
    if match is None:
        raise SystemExit(f"no login form (HTTP {response.status}): {payload[:300]!r}")
    token = match.group(1).decode()
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    )
    response, _ = request(
        port,
        "POST",
        "/accounts/login/",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken']}",
            "Referer": f"http://127.0.0.1:{port}/accounts/login/",
        },
        body,
    )
    for cookie in response.headers.get_all("Set-Cookie") or []:
        if cookie.startswith("sessionid="):
            return cookie.split(";", 1)[0]
    raise SystemExit(f"login as {username} failed (HTTP {response.status})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument(
        "--gunicorn-config",
        default="config/gunicorn.py",
        help='gunicorn config file ("" for none: no preload, gunicorn defaults)',
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--database", default="sg_scale_memory")
    args = parser.parse_args()

    dsn = recreate_database(args.postgres, args.database)
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-memory-"))
    redis_process = embedded_redis.start(workdir / "redis", persist=False, die_with_parent=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "SYNTHGATE_SECURE_COOKIES": "false",
        "SYNTHGATE_SSL_REDIRECT": "false",
        "DATABASE_URL": dsn,
        "REDIS_URL": f"unix://{embedded_redis.socket_path(workdir / 'redis')}",
        "SYNTHGATE_VAR_DIR": str(workdir),
        "SYNTHGATE_TOKEN_RATE": "1000000/min",
        "SYNTHGATE_DEMO_PASSWORD": "bench-demo-password",
        "LOG_LEVEL": "WARNING",
    }
    bin_dir = Path(sys.executable).parent
    processes: dict[str, subprocess.Popen] = {}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        manage(env, "seed_demo")
        manage(env, "create_dataset", "bench")
        produce = manage(
            env, "create_token", "--name", "p", "--scopes", "produce", "--dataset", "bench"
        ).strip()
        consume = manage(
            env, "create_token", "--name", "c", "--scopes", "consume", "--dataset", "bench"
        ).strip()
        port = free_port()
        config = ["--config", args.gunicorn_config] if args.gunicorn_config else []
        processes["web"] = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                *config,
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--control-socket",
                str(workdir / "gunicorn.ctl"),
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            start_new_session=True,
            **quiet,  # fmt: skip
        )
        processes["worker"] = subprocess.Popen(
            [
                str(bin_dir / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                str(args.worker_concurrency),
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            start_new_session=True,
            **quiet,  # fmt: skip
        )
        processes["beat"] = subprocess.Popen(
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
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            start_new_session=True,
            **quiet,  # fmt: skip
        )
        wait_for_http(f"http://127.0.0.1:{port}/healthz", processes["web"])
        deadline = time.monotonic() + 120
        while request(port, "GET", "/healthz")[0].status != 200:
            if time.monotonic() > deadline:
                raise SystemExit("no worker heartbeat within 120 s")
            time.sleep(0.2)
        session = login(port, "reviewer1", "bench-demo-password")
        demo_slug = "demo"
        # Enough requests that each web worker has served every kind at least once.
        for _ in range(4 * args.web_workers):
            request(port, "GET", "/accounts/login/")
            request(port, "GET", "/healthz")
            request(port, "GET", "/api/v1/datasets/bench/items/",
                    {"Authorization": f"Token {consume}"})  # fmt: skip
            request(port, "GET", f"/review/{demo_slug}/", {"Cookie": session})
        time.sleep(args.settle)
        roots = {name: p.pid for name, p in processes.items()}
        sampler = Sampler(roots)
        rest = table("at rest", sampler.snapshot())

        sampler.start()
        items = make_items(args.items, 1000, seed=7)
        for start in range(0, args.items, 1000):
            response, payload = request(
                port, "POST", "/api/v1/datasets/bench/items/",
                {"Authorization": f"Token {produce}", "Content-Type": "application/json"},
                orjson.dumps({"items": items[start : start + 1000]}),
            )  # fmt: skip
            if response.status != 201:
                raise SystemExit(f"ingest: HTTP {response.status} {payload[:300]!r}")
        for _ in range(20):
            request(port, "GET", "/api/v1/datasets/bench/items/?limit=100",
                    {"Authorization": f"Token {consume}"})  # fmt: skip
            request(port, "GET", f"/review/{demo_slug}/items/", {"Cookie": session})
        with psycopg.connect(dsn) as conn:
            deadline = time.monotonic() + 600
            while conn.execute(
                "SELECT count(*) FROM corpus_item WHERE state = 'pending'"
            ).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise SystemExit("items still pending after 600 s")
                time.sleep(0.5)
        sampler.running = False
        sampler.join()
        with sampler.lock:
            peak_snap = {
                pid: (sampler.roles[pid], rss, pss) for pid, (rss, pss) in sampler.peak.items()
            }
        peak = table("peak (ingest, scoring, lists)", peak_snap)
        time.sleep(args.settle)
        after = table("at rest after", sampler.snapshot())
        web_workers_rest = [r["rss_mb"] for r in rest if r["role"] == "web child"]
        worker_rest_pss = sum(r["pss_mb"] for r in rest if r["role"].startswith("worker"))
        result = {
            "bench": "memory",
            "web_workers": args.web_workers,
            "worker_concurrency": args.worker_concurrency,
            "gunicorn_config": args.gunicorn_config,
            "items": args.items,
            "rest": rest,
            "peak": peak,
            "after": after,
            "web_worker_rest_rss_max_mb": max(web_workers_rest),
            "web_worker_peak_rss_max_mb": max(
                r["rss_mb"] for r in peak if r["role"] == "web child"
            ),
            "worker_rest_pss_mb": round(worker_rest_pss, 1),
            "worker_peak_pss_mb": round(
                sum(r["pss_mb"] for r in peak if r["role"].startswith("worker")), 1
            ),
        }
        print(
            f"\nweb worker RSS at rest (max) {result['web_worker_rest_rss_max_mb']} MB, at peak "
            f"{result['web_worker_peak_rss_max_mb']} MB; scoring worker PSS (all its processes) "
            f"at rest {result['worker_rest_pss_mb']} MB, at peak {result['worker_peak_pss_mb']} MB"
        )
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        embedded_redis.stop(redis_process)
        drop_database(args.postgres, args.database)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    sys.exit(main())
