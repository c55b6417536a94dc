"""`make run`: migrate, seed the demo, start Redis (embedded unless REDIS_URL is set), a Celery
worker, Celery beat and gunicorn on 127.0.0.1:$PORT; print the URL and the demo logins; restart
a crashed worker or beat with backoff (saying why it stopped); on Ctrl-C or SIGTERM stop
everything it started, leaving no process behind. DEBUG stays off unless asked (`DEBUG=1`).

Every child runs in its own session (process group), so a Ctrl-C in the terminal reaches this
launcher only, and shutdown happens in order: the leaders get SIGTERM and shut their own workers
down gracefully, whatever is left of a group after the grace period gets SIGKILL, and Redis stops
last so that the worker can still acknowledge its last task. On Linux every child also gets
SIGTERM from the kernel if the launcher itself is killed (PR_SET_PDEATHSIG).

One launcher per var directory: a lock under it refuses a second one, and a Redis left answering
on the var directory's socket (a launcher killed on a system without PR_SET_PDEATHSIG) is reused
and then stopped like our own, never doubled.
"""

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

from config import embedded_redis  # noqa: E402

VENV_BIN = Path(sys.executable).parent
GRACE_SECONDS = 15.0  # between SIGTERM to a leader and SIGKILL to its whole group
READY_TIMEOUT = 90.0  # for gunicorn to answer after start
_output_lock = threading.Lock()


class Stopped(Exception):
    """A signal asked us to stop, or a child died; the message says which."""


class Launcher:
    """Stop requests from signal handlers. The handler only assigns attributes: taking a lock
    there (threading.Event.set does) deadlocks when the signal lands while the main thread
    holds that same lock inside Event.wait."""

    def __init__(self) -> None:
        self.stopping = False
        self.force = False
        self.reason = ""

    def on_signal(self, signum: int, frame: object) -> None:
        # A second Ctrl-C while stopping skips the grace period.
        if self.stopping:
            self.force = True
        self.reason = signal.Signals(signum).name
        self.stopping = True

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as a stop was requested."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.stopping

    def check(self) -> None:
        if self.stopping:
            raise Stopped(self.reason)


# Resolved once here: between fork and exec a child must not call into the dynamic loader,
# whose lock another thread of ours may hold at the moment of the fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the launcher dies (Linux PR_SET_PDEATHSIG)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A long-running process in its own process group, its output prefixed with its name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv, self.env = argv, env
        self.started_at = time.monotonic()
        self.popen = self._start()
        print(f"{name} started (pid {self.pid})", flush=True)

    def _start(self) -> subprocess.Popen[bytes]:
        popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        assert popen.stdout is not None
        self.pump = threading.Thread(target=self._pump, args=(popen.stdout,), daemon=True)
        self.pump.start()
        return popen

    def restart(self) -> None:
        """Start the same command again, after clearing what the dead one left in its group
        (a crashed Celery worker's pool children would otherwise keep consuming)."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait()
        self.pump.join(timeout=2)
        self.started_at = time.monotonic()
        self.popen = self._start()
        print(f"{self.name} restarted (pid {self.pid})", flush=True)

    def _pump(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            text = line.decode("utf-8", "replace").rstrip("\n")
            with _output_lock:
                print(f"{self.name:>6} | {text}", flush=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def group_alive(self) -> bool:
        """Anything left in the process group (the leader reaped or not)."""
        self.popen.poll()  # reap the leader so a zombie does not count
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


# A crashed worker or beat is started again after 1, 2, 4 ... seconds, at most a minute; one
# that then stays up this long starts over at 1 s. The web server's death stops everything
# (gunicorn's master already restarts its own workers).
RESTARTED = ("worker", "beat")
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 1.0, 60.0, 60.0


def exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Watches the children: restarts a crashed worker or beat with backoff, logging why."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.delay = dict.fromkeys(RESTARTED, BACKOFF_FIRST)
        self.due: dict[str, float] = {}  # name -> when to start it again

    def check(self) -> None:
        now = time.monotonic()
        for child in self.children:
            code = child.popen.poll()
            if code is None:
                if now - child.started_at >= BACKOFF_RESET and child.name in self.delay:
                    self.delay[child.name] = BACKOFF_FIRST
                continue
            if child.name not in RESTARTED:
                raise Stopped(f"{child.name} exited ({exit_reason(code)})")
            if child.name not in self.due:
                delay = self.delay[child.name]
                if now - child.started_at >= BACKOFF_RESET:
                    delay = BACKOFF_FIRST
                self.due[child.name] = now + delay
                self.delay[child.name] = min(delay * 2, BACKOFF_MAX)
                print(
                    f"{child.name} exited ({exit_reason(code)}) after "
                    f"{now - child.started_at:.0f} s; restarting it in {delay:.0f} s",
                    flush=True,
                )
            elif now >= self.due[child.name]:
                del self.due[child.name]
                child.restart()


def stop_children(children: list[Child], launcher: Launcher) -> None:
    """SIGTERM each leader (gunicorn and Celery stop their own workers), web first so no request
    arrives half-way through, wait, then SIGKILL what is left of each group; return once every
    group is empty."""
    for child in reversed(children):
        if child.popen.poll() is None:
            print(f"stopping {child.name} (pid {child.pid})", flush=True)
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and not launcher.force:
        # A leader that exited may leave members behind (a pool child): they get SIGTERM too.
        for child in children:
            if child.popen.poll() is not None and child.group_alive():
                child.signal_group(signal.SIGTERM)
        if not any(child.group_alive() for child in children):
            break
        time.sleep(0.1)
    for child in children:
        if child.group_alive():
            print(f"{child.name} did not stop in time: SIGKILL", flush=True)
            child.signal_group(signal.SIGKILL)
    for child in children:
        child.popen.wait()
        deadline = time.monotonic() + 5
        while child.group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        child.pump.join(timeout=2)


def run_step(launcher: Launcher, *args: str, env: dict[str, str]) -> None:
    """One setup command (migrate, collectstatic, seed_demo), stopped if we are asked to stop."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    while process.poll() is None:
        if launcher.wait(0.1):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise Stopped(launcher.reason)
    if process.returncode != 0:
        raise SystemExit(
            f"make run: 'manage.py {args[0]}' failed with exit code {process.returncode}"
        )


def lock_var_dir(var: Path) -> IO[str]:
    """Hold an exclusive lock on var/run.lock for our lifetime, or exit naming the holder."""
    handle = (var / "run.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        raise SystemExit(
            f"make run: another launcher (pid {holder}) is using {var}; stop it first, or set "
            "SYNTHGATE_VAR_DIR to another directory"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def secret_key(var: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept under var/ (so
    sessions survive a restart and no two installations share the insecure default).
    config/settings/base.py reads the same file, so management commands typed in a shell use
    the same key as the processes started here."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = var / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def check_port(port: str) -> int:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SystemExit(f"make run: PORT must be a port number (1-65535), got {port!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", int(port)))
        except OSError:
            raise SystemExit(
                f"make run: port {port} on 127.0.0.1 is in use; set PORT to a free one"
            ) from None
    return int(port)


def wait_until_serving(launcher: Launcher, children: list[Child], url: str) -> str:
    """Poll /healthz until gunicorn answers (any status); returns the body."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for child in children:
            if child.popen.poll() is not None:
                raise Stopped(f"{child.name} exited with code {child.popen.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:  # 503 while the worker starts: serving anyway
            return exc.read().decode()
        except OSError:
            pass
        if launcher.wait(0.25):
            raise Stopped(launcher.reason)
    raise Stopped(f"the web server did not answer on {url} within {READY_TIMEOUT:.0f} s")


def main() -> int:
    launcher = Launcher()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, launcher.on_signal)
    port = check_port(os.environ.get("PORT", "8000"))
    var = Path(os.environ.get("SYNTHGATE_VAR_DIR", ROOT / "var")).resolve()
    var.mkdir(parents=True, exist_ok=True)
    lock = lock_var_dir(var)

    env = dict(os.environ, SYNTHGATE_VAR_DIR=str(var), SECRET_KEY=secret_key(var))
    redis_process: subprocess.Popen | None = None
    adopted_redis: int | None = None
    redis_dir = var / "redis"
    children: list[Child] = []
    code = 0
    try:
        if not os.environ.get("REDIS_URL"):
            sock = embedded_redis.socket_path(redis_dir)
            redis_process = embedded_redis.start(redis_dir, die_with_parent=True)
            if redis_process is not None:
                print(f"embedded Redis started (pid {redis_process.pid}) on {sock}", flush=True)
            else:
                # Under our lock no other launcher uses this directory: the server answering
                # here was left by one that died. Reuse it, and stop it with everything else.
                adopted_redis = embedded_redis.server_pid(sock)
                print(
                    f"embedded Redis already answering on {sock} (pid {adopted_redis}): reusing it",
                    flush=True,
                )
        else:
            print("Redis: REDIS_URL", flush=True)
        launcher.check()
        run_step(launcher, "migrate", "--noinput", env=env)
        run_step(launcher, "collectstatic", "--noinput", "--verbosity", "0", env=env)
        run_step(launcher, "seed_demo", env=env)
        launcher.check()

        celery = str(VENV_BIN / "celery")
        children.append(
            Child(
                "worker",
                [
                    celery,
                    "-A",
                    "config",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    os.environ.get("SYNTHGATE_WORKER_CONCURRENCY", "2"),
                ],
                env,
            )
        )
        children.append(
            Child(
                "beat",
                [
                    celery,
                    "-A",
                    "config",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(var / "celerybeat-schedule"),
                    "--pidfile=",
                ],
                env,
            )
        )
        children.append(
            Child(
                "web",
                [
                    str(VENV_BIN / "gunicorn"),
                    # Preload and gc.freeze before the fork: the workers share the app's pages.
                    "--config",
                    str(ROOT / "config" / "gunicorn.py"),
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    os.environ.get("WEB_CONCURRENCY", "3"),
                    "--access-logfile",
                    "-",
                    "--graceful-timeout",
                    "10",
                    # Its own control socket under var/: the default in ~/.gunicorn is shared by
                    # every gunicorn of the user, so a second instance would take it over.
                    "--control-socket",
                    str(var / "gunicorn.ctl"),
                ],
                env,
            )
        )
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(launcher, children, f"{base}/healthz")
        password = os.environ.get("SYNTHGATE_DEMO_PASSWORD", "demo")
        with _output_lock:
            print(
                f"\n  Synthgate is running on {base}/\n"
                f"  demo logins: reviewer1, reviewer2 (reviewers of 'demo'), admin "
                f"(password: {password})\n"
                f"  health: {base}/healthz   API docs: {base}/api/v1/docs/   admin: {base}/admin/\n"
                "  Ctrl-C stops everything.\n",
                flush=True,
            )
        supervisor = Supervisor(children)
        while not launcher.wait(0.5):
            supervisor.check()
        raise Stopped(launcher.reason)
    except Stopped as stopped:
        signalled = stopped.args[0] in {s.name for s in signal.Signals}
        print(f"{stopped.args[0]}: stopping", flush=True)
        code = 0 if signalled else 1
    except SystemExit as exc:
        print(exc.code, file=sys.stderr, flush=True)
        code = 1
    except Exception as exc:  # a launcher that fails must still stop what it started
        print(f"make run: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # Signals now only hurry the shutdown along (see Launcher.on_signal).
        stop_children(children, launcher)
        if redis_process is not None:
            embedded_redis.stop(redis_process)
        elif adopted_redis is not None:
            embedded_redis.stop_pid(adopted_redis, embedded_redis.socket_path(redis_dir))
        if redis_process is not None or adopted_redis is not None:
            print("embedded Redis stopped", flush=True)
        lock.close()
    print("stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
