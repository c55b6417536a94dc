"""A real Celery worker for integration tests, and a look into the broker queue.

``celery_worker_process`` starts ``celery -A config worker --pool solo --concurrency 1`` as a
subprocess against the test process's own test database and Redis database, waits until the
worker's heartbeat (config/celery.py) shows up in that Redis, yields, and stops it. Registered
for every test module by ``pytest_plugins = ["tests.worker"]`` in tests/conftest.py.

The worker runs ``config.settings.test`` with the environment of this process, so it derives
the same Redis URL and database number (REDIS_URL, PYTEST_XDIST_WORKER, SYNTHGATE_VAR_DIR); only
the database is passed explicitly, because the test database's name is known only once
pytest-django has created it.
"""

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL (as config/settings/base.py parses it) for the database described by
    ``settings_dict``: inside a test, ``connection.settings_dict`` names the test database."""
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        if not name or name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("a worker process cannot open an in-memory SQLite database")
        # The same options base.py gives the default SQLite database: writers queue on the
        # lock (IMMEDIATE, busy timeout) instead of failing while the test process writes.
        options = urlencode({"transaction_mode": "IMMEDIATE", "timeout": 30})
        return f"sqlite:///{quote(str(Path(name).resolve()))}?{options}"
    if engine.endswith(("postgresql", "postgis")):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{quote(name, safe='')}"
    raise RuntimeError(f"no worker DATABASE_URL for the {engine} engine")


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _heartbeat_pid() -> int | None:
    from django.conf import settings
    from django.core.cache import cache

    return cache.get(settings.SYNTHGATE_WORKER_HEARTBEAT_KEY)


def _stop(worker: WorkerProcess) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL the whole session if it does not exit in time."""
    process = worker.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_SECONDS)
    # The worker leads its own session: nothing it may have spawned outlives the test.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT_SECONDS)


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[WorkerProcess]:
    """A live ``celery worker`` subprocess on the test database and Redis; stopped afterwards.

    Needs ``transactional_db``: the worker sees only what the test process has committed.
    """
    from django.conf import settings
    from django.db import connection

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
    log_dir = Path(settings.VAR_DIR) / "test"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"celery-worker-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{os.getpid()}@%h",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # The heartbeat carries the worker's pid: seeing ours proves it reached the same Redis
        # database (a leftover key of another worker would carry another pid).
        while _heartbeat_pid() != process.pid:
            if process.poll() is not None:
                raise RuntimeError(
                    f"celery worker exited with {process.returncode}:\n{worker.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no heartbeat from the celery worker within {START_TIMEOUT_SECONDS:.0f} s:\n"
                    f"{worker.log_tail()}"
                )
            time.sleep(0.1)
        yield worker
    finally:
        _stop(worker)


def broker_messages(queue: str = "celery") -> list[dict[str, Any]]:
    """The task messages waiting in the Redis broker queue, oldest first, as
    ``{"task": name, "args": [...], "kwargs": {...}}`` (Celery's JSON protocol 2)."""
    from kombu import Connection

    from config.celery import app

    with Connection(app.conf.broker_url) as conn:
        client = conn.default_channel.client
        raw = client.lrange(queue, 0, -1)
    messages = []
    # kombu LPUSHes and consumes from the right: the oldest message is last.
    for entry in reversed(raw):
        envelope = json.loads(entry)
        body = envelope["body"]
        if envelope["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        messages.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs})
    return messages
