"""`make run` (bin/run.py) for real: embedded Redis, worker, beat and gunicorn start, /healthz
reports all ok, SIGTERM leaves no process behind, and a second run reuses what exists."""

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from config import embedded_redis

ROOT = Path(__file__).resolve().parent.parent
# Serial on one xdist worker: each run starts five processes on a two-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("make_run")]

READY_TIMEOUT = 120
STOP_TIMEOUT = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launcher:
    """`python bin/run.py` with the embedded defaults: no REDIS_URL, no DATABASE_URL."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY"}
            and not key.startswith("PYTEST_")
        }
        env.update(
            PORT=str(self.port),
            SYNTHGATE_VAR_DIR=str(var),
            SYNTHGATE_WORKER_CONCURRENCY="1",
            WEB_CONCURRENCY="2",
        )
        var.mkdir(parents=True, exist_ok=True)
        self.log_path = var.parent / f"run-{self.port}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bin" / "run.py")],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self) -> str:
        return self.output()[-6000:]

    def health(self) -> dict | None:
        url = f"http://127.0.0.1:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())
        except (OSError, ValueError):
            return None

    def wait_healthy(self) -> dict:
        deadline = time.monotonic() + READY_TIMEOUT
        health = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"run.py exited early:\n{self.tail()}"
            health = self.health()
            if health and health["status"] == "ok":
                assert all(check["ok"] for check in health["checks"].values()), health
                return health
            time.sleep(0.5)
        raise AssertionError(f"not healthy after {READY_TIMEOUT} s: {health}\n{self.tail()}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"run.py did not stop on SIGTERM:\n{self.tail()}") from None
        self.log.close()
        return code

    def kill(self) -> None:
        """Cleanup after a failed test: the whole tree, so nothing outlives the test."""
        if self.process.poll() is not None:
            return
        procs = self.descendants()
        for proc in [*procs, psutil.Process(self.process.pid)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(procs, timeout=5)
        self.process.wait()


def redis_servers(sock: Path) -> list[psutil.Process]:
    """Every redis-server process on the machine serving this socket (redis rewrites its
    command line to "redis-server unixsocket:<path>")."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if (proc.info["name"] or "").startswith("redis-server") and str(sock) in cmdline:
            found.append(proc)
    return found


def item_count(var: Path) -> int:
    with sqlite3.connect(f"file:{var / 'synthgate.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM corpus_item").fetchone()[0]


@pytest.fixture
def var_root():  # type: ignore[no-untyped-def]
    """A private temporary directory. Not pytest's tmp_path: pytest prunes old basetemp
    directories of the same user, and a concurrent pytest run would delete ours mid-test."""
    path = Path(tempfile.mkdtemp(prefix="sg-make-run-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def launchers():  # type: ignore[no-untyped-def]
    started: list[Launcher] = []

    def start(var: Path) -> Launcher:
        launcher = Launcher(var)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.kill()


def test_make_run_is_healthy_and_sigterm_leaves_no_process_behind(var_root, launchers):
    # given a launcher on a fresh var directory, serving with every check ok
    var = var_root / "var"
    run = launchers(var)
    health = run.wait_healthy()
    assert health["checks"]["database"]["vendor"] == "sqlite"
    # and the processes it started: Redis, the worker, beat and gunicorn with its workers
    started = run.descendants()
    names = [proc.name() for proc in started]
    assert any(name.startswith("redis-server") for name in names), names
    assert sum(name.startswith("gunicorn") for name in names) >= 3, names  # master + 2 workers
    commands = [" ".join(proc.cmdline()) for proc in started]
    assert any(" worker " in cmd for cmd in commands), commands
    assert any(" beat " in cmd for cmd in commands), commands
    sock = embedded_redis.socket_path(var / "redis")
    assert embedded_redis.ping(sock)
    # and the demo it seeded, which the worker scores
    assert item_count(var) > 50
    # and it keeps DEBUG off, shares its secret with shell commands, restarts a crashed worker
    check_debug_secret_and_restart(run, var)
    started = run.descendants()
    # when it gets SIGTERM
    code = run.terminate()
    # then it exits cleanly and every process it started is gone within a few seconds
    assert code == 0, run.tail()
    _, alive = psutil.wait_procs(started, timeout=5)
    assert alive == [], [(p.pid, p.name()) for p in alive]
    assert not embedded_redis.ping(sock)
    assert "SIGTERM: stopping" in run.output()


def test_make_run_twice_reuses_the_demo_and_never_doubles_redis(var_root, launchers):
    var = var_root / "var"
    sock = embedded_redis.socket_path(var / "redis")
    # given a first run that seeded the demo and was stopped
    first = launchers(var)
    first.wait_healthy()
    items = item_count(var)
    assert first.terminate() == 0
    # when it runs again on the same var directory
    second = launchers(var)
    second.wait_healthy()
    # then the demo is not duplicated and one Redis serves the directory
    assert item_count(var) == items
    assert "demo already seeded" in second.output()
    assert len(redis_servers(sock)) == 1
    # and a third launcher on the same directory refuses to start, starting no Redis
    third = launchers(var)
    assert third.process.wait(60) != 0
    assert "another launcher" in third.output()
    assert len(redis_servers(sock)) == 1
    assert second.process.poll() is None
    assert second.terminate() == 0
    assert redis_servers(sock) == []


def test_make_run_reuses_a_redis_left_answering_and_stops_it(var_root, launchers):
    # given a Redis answering on the var directory's socket (left by a launcher that died)
    var = var_root / "var"
    orphan = embedded_redis.start(var / "redis")
    assert orphan is not None
    sock = embedded_redis.socket_path(var / "redis")
    try:
        # when the launcher starts
        run = launchers(var)
        run.wait_healthy()
        # then it uses that server instead of starting a second one
        assert [p.pid for p in redis_servers(sock)] == [orphan.pid]
        assert not any(p.name().startswith("redis-server") for p in run.descendants())
        assert f"(pid {orphan.pid}): reusing it" in run.output()
        # and stops it with everything else
        assert run.terminate() == 0
        assert orphan.wait(10) is not None
        assert not embedded_redis.ping(sock)
    finally:
        embedded_redis.stop(orphan)


def _wait_for(run: Launcher, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in run.output():
        assert time.monotonic() < deadline, f"no {text!r} in:\n{run.tail()}"
        assert run.process.poll() is None, f"run.py exited:\n{run.tail()}"
        time.sleep(0.2)


def _pid_of(run: Launcher, name: str, verb: str = "started") -> int:
    import re

    found = re.findall(rf"^{name} {verb} \(pid (\d+)\)$", run.output(), re.MULTILINE)
    assert found, run.tail()
    return int(found[-1])


def check_debug_secret_and_restart(run: Launcher, var: Path) -> None:
    """DEBUG off, the secret shared with shell commands, a crashed worker restarted."""
    # DEBUG is off unless asked: an unknown page is a plain 404, not Django's debug page.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{run.port}/no-such-page", timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        assert "URLconf" not in exc.read().decode()
    # A management command typed in a shell (no SECRET_KEY in its environment) reads the key
    # `make run` generated, so it agrees with /healthz about the anchors signed with it.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith("PYTEST_")
    }
    env["SYNTHGATE_VAR_DIR"] = str(var)
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_audit", "--record"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    shell = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    assert "audit chain intact" in shell.stdout
    assert "bad signature" not in shell.stdout + shell.stderr
    # When the worker dies, it is started again after a backoff, and the reason is logged.
    first = _pid_of(run, "worker")
    os.kill(first, signal.SIGKILL)
    _wait_for(run, "worker exited (killed by SIGKILL)")
    _wait_for(run, "worker restarted (pid")
    second = _pid_of(run, "worker", "restarted")
    assert second != first and psutil.pid_exists(second)
    assert run.wait_healthy()["checks"]["worker"]["ok"]
