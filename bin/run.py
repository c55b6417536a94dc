"""`make run`: migrate, seed the demo, start Redis (embedded unless REDIS_URL is set), a Celery
worker, Celery beat and gunicorn; print the URL and demo logins; stop everything on Ctrl-C or
SIGTERM, leaving no process behind."""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

from honcho.manager import Manager  # noqa: E402
from honcho.printer import Printer  # noqa: E402

from config import embedded_redis  # noqa: E402

VENV_BIN = Path(sys.executable).parent


class Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


def main() -> int:
    port = os.environ.get("PORT", "8000")
    var = Path(os.environ.get("SYNTHGATE_VAR_DIR", ROOT / "var"))
    var.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    redis_process = None
    try:
        if not os.environ.get("REDIS_URL"):
            redis_dir = var / "redis"
            redis_process = embedded_redis.start(redis_dir)
            state = "started" if redis_process else "reusing the one already running"
            print(f"embedded Redis: {state} on {embedded_redis.socket_path(redis_dir)}", flush=True)
        manage("migrate", "--noinput")
        manage("collectstatic", "--noinput", "--verbosity", "0")
        manage("seed_demo")

        env = dict(os.environ)
        celery = str(VENV_BIN / "celery")
        manager = Manager(Printer(sys.stdout))
        manager.add_process(
            "worker",
            f"{celery} -A config worker --loglevel INFO --concurrency "
            f"{os.environ.get('SYNTHGATE_WORKER_CONCURRENCY', '2')} --queues celery",
            env=env,
            cwd=str(ROOT),
        )
        manager.add_process(
            "beat",
            f"{celery} -A config beat --loglevel INFO --schedule {var / 'celerybeat-schedule'} "
            f"--pidfile=",
            env=env,
            cwd=str(ROOT),
        )
        manager.add_process(
            "web",
            f"{VENV_BIN / 'gunicorn'} config.wsgi --bind 127.0.0.1:{port} "
            f"--workers {os.environ.get('WEB_CONCURRENCY', '3')} --access-logfile - "
            f"--graceful-timeout 10",
            env=env,
            cwd=str(ROOT),
        )
        password = os.environ.get("SYNTHGATE_DEMO_PASSWORD", "demo")
        print(
            f"\nSynthgate is starting on http://127.0.0.1:{port}/\n"
            f"  demo logins: reviewer1, reviewer2, admin  (password: {password})\n"
            f"  health: http://127.0.0.1:{port}/healthz   API docs: "
            f"http://127.0.0.1:{port}/api/v1/docs/\n"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )
        # honcho installs its own SIGINT/SIGTERM handlers and stops every process group.
        manager.loop()
        return manager.returncode or 0
    except Stop as stop:
        print(f"{stop}: stopping", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"make run: '{' '.join(exc.cmd[1:3])}' failed with exit code {exc.returncode}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        embedded_redis.stop(redis_process)


if __name__ == "__main__":
    sys.exit(main())
