"""Review benchmark: triage and list mode over 1,000,000 queued items on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_review_bench .venv/bin/python bench/review.py

Targets (issue 4): "claim + decide + next item" p95 <= 15 ms of server time, and the list page
p95 <= 20 ms, over 500 requests each; (issue 16) a confirmed bulk decision of 500 items from the
list page under 100 ms (``--bulk-calls`` calls, 20 by default; ``--only bulk`` runs that case
alone), and a filter-wide bulk job over ``--job-items`` items (20,000 by default; ``--only job``
runs it after the bulk case, for the ratio of the two). Server time is what a WSGI server waits
for when it calls Django in process: ``WSGIHandler`` given the request's environ (the request
object built from it, every middleware with CSRF enforced as in production, session and user,
the view, its queries and template, the response and its close). No network is involved. Each
triage and list request is also timed around a ``django.test.Client`` call, alternating with the
server timing on the same data, as earlier rounds measured it: that figure adds the test
client's own work (building the request, cookies, signal connects) and skips the CSRF check; it
is reported for comparison.

The dataset ``bench-review`` is filled once with INSERT ... SELECT (items, their scores and a
human reference corpus), then topped up to the wanted number of queued items on later runs, so
re-running is cheap. The database is created if missing and migrated. Redis (the cache the
reference medians live in) is an embedded server under var/, as ``make run`` starts it.

Prints a ``RESULT {json}`` line per case (for bench/run_all.py) and writes
bench/results/review.json with the machine's load average, since other work on a small machine
shows directly in these numbers. Exit status 1 when a target is missed.
"""

import argparse
import contextlib
import html
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sg_review_bench"
SLUG = "bench-review"
RESULTS = ROOT / "bench" / "results" / "review.json"
REFERENCE_ITEMS = 2000
NEXT_PAGE = re.compile(r'class="pager"><a href="([^"]+)"')


def _configure(database_url: str) -> Any:
    """Environment for Django before it loads: the bench database, no DEBUG (it would keep
    every query in memory), the test client's host, and an embedded Redis."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    var = Path(os.environ.get("SYNTHGATE_VAR_DIR", ROOT / "var"))
    redis_process = None
    if not os.environ.get("REDIS_URL"):
        from config import embedded_redis

        redis_dir = var / "bench-review-redis"
        redis_process = embedded_redis.start(redis_dir, persist=False)
        os.environ["REDIS_URL"] = f"unix://{embedded_redis.socket_path(redis_dir)}"
    return redis_process


def _ensure_database(database_url: str) -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    cfg = dj_database_url.parse(database_url)
    if not cfg["ENGINE"].endswith("postgresql"):
        raise SystemExit("bench/review.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    params = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or 5432,
        "user": cfg.get("USER") or "postgres",
        "password": cfg.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cfg["NAME"])))
            print(f"created database {cfg['NAME']}")


@contextlib.contextmanager
def django_bench(database_url: str) -> Iterator[None]:
    """Django on the bench database (created if missing), with an embedded Redis when
    REDIS_URL is unset, migrated, and the static files collected (DEBUG is off, as in
    production: pages link the hashed files of the manifest). The Redis stops on the way out."""
    _ensure_database(database_url)
    redis_process = _configure(database_url)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        yield
    finally:
        if redis_process is not None:
            from config import embedded_redis

            embedded_redis.stop(redis_process)


def results_write(path: Path, summary: dict[str, Any], load_before: tuple[float, ...]) -> None:
    """Write a bench's summary as JSON with the machine's load before and after its timing
    (other work on a small machine shows directly in the numbers), and say where."""
    summary = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **summary,
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {path.relative_to(ROOT)}", flush=True)


def _insert_select(
    model: Any,
    expressions: dict[str, str],
    source: str,
    source_params: list[Any],
    constants: dict[str, Any] | None = None,
) -> int:
    """INSERT INTO model SELECT ... FROM source. A column gets its SQL expression from
    ``expressions``, else its value from ``constants``, else the field's Python default. Built
    from the model, so columns other apps add later are filled too."""
    from django.db import connection

    constants = constants or {}
    template = model()
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in expressions:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in expressions:
            # Expressions carry no parameters; their % (modulo) must not read as one.
            values.append(expressions[field.column].replace("%", "%%"))
            continue
        value = constants.get(field.column, field.pre_save(template, True))
        values.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    statement = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params + source_params)
        return cursor.rowcount


def _insert_queued(source: Any, start: int, count: int) -> int:
    """``count`` queued items of ``source`` numbered from ``start`` (unique texts and hashes)."""
    from corpus.models import Item

    return _insert_select(
        Item,
        {
            "text": "'Bench item ' || g || ': ' "
            "|| repeat('the model wrote a fluent paragraph about rivers and lakes. ', "
            "1 + g % 6)",
            "content_hash": "md5('bench' || g) || md5('BENCH' || g)",
            "origin": "(ARRAY['synthetic','unknown','human'])[1 + g % 3]",
            "generator_model": "'bench-model-' || (g % 4)",
            "generation": "1 + g % 3",
            "state": "'queued'",
            "priority": "random()",
        },
        "generate_series(%s, %s) AS g",
        [start, start + count - 1],
        {"dataset_id": source.dataset_id, "source_id": source.pk},
    )


def _insert_scores(dataset: Any) -> int:
    """A score for each item of the dataset that has none."""
    from django.db import connection

    from corpus.models import Item, Score

    lexical = (
        "jsonb_build_object('distinct_1', 0.55 + (i.id % 40) / 100.0, 'distinct_2', 0.9, "
        "'distinct_3', 0.97, 'compression_ratio', 2.1 + (i.id % 9) / 10.0, "
        "'repeated_ngram_share', (i.id % 7) / 100.0, 'longest_repeated_span', i.id % 5)"
    )
    return _insert_select(
        Score,
        {
            "item_id": "i.id",
            "scorer_version": "'1'",
            "lexical": lexical,
            "detector_name": "'bench-detector'",
            "detector_version": "'1'",
            "detector_probability": "(i.id % 100) / 100.0",
            "priority": "i.priority",
        },
        f"{connection.ops.quote_name(Item._meta.db_table)} i WHERE i.dataset_id = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {connection.ops.quote_name(Score._meta.db_table)} s "
        "WHERE s.item_id = i.id)",
        [dataset.pk],
    )


def _seed(n_items: int) -> tuple[Any, list[Any]]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from corpus.models import Dataset, Item, Score, Source

    dataset, _ = Dataset.objects.get_or_create(slug=SLUG, defaults={"name": "Review bench"})
    source, _ = Source.objects.get_or_create(dataset=dataset, name="bench")
    group, _ = Group.objects.get_or_create(name="reviewer")
    users = []
    for name in ("bench-alice", "bench-bob"):
        user, _ = get_user_model().objects.get_or_create(username=name)
        user.groups.add(group)
        users.append(user)
    dataset.reviewers.add(*users)

    if not Item.objects.filter(dataset=dataset, is_reference=True).exists():
        with transaction.atomic():
            _insert_select(
                Item,
                {
                    "text": "'Reference text number ' || g || '. ' "
                    "|| repeat('A human wrote this sentence about rivers. ', 8)",
                    "content_hash": "md5('ref' || g) || md5('REF' || g)",
                    "origin": "'human'",
                    "is_reference": "true",
                    "state": "'approved'",
                    "generation": "0",
                },
                "generate_series(1, %s) AS g",
                [REFERENCE_ITEMS],
                {"dataset_id": dataset.pk, "source_id": source.pk},
            )
    queued = Item.objects.filter(dataset=dataset, state=Item.State.QUEUED).count()
    missing = n_items - queued
    if missing > 0:
        start = (
            Item.objects.filter(dataset=dataset)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
            or 0
        ) + 1
        print(f"inserting {missing:,} queued items (and their scores)...", flush=True)
        began = time.perf_counter()
        with transaction.atomic():
            _insert_queued(source, start, missing)
        print(f"  items in {time.perf_counter() - began:.1f} s", flush=True)
    began = time.perf_counter()
    with transaction.atomic():
        added = _insert_scores(dataset)
    if added:
        print(f"  {added:,} scores in {time.perf_counter() - began:.1f} s", flush=True)
    if missing > 0 or added:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(Item._meta.db_table)}")
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(Score._meta.db_table)}")
    return dataset, users


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[round(q * (len(sorted_ms) - 1))]


def _stats(
    name: str, samples: list[tuple[float, float, int, float]], target_ms: float | None
) -> dict[str, Any]:
    """samples: (server seconds, of which waiting on SQL, statements, CPU seconds of the
    Django thread) per request. On a busy machine the wall time grows with the queue for the
    CPU; the thread's CPU time and the statement count do not, so they are reported too."""
    ms = sorted(s[0] * 1000 for s in samples)
    sql_ms = sorted(s[1] * 1000 for s in samples)
    cpu_ms = sorted(s[3] * 1000 for s in samples)
    row = {
        "name": name,
        "n": len(ms),
        "p50": statistics.median(ms),
        "p95": _percentile(ms, 0.95),
        "p99": _percentile(ms, 0.99),
        "max": ms[-1],
        "sql_p50": statistics.median(sql_ms),
        "statements": statistics.median(s[2] for s in samples),
        "django_cpu_p50": statistics.median(cpu_ms),
        "django_cpu_p95": _percentile(cpu_ms, 0.95),
        "target_p95": target_ms,
    }
    row["ok"] = target_ms is None or row["p95"] <= target_ms
    row = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
    verdict = (
        f"target p95 <= {target_ms} ms: {'OK' if row['ok'] else 'MISSED'}"
        if target_ms is not None
        else "no target (for comparison)"
    )
    print(
        f"{name:<28} n={row['n']}  p50={row['p50']:6.2f}  p95={row['p95']:6.2f}  "
        f"p99={row['p99']:6.2f}  max={row['max']:6.2f} ms   "
        f"(SQL p50 {row['sql_p50']:5.2f} ms over {row['statements']:.0f} statements; "
        f"Django CPU p50 {row['django_cpu_p50']:5.2f} p95 {row['django_cpu_p95']:5.2f} ms)   "
        f"{verdict}",
        flush=True,
    )
    print("RESULT " + json.dumps({"bench": "review", **row}), flush=True)
    return row


class _SqlClock:
    """Time spent in the database per request (execute wrapper), to tell SQL from Python.

    ``statements`` counts execute calls, that is round trips: where review.sql sends several
    statements as one query string (PostgreSQL) they count once. COPY (the audit events) and
    COMMIT do not pass through execute wrappers; their time is in the server time, not here.
    An execute made inside another (a unit of work sends its pending writes before the ORM
    query that comes next) is a round trip of its own but its time is already in the outer
    one's: it is counted once."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.statements = 0
        self._depth = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements += 1
        if self._depth:
            return execute(sql, params, many, context)
        self._depth += 1
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - began
            self._depth -= 1

    def reset(self) -> None:
        self.seconds, self.statements = 0.0, 0


BULK_ITEMS = 500
Sample = tuple[float, float, int, float]


def _bench(
    dataset: Any, users: list[Any], requests: int, bulk_calls: int, only: str, job_items: int
) -> list[dict[str, Any]]:
    """Each request is timed two ways, alternating on the same data so both see the same
    machine: ``server``, what a WSGI server calls (Django's ``WSGIHandler``: the request built
    from the environ, every middleware with CSRF enforced as in production, the view, the
    response and its close), which the targets are about; and ``client``, around the test
    client's call as earlier rounds measured it (its own request building, cookie handling and
    signal connects added, CSRF not enforced)."""
    from http.cookies import SimpleCookie

    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import Client, RequestFactory

    from corpus.models import Item
    from review.models import Claim

    class Environ(RequestFactory):
        """The WSGI environ of a request, as a server hands it to Django (RequestFactory builds
        it; this stops short of making the request object, which is the handler's work)."""

        def request(self, **request: Any) -> Any:
            return self._base_environ(**request)

    client = Client()
    client.force_login(users[0])
    # The web process's own application, as gunicorn loads it: config.wsgi imports every view
    # and freezes what is alive then (gc.freeze), so collections skip Django's module state.
    # A bare WSGIHandler() left that to every full collection (p95 of the bulk call doubled).
    from config.wsgi import application as handler

    assert isinstance(handler, WSGIHandler)
    environ = Environ()
    htmx = {"HTTP_HX_REQUEST": "true"}
    clock = _SqlClock()

    def client_timed(method: str, url: str, **kwargs: Any) -> tuple[Sample, bytes]:
        clock.reset()
        cpu = time.thread_time()
        began = time.perf_counter()
        response = getattr(client, method)(url, **kwargs)
        elapsed = time.perf_counter() - began
        cpu = time.thread_time() - cpu
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return (elapsed, clock.seconds, clock.statements, cpu), response.content

    # The page carries the CSRF token htmx sends with every POST (hx-headers on <body>); its
    # cookie came with the page.
    page = client.get(f"/review/{SLUG}/").content.decode()  # the first claim
    found = re.search(r'"X-CSRFToken": "([^"]+)"', page)
    assert found is not None, "the triage page carries no CSRF token"
    csrf_header = found.group(1)

    def server_timed(
        method: str, url: str, data: Any = None, content_type: str | None = None
    ) -> tuple[Sample, bytes]:
        headers = {
            **htmx,
            "HTTP_COOKIE": "; ".join(f"{k}={m.value}" for k, m in client.cookies.items()),
        }
        if method == "post":
            headers.update(HTTP_X_CSRFTOKEN=csrf_header, HTTP_ORIGIN="http://testserver")
        if content_type is not None:
            headers["content_type"] = content_type
        env = getattr(environ, method)(url, data=data, **headers)
        answer: list[Any] = []

        def start_response(status: str, response_headers: list[Any], exc_info: Any = None) -> Any:
            answer.extend((status, response_headers))

        clock.reset()
        cpu = time.thread_time()
        began = time.perf_counter()
        response = handler(env, start_response)
        try:
            content = b"".join(response)
        finally:
            response.close()  # what a server does after the body: request_finished
        elapsed = time.perf_counter() - began
        cpu = time.thread_time() - cpu
        assert answer[0].startswith("200"), (answer[0], content[:300])
        for name, value in answer[1]:
            if name.lower() == "set-cookie":
                client.cookies.update(SimpleCookie(value))
        return (elapsed, clock.seconds, clock.statements, cpu), content

    def held_url() -> str:
        item_id = Claim.objects.get(dataset=dataset, reviewer=users[0]).item_id
        return f"/review/{SLUG}/items/{item_id}/decide"

    def decide_server() -> Sample:
        return server_timed("post", held_url(), {"verdict": "approve"})[0]

    def decide_client() -> Sample:
        return client_timed("post", held_url(), data={"verdict": "approve"}, **htmx)[0]

    def bulk_server() -> Sample:
        # The newest queued items: nobody holds them (the queue serves by random priority).
        ids = list(
            Item.objects.filter(dataset=dataset, state="queued")
            .order_by("-id")
            .values_list("id", flat=True)[:BULK_ITEMS]
        )
        # As the page's form sends it (urlencoded, not multipart).
        data = urlencode({"items": ids, "verdict": "approve", "confirm": "on"}, doseq=True)
        sample, _ = server_timed(
            "post", f"/review/{SLUG}/items/bulk", data, "application/x-www-form-urlencoded"
        )
        decided = Item.objects.filter(pk__in=ids, state="approved").count()
        assert decided == len(ids), f"{decided} of {len(ids)} items decided"
        return sample

    results: list[dict[str, Any]] = []
    if only in ("", "triage"):
        results += _bench_triage(dataset, users, requests, decide_server, decide_client, clock)
    if only in ("", "list"):
        results += _bench_list(requests, server_timed, client_timed, clock)
    if only in ("", "bulk", "job"):
        with connection.execute_wrapper(clock):
            for _ in range(3):  # warm-up
                bulk_server()
            bulk = [bulk_server() for _ in range(bulk_calls)]
        results.append(_stats(f"bulk decision, {BULK_ITEMS} items", bulk, 100.0))
        p50 = results[-1]["p50"]
        print(f"bulk decision: {BULK_ITEMS / p50 * 1000:,.0f} items/s at p50", flush=True)
        if only in ("", "job"):
            results.append(_bench_job(dataset, job_items, BULK_ITEMS / p50 * 1000, clock))
    return results


JOB_SOURCE = "bench-job"


def _bench_job(dataset: Any, n_items: int, bulk_rate: float, clock: Any) -> dict[str, Any]:
    """A filter-wide bulk job (issue 16.2) over ``n_items`` fresh queued items of their own
    source, as an admin starts it from the list page: the confirmation page (the exact count),
    the confirming POST (the job row), then the run as a worker does it (``bulk_job_run`` in this
    process, no broker in between), chunk by chunk. Reported: items/s over the whole run, each
    chunk's time, and the ratio to the 500-item bulk decision timed just before."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.test import Client

    from corpus.models import Item, Source
    from review.models import BulkJob
    from review.services import bulk_jobs

    admin, _ = get_user_model().objects.get_or_create(username="bench-admin")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    for left in BulkJob.objects.filter(dataset=dataset, state__in=BulkJob.ACTIVE):
        bulk_jobs.bulk_job_cancel(job=left, actor=admin)  # an interrupted run's job
    source, _ = Source.objects.get_or_create(dataset=dataset, name=JOB_SOURCE)
    last = Item.objects.filter(dataset=dataset).order_by("-id").values_list("id", flat=True)
    with transaction.atomic():
        _insert_queued(source, (last.first() or 0) + 1, n_items)
        _insert_scores(dataset)
    client = Client()
    client.force_login(admin)
    filters = {"state": "queued", "source": JOB_SOURCE}
    url = f"/review/{SLUG}/items/bulk-all"
    began = time.perf_counter()
    asked = client.get(url, {**filters, "verdict": "approve"})
    ask_ms = (time.perf_counter() - began) * 1000
    counted = re.search(r"all <strong>(\d+) items</strong>", asked.content.decode())
    ceiling = re.search(r'name="ceiling" value="(\d+)"', asked.content.decode())
    assert asked.status_code == 200 and counted and ceiling, asked.content[:500]
    assert int(counted.group(1)) == n_items, counted.group(1)
    # No worker in this bench: the job runs below, in this process, as a worker would run it.
    enqueue = bulk_jobs.bulk_job_enqueue
    bulk_jobs.bulk_job_enqueue = lambda *, job_id: None  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        confirmed = client.post(
            url, {**filters, "verdict": "approve", "ceiling": ceiling.group(1), "confirm": "on"}
        )
        confirm_ms = (time.perf_counter() - began) * 1000
    finally:
        bulk_jobs.bulk_job_enqueue = enqueue  # type: ignore[assignment]
    assert confirmed.status_code == 303, confirmed.content[:500]
    job_id = int(confirmed["Location"].rstrip("/").rsplit("/", 1)[1])

    chunks: list[float] = []
    chunk = bulk_jobs._chunk

    def timed(**kwargs: Any) -> bool:
        began = time.perf_counter()
        try:
            return chunk(**kwargs)
        finally:
            chunks.append((time.perf_counter() - began) * 1000)

    bulk_jobs._chunk = timed  # type: ignore[assignment]
    try:
        with connection.execute_wrapper(clock):
            clock.reset()
            cpu = time.thread_time()
            began = time.perf_counter()
            job = bulk_jobs.bulk_job_run(job_id=job_id)
            wall = time.perf_counter() - began
            cpu = time.thread_time() - cpu
    finally:
        bulk_jobs._chunk = chunk  # type: ignore[assignment]
    assert job is not None and job.state == "done", (job and job.state, job and job.error)
    assert job.decided == n_items, (job.decided, job.skipped_by_reason)
    rate = job.decided / wall
    ordered = sorted(chunks)
    row = {
        "name": f"bulk job, {n_items} items",
        "items": job.decided,
        "chunks": job.chunks,
        "wall_s": round(wall, 2),
        "items_per_s": round(rate),
        "chunk_p50": round(statistics.median(ordered), 2),
        "chunk_p95": round(_percentile(ordered, 0.95), 2),
        "chunk_max": round(ordered[-1], 2),
        "sql_s": round(clock.seconds, 2),
        "django_cpu_s": round(cpu, 2),
        "ask_ms": round(ask_ms, 1),
        "confirm_ms": round(confirm_ms, 1),
        "bulk_items_per_s": round(bulk_rate),
        "ratio_to_bulk": round(rate / bulk_rate, 2),
        "ok": True,  # no target of its own; compared with the bulk decision
    }
    print(
        f"bulk job: {job.decided:,} items in {job.chunks} chunks, {wall:.2f} s, "
        f"{rate:,.0f} items/s ({rate / bulk_rate:.2f}x the 500-item bulk call's {bulk_rate:,.0f}"
        f"/s at p50); chunk p50 {row['chunk_p50']} ms, p95 {row['chunk_p95']} ms; SQL "
        f"{clock.seconds:.2f} s, CPU {cpu:.2f} s; asking {ask_ms:.0f} ms, confirming "
        f"{confirm_ms:.0f} ms",
        flush=True,
    )
    print("RESULT " + json.dumps({"bench": "review", **row}), flush=True)
    return row


def _bench_triage(
    dataset: Any,
    users: list[Any],
    requests: int,
    decide_server: Any,
    decide_client: Any,
    clock: Any,
) -> list[dict[str, Any]]:
    from django.db import connection

    from corpus.models import Item

    with connection.execute_wrapper(clock):
        for _ in range(25):  # warm-up: connections, caches, plans
            decide_server()
            decide_client()
        with connection.cursor() as cursor:
            # What autovacuum does on its own within a minute of the first decisions: without
            # statistics the planner cannot know the review tables are worth an index probe.
            cursor.execute("ANALYZE review_decision, review_claim, review_skip, review_reviewerday")
        decide: list[Sample] = []
        decide_by_client: list[Sample] = []
        for _ in range(requests):
            decide.append(decide_server())
            decide_by_client.append(decide_client())
        assert Item.objects.filter(
            dataset=dataset, state="approved", decided_by__contains=[users[0].pk]
        ).exists()
    return [
        _stats("claim + decide + next", decide, 15.0),
        # For comparison with earlier rounds; the targets are judged on the server figures.
        _stats("claim + decide + next, client", decide_by_client, None),
    ]


def _bench_list(
    requests: int, server_timed: Any, client_timed: Any, clock: Any
) -> list[dict[str, Any]]:
    from django.db import connection

    first = f"/review/{SLUG}/items/"
    with connection.execute_wrapper(clock):
        # The list: the first page and the pages after it, as a reviewer pages through.
        pages = [first]
        for _ in range(9):
            _, content = server_timed("get", pages[-1])
            found = NEXT_PAGE.search(content.decode())
            if found is None:
                break
            pages.append(first + html.unescape(found.group(1)))
        for page in pages * 3:  # warm-up
            server_timed("get", page)
            client_timed("get", page)
        listing: list[Sample] = []
        listing_by_client: list[Sample] = []
        for i in range(requests):
            listing.append(server_timed("get", pages[i % len(pages)])[0])
            listing_by_client.append(client_timed("get", pages[i % len(pages)])[0])
    list_name = f"list page ({len(pages)} keyset pages)"
    return [
        _stats(f"{list_name}", listing, 20.0),
        _stats(f"{list_name}, client", listing_by_client, None),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="queued items (default 1M)")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per case")
    parser.add_argument(
        "--bulk-calls", type=int, default=20, help="timed bulk decisions of 500 items"
    )
    parser.add_argument(
        "--job-items", type=int, default=20_000, help="items of the filter-wide bulk job"
    )
    parser.add_argument(
        "--only",
        choices=["triage", "list", "bulk", "job"],
        default="",
        help="run one case only (job: the bulk decision too, for the ratio)",
    )
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    with django_bench(database_url):
        dataset, users = _seed(args.items)
        from django.db import connection

        from corpus.models import Item

        queued = Item.objects.filter(dataset=dataset, state="queued").count()
        print(f"dataset {SLUG}: {queued:,} queued items", flush=True)
        load_before = os.getloadavg()
        results = _bench(dataset, users, args.requests, args.bulk_calls, args.only, args.job_items)
        summary = {
            "database": connection.settings_dict["NAME"],
            "queued_items": queued,
            "cases": results,
        }
        # A run of one case does not replace the whole run's figures.
        path = RESULTS.with_name(f"review-{args.only}.json") if args.only else RESULTS
        results_write(path, summary, load_before)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
