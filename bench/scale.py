"""Synthgate at N items on one PostgreSQL: build the corpus fast, then measure at that size.

    .venv/bin/python bench/scale.py [--n 1000000] [--index-items N] [--keep] [--reuse]

Groundwork for issue 16.3 (1M and 10M items on one box). It

1. builds a dataset of ``--n`` items of about 1 KB server-side (``INSERT ... SELECT`` over
   ``generate_series``, each text one of 1,000 prose texts after a unique "Item <n>." so that
   every content hash differs: no Python per row) with the product's own indexes in place: 60%
   queued, 30% approved (each with its feed entry), 10% rejected; every item gets a score row
   copied from one of 200 items scored by the real scorer, so that row sizes are the product's;
   then ANALYZE. ``--reuse`` skips this when ``--database`` already holds ``--n`` items;
2. measures at that size, in this process through the product's code (Django test client for
   the API: middleware, token authentication and serializers included; no HTTP server):
   - ingest of 100 batches of 1,000 new items through the ingest service (scoring held back):
     items/s, and the first 10 and last 10 batches;
   - the API item list: the first page and 20 pages deep by the ``next`` cursor (limit 100),
     median ms per page; the same with ``?state=approved``;
   - the feed: the first page and 20 pages deep (limit 100), median ms per page;
   - ingest's idempotency lookup of 1,000 keys in its old and new shape (``values_in``,
     ``values_by_key``), for existing and for new keys;
   - table and index sizes (pg_relation_size, pg_indexes_size, TOAST included in the table)
     for the item, score and feed tables, in total and per million items;
3. fills the near-duplicate index of a private redis-server (started here, under a temporary
   directory) with ``--index-items`` items (default: ``--n``) and reports its memory
   (``INFO memory``: used_memory) per million items. The signatures are random, as for
   unrelated texts: every band key is its own, the worst case for memory.

Uses --database (default sg_scale_big) on BENCH_POSTGRES; dropped at the end unless --keep.
Prints a summary and ``RESULT {json}``. Not a test.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import embedded_redis  # noqa: E402

WORDS = [
    "river", "harbour", "lantern", "copper", "meadow", "signal", "orchard", "engine", "ledger",
    "thistle", "granite", "compass", "willow", "beacon", "furnace", "quarry", "pebble", "saddle",
    "kettle", "timber", "glacier", "ferry", "almanac", "barley", "cinder", "dialect", "ember",
    "fathom", "gravel", "hinge", "ivory", "juniper", "kiln", "lattice", "marble", "nettle",
    "oyster", "parcel", "quill", "rafter",
]  # fmt: skip
TEMPLATES = 200
CHUNK = 250_000

# Texts: "Item <g>. " + one of POOL prose texts of about 1 KB made once (word salad of WORDS),
# so that a row costs PostgreSQL a join and a sha256, not 150 random() calls.
POOL = 1000
POOL_SQL = """
CREATE TEMPORARY TABLE text_pool AS
SELECT p AS n, array_to_string(ARRAY(
    SELECT (%(words)s::text[])[1 + floor(random() * %(nwords)s)::int]
    FROM generate_series(1, 140 + p %% 20)), ' ') AS text
FROM generate_series(0, %(pool)s - 1) AS p
"""
ITEMS_SQL = """
INSERT INTO corpus_item (
    text, content_hash, external_id, origin, generator_model, generator_version, prompt,
    sampling_params, generation, metadata, is_reference, state, state_reason, priority,
    decided_at, decided_by, created_at, updated_at, dataset_id, source_id, is_gold, kind,
    language, messages)
SELECT t.text, encode(sha256(convert_to(t.text, 'UTF8')), 'hex'), 'big-' || g, 'synthetic',
    'bench-gen', '1.0', '', '{"temperature": 0.8}', 1, '{"bench": true}', false,
    CASE WHEN g %% 10 < 6 THEN 'queued' WHEN g %% 10 < 9 THEN 'approved' ELSE 'rejected' END,
    '', random(), CASE WHEN g %% 10 >= 6 THEN now() END, '[]', now(), now(), %(dataset)s,
    %(source)s, false, 'text', 'en', NULL
FROM generate_series(%(lo)s, %(hi)s) AS g
CROSS JOIN LATERAL (
    SELECT 'Item ' || g || '. ' || text AS text FROM text_pool WHERE n = g %% %(pool)s
) AS t
"""


def recreate(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + f"/{name}"


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def build(n: int) -> dict:
    """The corpus: items, their scores (copied from real ones) and the feed of the approved."""
    from django.db import connection

    from corpus.models import Dataset, Score, Source
    from corpus.services import scoring
    from corpus.services.audit import SYSTEM
    from corpus.services.ingest import items_ingest, items_parse

    # The score templates: real items scored by the real scorer, in a dataset of their own.
    templates = Dataset.objects.create(slug="templates", name="templates")
    outcome = items_ingest(
        dataset=templates,
        items=items_parse(
            [
                {
                    "text": f"Template {i}. " + " ".join(WORDS[(i + k) % 40] for k in range(150)),
                    "origin": "synthetic",
                }  # fmt: skip
                for i in range(TEMPLATES)
            ]
        ),
        actor=SYSTEM,
        default_source="t",
    )
    scoring.items_score(item_ids=list(outcome.created_ids))
    dataset = Dataset.objects.create(slug="big", name="big")
    source = Source.objects.create(dataset=dataset, name="bench")
    timings = {}
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(POOL_SQL, {"words": WORDS, "nwords": len(WORDS), "pool": POOL})
        cursor.execute("CREATE UNIQUE INDEX ON text_pool (n)")
        for lo in range(1, n + 1, CHUNK):
            hi = min(lo + CHUNK - 1, n)
            cursor.execute(
                ITEMS_SQL,
                {
                    "dataset": dataset.pk,
                    "source": source.pk,
                    "lo": lo,
                    "hi": hi,
                    "pool": POOL,
                },  # fmt: skip
            )
            print(f"  items {hi:,} / {n:,} ({time.perf_counter() - start:.0f} s)", flush=True)
        timings["items_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        # Every column of the score row but its item: follows the model as it changes.
        columns = [f.column for f in Score._meta.concrete_fields if f.column != "item_id"]
        cols = ", ".join(columns)
        cursor.execute(
            f"INSERT INTO corpus_score (item_id, {cols}) "
            f"SELECT i.id, {', '.join('t.' + c for c in columns)} FROM corpus_item i "
            f"JOIN (SELECT row_number() OVER (ORDER BY s.item_id) - 1 AS rn, s.* "
            f"      FROM corpus_score s JOIN corpus_item ti ON ti.id = s.item_id "
            f"      WHERE ti.dataset_id = %s) t ON t.rn = i.id %% {TEMPLATES} "
            f"WHERE i.dataset_id = %s",
            [templates.pk, dataset.pk],
        )
        timings["scores_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        cursor.execute(
            "INSERT INTO corpus_feedentry (seq, kind, created_at, dataset_id, item_id) "
            "SELECT row_number() OVER (ORDER BY id), 'approved', now(), dataset_id, id "
            "FROM corpus_item WHERE dataset_id = %s AND state = 'approved'",
            [dataset.pk],
        )
        timings["feed_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        cursor.execute("ANALYZE")
        timings["analyze_s"] = round(time.perf_counter() - start, 1)
    return timings


def measure_ingest(dataset_slug: str) -> dict:
    from corpus.models import Dataset
    from corpus.services import ingest
    from corpus.services.audit import SYSTEM

    dataset = Dataset.objects.get(slug=dataset_slug)
    held: list[list[int]] = []
    send = ingest._score_enqueue
    ingest._score_enqueue = held.append
    batches = []
    try:
        for b in range(100):
            raw = [
                {
                    "text": f"New {b}-{i}. "
                    + " ".join(WORDS[(b * 7 + i + k) % 40] for k in range(150)),
                    "external_id": f"new-{b}-{i}",
                    "origin": "synthetic",
                    "source": "bench",
                    "metadata": {"bench": True},
                }  # fmt: skip
                for i in range(1000)
            ]
            items = ingest.items_parse(raw)
            start = time.perf_counter()
            ingest.items_ingest(dataset=dataset, items=items, actor=SYSTEM, default_source="bench")
            batches.append(time.perf_counter() - start)
    finally:
        ingest._score_enqueue = send
    return {
        "items_per_s": round(100_000 / sum(batches)),
        "first10_items_per_s": round(10_000 / sum(batches[:10])),
        "last10_items_per_s": round(10_000 / sum(batches[-10:])),
        "batch_ms_median": median_ms(batches),
    }


def measure_lookups(dataset_slug: str, n: int) -> dict:
    """Ingest's idempotency lookup at this size, in its two shapes (median of 15 x 1,000 keys):
    ``values_in`` (``source_id = ANY AND external_id = ANY``, planned on statistics) and
    ``values_by_key`` (one unique-index probe per key), for keys that exist and keys that do
    not (a batch of new items, the common case)."""
    from corpus.db.bulk import values_by_key, values_in
    from corpus.models import Item, Source

    source = Source.objects.get(dataset__slug=dataset_slug, name="bench").pk
    result = {}
    for label, first in (("existing", n // 2), ("new", 10 * n)):
        old, new = [], []
        for r in range(15):
            keys = {(source, f"big-{g}") for g in range(first + r * 1000, first + r * 1000 + 1000)}
            start = time.perf_counter()
            a = values_in(
                Item,
                ["source_id", "external_id", "id"],
                source_id__in={source},
                external_id__in={e for _, e in keys},
            )
            old.append(time.perf_counter() - start)
            start = time.perf_counter()
            b = values_by_key(Item, ["source_id", "external_id"], keys, ["id"])
            new.append(time.perf_counter() - start)
            if sorted(a) != sorted(b):
                raise SystemExit("the two lookup shapes disagree")
        result[label] = {"values_in_ms": median_ms(old), "values_by_key_ms": median_ms(new)}
    return result


def measure_pages(client, path: str, key: str, pages: int = 20) -> dict:  # type: ignore[no-untyped-def]
    """Median ms of the first page (10 tries) and of ``pages`` pages followed by ``next``."""
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    first = []
    for _ in range(10):
        start = time.perf_counter()
        response = client.get(path, **headers)
        first.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status_code} {response.content[:300]!r}")
    deep = []
    cursor = response.json()["next"]
    sep = "&" if "?" in path else "?"
    for _ in range(pages):
        start = time.perf_counter()
        response = client.get(f"{path}{sep}cursor={cursor}", **headers)
        deep.append(time.perf_counter() - start)
        cursor = response.json()["next"]
    return {"first_page_ms": median_ms(first), "next_pages_ms": median_ms(deep)}


def measure_middle(client, key: str, admin) -> dict:  # type: ignore[no-untyped-def]
    """Median ms of 10 pages read from the middle of the dataset, each at a cursor of its own
    (the median item id, then a thousand further, ...): the API item list (limit 100; all
    items, then ``state=approved``), the feed (limit 100, from the median seq) and the
    reviewer's list page (50 a page, ``sort=oldest``, the queue and every state, as an admin
    who bookmarked a page sees it). Reading a dataset through by cursor meets every position;
    the first pages alone do not show a page whose cost grows with its position."""
    from django.db.models import Max, Min

    from corpus.api_support import cursor_encode
    from corpus.models import FeedEntry, Item

    bounds = Item.objects.filter(dataset__slug="big").aggregate(lo=Min("id"), hi=Max("id"))
    middle = (bounds["lo"] + bounds["hi"]) // 2
    seqs = FeedEntry.objects.filter(dataset__slug="big").aggregate(lo=Min("seq"), hi=Max("seq"))
    feed_middle = (seqs["lo"] + seqs["hi"]) // 2
    token = {"HTTP_AUTHORIZATION": f"Token {key}"}

    def timed(urls: list[str], **headers: str) -> float:
        samples = []
        for url in urls:
            start = time.perf_counter()
            response = client.get(url, **headers)
            samples.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"GET {url}: HTTP {response.status_code}")
        return median_ms(samples)

    def api(query: str) -> list[str]:
        return [
            f"/api/v1/datasets/big/items/?limit=100{query}"
            f"&cursor={cursor_encode({'after': middle + 1000 * k})}"
            for k in range(10)
        ]

    def listed(state: str) -> list[str]:
        return [
            f"/review/big/items/?state={state}&sort=oldest"
            f"&cursor={cursor_encode({'id': middle + 1000 * k, 'sort': 'oldest'})}"
            for k in range(10)
        ]

    result = {
        "api_list_ms": timed(api(""), **token),
        "api_list_approved_ms": timed(api("&state=approved"), **token),
        "feed_ms": timed(
            [
                f"/api/v1/datasets/big/feed/?limit=100"
                f"&cursor={cursor_encode({'feed': feed_middle + 1000 * k})}"
                for k in range(10)
            ],
            **token,
        ),
    }
    client.force_login(admin)
    result["review_list_queued_ms"] = timed(listed("queued"))
    result["review_list_all_ms"] = timed(listed(""))
    return result


def measure_rollup(dataset_slug: str, rounds: int = 3) -> dict:
    """The dashboard rollup: the tail n-grams' first count, a full recomputation of the
    blocks, a run with nothing changed, then ``rounds`` runs each after a period of activity:
    500 approvals of queued items picked at random over the whole dataset (through the bulk
    decision service: the worst case for blocks, one per item) and 1,000 items ingested."""
    import random

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from corpus.models import Dataset, Item
    from corpus.services.audit import SYSTEM
    from corpus.services.ingest import items_ingest, items_parse
    from dashboard.models import DashboardBlock
    from dashboard.services.rollup import dashboard_rollup, tail_update
    from review.services.decisions import decisions_bulk

    dataset = Dataset.objects.get(slug=dataset_slug)
    reviewer, _ = get_user_model().objects.get_or_create(username="bench-reviewer")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    # Unseeded: a rerun on a kept database picks other items (blocks it has not read yet).
    rng = random.Random()

    def timed(**kwargs: bool) -> float:
        start = time.perf_counter()
        dashboard_rollup(dataset=dataset, **kwargs)
        return round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    tail_update(dataset=dataset)
    result: dict = {"tail_first_s": round(time.perf_counter() - start, 1)}
    result["full_s"] = timed(full=True)
    result["blocks"] = DashboardBlock.objects.filter(dataset=dataset).count()
    result["unchanged_s"] = timed()
    low = Item.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)[0]
    high = Item.objects.filter(dataset=dataset).order_by("-id").values_list("id", flat=True)[0]
    runs = []
    for round_ in range(rounds):
        picks = rng.sample(range(low, high + 1), 2000)
        queued = list(
            Item.objects.filter(dataset=dataset, state=Item.State.QUEUED, id__in=picks).values_list(
                "id", flat=True
            )[:500]
        )
        decisions_bulk(dataset=dataset, reviewer=reviewer, item_ids=queued, verdict="approve")
        items_ingest(
            dataset=dataset,
            items=items_parse(
                [
                    {
                        "text": f"Rollup {round_} {i}. " + " ".join(rng.choices(WORDS, k=150)),
                        "origin": "synthetic",
                    }  # fmt: skip
                    for i in range(1000)
                ]
            ),
            actor=SYSTEM,
            default_source="rollup",
        )
        runs.append(timed())
    result["after_activity_s"] = runs
    result["after_activity_median_s"] = statistics.median(runs)
    return result


def sizes(n: int) -> dict:
    from django.db import connection

    result = {}
    with connection.cursor() as cursor:
        for table in ("corpus_item", "corpus_score", "corpus_feedentry"):
            cursor.execute(
                "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", [table, table]
            )
            table_bytes, index_bytes = cursor.fetchone()
            result[table] = {
                "table_mb": round(table_bytes / 2**20),
                "indexes_mb": round(index_bytes / 2**20),
                "table_mb_per_million": round(table_bytes / 2**20 / n * 1e6),
                "indexes_mb_per_million": round(index_bytes / 2**20 / n * 1e6),
            }
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = 'corpus_item'::regclass ORDER BY 2 DESC"
        )
        result["corpus_item"]["indexes"] = {
            name: round(size / 2**20) for name, size in cursor.fetchall()
        }
    return result


def index_memory(count: int) -> dict:
    import numpy as np

    from corpus.redis_client import redis_client
    from corpus.scoring import lsh, minhash
    from corpus.services import near_dup_index

    client = redis_client()
    client.flushdb()
    before = client.info("memory")["used_memory"]
    rng = np.random.default_rng(16)
    start = time.perf_counter()
    for lo in range(0, count, 10_000):
        size = min(10_000, count - lo)
        sigs = rng.integers(0, 2**32, size=(size, minhash.NUM_PERM), dtype=np.uint32)
        near_dup_index.index_add_keys(
            999, ((lo + i + 1, lsh.band_keys(sig)) for i, sig in enumerate(sigs))
        )
    seconds = time.perf_counter() - start
    info = client.info("memory")
    used = info["used_memory"] - before
    keys = client.dbsize()
    return {
        "items": count,
        "used_memory_mb": round(used / 2**20),
        "mb_per_million": round(used / 2**20 / count * 1e6),
        "keys": keys,
        "bytes_per_item": round(used / count),
        "fill_seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="items in the corpus")
    parser.add_argument("--index-items", type=int, default=None, help="default: --n")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--database", default="sg_scale_big")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--reuse", action="store_true", help="use --database as it is if it holds --n items"
    )
    parser.add_argument(
        "--rollup-only",
        action="store_true",
        help="with --reuse: time the dashboard rollup only (it changes the corpus a little)",
    )
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="with --reuse: time the pages only (no sizes, lookups, ingest or index)",
    )
    args = parser.parse_args()
    index_items = args.index_items if args.index_items is not None else args.n

    base = args.postgres.rsplit("/", 1)[0]
    dsn = f"{base}/{args.database}"
    reuse = False
    if args.reuse:
        try:
            with psycopg.connect(dsn) as conn:
                found = conn.execute(
                    "SELECT count(*) FROM corpus_item i JOIN corpus_dataset d "
                    "ON d.id = i.dataset_id WHERE d.slug = 'big'"
                ).fetchone()[0]
            reuse = found >= args.n
        except psycopg.Error:
            reuse = False
    if not reuse:
        recreate(args.postgres, args.database)
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-scale-"))
    redis_process = embedded_redis.start(workdir / "redis", persist=False, die_with_parent=True)
    os.environ.update(
        DATABASE_URL=dsn,
        REDIS_URL=f"unix://{embedded_redis.socket_path(workdir / 'redis')}",
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        SYNTHGATE_TOKEN_RATE="1000000/min",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from corpus.models import Dataset
    from corpus.services.tokens import token_create

    try:
        result: dict = {"bench": "scale", "n": args.n}
        if not reuse:
            call_command("migrate", verbosity=0)
            print(f"building {args.n:,} items ...", flush=True)
            result["build"] = build(args.n)
            print(f"built: {result['build']}", flush=True)
        if reuse and args.rollup_only:
            call_command("migrate", verbosity=0)
            result["rollup"] = measure_rollup("big")
            print(f"dashboard rollup: {result['rollup']}", flush=True)
            print("RESULT " + json.dumps(result), flush=True)
            return 0
        dataset = Dataset.objects.get(slug="big")
        key = token_create(actor="bench", name="bench", scopes=["consume"], dataset=dataset)[1]
        client = Client(HTTP_HOST="127.0.0.1")
        result["api_list"] = measure_pages(client, "/api/v1/datasets/big/items/?limit=100", key)
        result["api_list_approved"] = measure_pages(
            client, "/api/v1/datasets/big/items/?limit=100&state=approved", key
        )
        result["feed"] = measure_pages(client, "/api/v1/datasets/big/feed/?limit=100", key)
        print(f"API list: {result['api_list']}; approved only: {result['api_list_approved']}; "
              f"feed: {result['feed']}", flush=True)  # fmt: skip
        admin, _ = get_user_model().objects.get_or_create(
            username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
        )
        result["middle"] = measure_middle(client, key, admin)
        print(f"pages from the middle (ms): {result['middle']}", flush=True)
        if reuse and args.pages_only:
            print("RESULT " + json.dumps(result), flush=True)
            return 0
        result["sizes"] = sizes(args.n)
        for table, figures in result["sizes"].items():
            print(f"{table}: table {figures['table_mb']} MB, indexes {figures['indexes_mb']} MB "
                  f"({figures['table_mb_per_million']} + {figures['indexes_mb_per_million']} MB "
                  "per million items)", flush=True)  # fmt: skip
        result["lookups"] = measure_lookups("big", args.n)
        print(f"idempotency lookup of 1,000 keys: {result['lookups']}", flush=True)
        result["ingest"] = measure_ingest("big")
        print(f"ingest of 100 x 1,000 at {args.n:,}: {result['ingest']}", flush=True)
        result["rollup"] = measure_rollup("big")
        print(f"dashboard rollup: {result['rollup']}", flush=True)
        if index_items:
            result["near_dup_index"] = index_memory(index_items)
            print(f"near-duplicate index: {result['near_dup_index']}", flush=True)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        embedded_redis.stop(redis_process)
        if not args.keep:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    sys.exit(main())
