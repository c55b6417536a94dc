"""Dashboard benchmark: the dataset page at 1,000,000 items on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_dashboard_bench \\
        .venv/bin/python bench/dashboard.py [--items N] [--loads 50]

Target (issue 13): the dashboard (``/datasets/<slug>/``, an admin's, every chart) renders in
under 300 ms at p95 over 50 loads. The reviewer's dashboard and, as the reference timed in the
same run on the same data, the review list page (``/review/<slug>/items/``, bench/review.py's
20 ms target) are loaded in turn with it, so the ratio says what the machine's load does not.
Each load is timed around ``django.test.Client.get`` (the view, its queries, the template).

The dataset ``bench-dashboard`` is filled once with INSERT ... SELECT (bench/review.py's
helper): items in every state spread over 30 days, their scores, the feed entries of the
approved ones, a human reference corpus with rare words, two reviewers' decisions and days,
and a few ready exports. Re-running reuses it. Before timing, the rollup runs twice and both are
timed: the first catches up (every reference item and approval counted into the tail n-grams),
the second is what the periodic task then costs.

Prints ``RESULT {json}`` lines (bench/run_all.py) and writes bench/results/dashboard.json with
the load average. Exit status 1 when the target is missed.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.review import (  # noqa: E402
    _insert_select,
    _percentile,
    django_bench,
    results_write,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sg_dashboard_bench"
SLUG = "bench-dashboard"
RESULTS = ROOT / "bench" / "results" / "dashboard.json"
REFERENCE_ITEMS = 2000
TARGET_MS = 300.0
# Item g's state: 8 in 20 approved, 7 queued, 2 rejected, 2 auto-rejected, 1 pending.
STATE_OF_G = (
    "(CASE WHEN g % 20 < 8 THEN 'approved' WHEN g % 20 < 15 THEN 'queued'"
    " WHEN g % 20 < 17 THEN 'rejected' WHEN g % 20 < 19 THEN 'auto_rejected'"
    " ELSE 'pending' END)"
)


def _seed(n_items: int) -> tuple[Any, Any, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from corpus.models import Dataset, Export, FeedEntry, Item, Score, Source
    from review.models import Decision, ReviewerDay

    dataset, _ = Dataset.objects.get_or_create(slug=SLUG, defaults={"name": "Dashboard bench"})
    source, _ = Source.objects.get_or_create(dataset=dataset, name="bench")
    group, _ = Group.objects.get_or_create(name="reviewer")
    User = get_user_model()
    admin, _ = User.objects.get_or_create(
        username="bench-dash-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    reviewers = []
    for name in ("bench-dash-alice", "bench-dash-bob"):
        user, _ = User.objects.get_or_create(username=name)
        user.groups.add(group)
        reviewers.append(user)
    dataset.reviewers.add(*reviewers)
    q = connection.ops.quote_name
    items_table = q(Item._meta.db_table)

    if not Item.objects.filter(dataset=dataset, is_reference=True).exists():
        with transaction.atomic():
            _insert_select(
                Item,
                {
                    # rare<g>: in one reference document; pair<g/2>: in two; the rest common.
                    "text": "'Reference ' || g || ': a human wrote about rivers and the rare' "
                    "|| g || ' and pair' || (g / 2) || ' words of the river valley.'",
                    "content_hash": "md5('dref' || g) || md5('DREF' || g)",
                    "origin": "'human'",
                    "is_reference": "true",
                    "state": "'approved'",
                },
                "generate_series(1, %s) AS g",
                [REFERENCE_ITEMS],
                {"dataset_id": dataset.pk, "source_id": source.pk},
            )
    have = Item.objects.filter(dataset=dataset, is_reference=False).count()
    missing = n_items - have
    if missing > 0:
        print(f"inserting {missing:,} items, their scores and feed entries...", flush=True)
        began = time.perf_counter()
        with transaction.atomic():
            _insert_select(
                Item,
                {
                    # rare<g % 4000>: half the reference's rare words appear in some item.
                    "text": "'Bench item ' || g || ' about rare' || (g % 4000) || ' lakes: ' "
                    "|| repeat('the model wrote a fluent paragraph about rivers. ', 1 + g % 4)",
                    "content_hash": "md5('dbench' || g) || md5('DBENCH' || g)",
                    "origin": "(ARRAY['synthetic','unknown','human'])[1 + g % 3]",
                    "generator_model": "'bench-model-' || (g % 4)",
                    "generation": "g % 6",
                    "state": STATE_OF_G,
                    "priority": "random()",
                    "created_at": "now() - make_interval(days => g % 30, mins => g % 1400)",
                    "decided_at": f"CASE WHEN {STATE_OF_G} IN ('approved', 'rejected') THEN "
                    "now() - make_interval(days => g % 30, mins => g % 1400) + interval '1 hour' "
                    "END",
                },
                "generate_series(%s, %s) AS g",
                [have + 1, have + missing],
                {"dataset_id": dataset.pk, "source_id": source.pk},
            )
            first_id = Item.objects.filter(dataset=dataset).order_by("id").values("id")[:1]
            first = first_id[0]["id"]
            _insert_select(
                Score,
                {
                    "item_id": "i.id",
                    "scorer_version": "'1'",
                    "lexical": "jsonb_build_object('distinct_2', 0.8 + (i.id % 20) / 100.0, "
                    "'compression_ratio', 2.1 + (i.id % 9) / 10.0, "
                    "'repeated_ngram_share', (i.id % 7) / 100.0)",
                    "detector_name": "'bench-detector'",
                    "detector_version": "'1'",
                    "detector_probability": "(i.id % 100) / 100.0",
                    "near_duplicate_jaccard": "CASE WHEN i.id % 10 = 0 THEN 0.9 END",
                    "near_duplicate_of_id": "CASE WHEN i.id % 10 = 0 THEN "
                    f"{first} + i.id % 1000 END",
                    "priority": "i.priority",
                },
                f"{items_table} i WHERE i.dataset_id = %s AND NOT EXISTS (SELECT 1 FROM "
                f"{q(Score._meta.db_table)} s WHERE s.item_id = i.id)",
                [dataset.pk],
            )
            feed = q(FeedEntry._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {feed} (seq, dataset_id, item_id, kind, created_at) "
                    f"SELECT (SELECT COALESCE(MAX(seq), 0) FROM {feed}) + row_number() OVER "
                    f"(ORDER BY i.id), i.dataset_id, i.id, 'approved', i.decided_at "
                    f"FROM {items_table} i WHERE i.dataset_id = %s AND i.state = 'approved' "
                    f"AND NOT i.is_reference AND NOT EXISTS "
                    f"(SELECT 1 FROM {feed} f WHERE f.item_id = i.id)",
                    [dataset.pk],
                )
                # Two votes on one decided item in 50: alice, then bob (who disagrees on 1 in 5).
                decisions = q(Decision._meta.db_table)
                for n, (reviewer, verdict) in enumerate(
                    (
                        (
                            reviewers[0],
                            "(CASE WHEN i.state = 'approved' THEN 'approve' ELSE 'reject' END)",
                        ),
                        (
                            reviewers[1],
                            "(CASE WHEN (i.state = 'approved') = (i.id %% 5 <> 0) "
                            "THEN 'approve' ELSE 'reject' END)",
                        ),
                    )
                ):
                    cursor.execute(
                        f"INSERT INTO {decisions} (item_id, dataset_id, reviewer_id, verdict, "
                        f"reason, note, via, gold_expected, created_at) SELECT i.id, i.dataset_id, "
                        f"%s, v, CASE WHEN v = 'reject' THEN 'low_quality' ELSE '' END, '', "
                        f"'triage', '', i.decided_at + make_interval(mins => %s) FROM "
                        f"(SELECT i.*, {verdict} AS v FROM {items_table} i WHERE i.dataset_id = %s "
                        f"AND i.state IN ('approved', 'rejected') AND i.id %% 50 = 0 "
                        f"AND NOT i.is_reference "
                        f"AND NOT EXISTS (SELECT 1 FROM {decisions} d WHERE d.item_id = i.id "
                        f"AND d.reviewer_id = %s)) i",
                        [reviewer.pk, n, dataset.pk, reviewer.pk],
                    )
        today = timezone.localdate()
        for days_ago in range(30):
            for reviewer in reviewers:
                ReviewerDay.objects.get_or_create(
                    dataset=dataset,
                    reviewer=reviewer,
                    day=today - timedelta(days=days_ago),
                    defaults={"decided": 200 + 7 * days_ago + reviewer.pk % 13},
                )
        for k in range(5):
            share = 0.2 + 0.05 * k
            Export.objects.create(
                dataset=dataset,
                status=Export.Status.READY,
                requested_by="bench",
                rows_written=100_000 + k,
                finished_at=timezone.now(),
                manifest={
                    "human_share": round(1 - share - 0.1, 6),
                    "synthetic_share": share,
                    "unknown_share": 0.1,
                },
            )
        with connection.cursor() as cursor:
            for model in (Item, Score, FeedEntry, Decision):
                cursor.execute(f"VACUUM ANALYZE {q(model._meta.db_table)}")
        print(f"  seeded in {time.perf_counter() - began:.1f} s", flush=True)
    return dataset, admin, reviewers[0]


def _row(
    name: str, ms: list[float], target: float | None, reference_p95: float | None
) -> dict[str, Any]:
    ms = sorted(ms)
    row: dict[str, Any] = {
        "bench": "dashboard",
        "name": name,
        "n": len(ms),
        "p50": round(statistics.median(ms), 2),
        "p95": round(_percentile(ms, 0.95), 2),
        "max": round(ms[-1], 2),
        "target_p95": target,
    }
    row["ok"] = target is None or row["p95"] <= target
    if reference_p95:
        row["p95_over_reference"] = round(row["p95"] / reference_p95, 2)
    verdict = (
        f"target p95 < {target} ms: {'OK' if row['ok'] else 'MISSED'}" if target else "reference"
    )
    print(
        f"{name:<22} n={row['n']}  p50={row['p50']:7.2f}  p95={row['p95']:7.2f}  "
        f"max={row['max']:7.2f} ms   {verdict}",
        flush=True,
    )
    print("RESULT " + json.dumps(row), flush=True)
    return row


def _time_loads(dataset: Any, admin: Any, reviewer: Any, loads: int) -> list[dict[str, Any]]:
    from django.test import Client

    admin_client, reviewer_client = Client(), Client()
    admin_client.force_login(admin)
    reviewer_client.force_login(reviewer)
    cases = [
        ("dashboard (admin)", admin_client, f"/datasets/{dataset.slug}/"),
        ("dashboard (reviewer)", reviewer_client, f"/datasets/{dataset.slug}/"),
        ("list page (reference)", reviewer_client, f"/review/{dataset.slug}/items/"),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for name, client, url in cases:  # warm up: connections, templates, caches
        assert client.get(url).status_code == 200, (name, url)
    for _ in range(loads):
        for name, client, url in cases:
            began = time.perf_counter()
            response = client.get(url)
            samples[name].append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200
    reference = sorted(samples["list page (reference)"])
    ref_p95 = _percentile(reference, 0.95)
    return [
        _row(
            name,
            samples[name],
            TARGET_MS if name.startswith("dashboard (admin") else None,
            None if name.startswith("list") else ref_p95,
        )
        for name, _, _ in cases
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items (default 1M)")
    parser.add_argument("--loads", type=int, default=50, help="timed loads per page (default 50)")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    with django_bench(database_url):
        dataset, admin, reviewer = _seed(args.items)
        from dashboard.models import DashboardState
        from dashboard.services.alerts import alerts_evaluate
        from dashboard.services.rollup import dashboard_rollup

        fresh = not DashboardState.objects.filter(dataset=dataset).exists()
        rollups = []
        for label in ("first (catch-up)" if fresh else "first", "second (steady)"):
            began = time.perf_counter()
            dashboard_rollup(dataset=dataset)
            alerts_evaluate(dataset=dataset)
            rollups.append(round(time.perf_counter() - began, 2))
            print(f"rollup {label}: {rollups[-1]:.2f} s", flush=True)
        load_before = os.getloadavg()
        results = _time_loads(dataset, admin, reviewer, args.loads)
        from corpus.models import Item

        summary = {
            "items": Item.objects.filter(dataset=dataset).count(),
            "rollup_seconds": {"first": rollups[0], "second": rollups[1], "catch_up": fresh},
            "cases": results,
        }
        print(json.dumps({k: v for k, v in summary.items() if k != "cases"}), flush=True)
        results_write(RESULTS, summary, load_before)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
