"""gunicorn settings: ``gunicorn --config config/gunicorn.py config.wsgi`` (bin/run.py and the
systemd unit in deploy/systemd/ pass it). Command-line options still override what is here.

Memory (issue 16, bench/memory.py): the application, its URLconf and every view module are
imported once in the master (``preload_app``), then ``gc.freeze()`` moves those objects out of
the collector's generations before each fork. Forked workers then share those pages with the
master instead of each importing its own copy, and the collector never writes to them (a
collection touches every tracked object's header, which copies its page into the child).

The price of preloading: a code deploy needs a restart of the master (``systemctl restart``), not
a ``HUP``, which reloads the configuration but keeps the preloaded code.
"""

import gc
import os

preload_app = os.environ.get("GUNICORN_PRELOAD", "true").strip().lower() not in {"0", "false"}
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# A worker that held a large request (an ingest batch of 1,000 items, an export page) keeps its
# peak heap; recycling after a few thousand requests returns it, jittered so that the workers do
# not restart together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
graceful_timeout = 10


def when_ready(server) -> None:
    """In the master, after the application was loaded and before the first fork: import every
    view module (Django resolves the URLconf lazily, on a worker's first request) and freeze."""
    if not preload_app:
        return
    from django.urls import get_resolver

    def walk(patterns) -> None:
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)

    walk(get_resolver().url_patterns)
    gc.freeze()


def pre_fork(server, worker) -> None:
    # Objects the master allocated since the last fork (a restarted worker's spawn) join the
    # frozen set too; freezing what is already frozen costs nothing.
    if preload_app:
        gc.freeze()
