import os

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# Arrow's allocator for the Parquet exports, chosen before pyarrow is first imported (Arrow reads
# this once). Its default, mimalloc, kept 40 to 50 MB more resident through a 1M-row Parquet
# export than jemalloc (bench/RESULTS.md, "Exports"); an operator's own choice still wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

app = Celery("synthgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_SECONDS = 5


@signals.task_postrun.connect
def close_old_connections(sender: object = None, **kwargs: object) -> None:
    """After each task, what Django does after each request: close the database connections
    that errored or outlived ``CONN_MAX_AGE`` (the others are reused, CELERY_DB_REUSE_MAX).
    Not for a task run eagerly inside its caller, whose transaction may still be open."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections as django_close_old_connections

    django_close_old_connections()


def worker_heartbeat() -> None:
    """Refresh a short-lived key in Redis: /healthz reads it to tell a live worker from one that
    was alive once, without a broadcast round trip on every health check."""
    from django.conf import settings
    from django.core.cache import cache

    cache.set(settings.SYNTHGATE_WORKER_HEARTBEAT_KEY, os.getpid(), timeout=4 * HEARTBEAT_SECONDS)


class HeartbeatStep(bootsteps.StartStopStep):
    """A worker bootstep on the worker's own timer (Celery docs, "Extensions and Bootsteps")."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: object, **kwargs: object) -> None:
        self.tref = None

    def start(self, worker) -> None:
        worker_heartbeat()
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_SECONDS, worker_heartbeat)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()


app.steps["worker"].add(HeartbeatStep)


# The task whose worker start loads the scoring stack (see ``scoring_warm_up``).
SCORING_TASK = "corpus.tasks.items_score_task"


@signals.worker_init.connect
def scoring_warm_up(sender: object = None, **kwargs: object) -> None:
    """Before a worker that consumes the scoring queue takes its first task, import the scoring
    stack (numpy, SciPy, scikit-learn: about 1.3 s) and load the default detector. Otherwise the
    first batch after every deploy or restart waits for them. Sent in the worker's main process
    before its pool starts, so prefork children inherit what was loaded. Workers consuming only
    other queues (exports, the "lm" detector) skip it and keep their memory."""
    worker_app = getattr(sender, "app", None)
    if worker_app is None:
        return
    queue = worker_app.amqp.router.route({}, SCORING_TASK)["queue"].name
    if queue not in worker_app.amqp.queues.consume_from:
        return
    from corpus.services.scoring import scoring_warm_up as warm_up

    warm_up()


@signals.worker_init.connect
def freeze_before_fork(sender: object = None, **kwargs: object) -> None:
    """Connected after ``scoring_warm_up``, so it runs after it, in the worker's main process
    before the prefork pool forks its children: move everything loaded so far (Django, the
    scoring stack, the detector's weights) out of the garbage collector's generations. The
    children then share those pages with the main process; without this, each child's first
    collection writes to every tracked object's header and copies its page (bench/memory.py)."""
    import gc

    gc.collect()
    gc.freeze()
