"""API item list benchmark: ``GET /api/v1/datasets/<slug>/items/`` against the reviewer list.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_review_bench \\
        .venv/bin/python bench/api_list.py

Issue 16.6: the API item list as fast as the reviewer list page (same keyset shape), flat in
the dataset's size. Both are timed as server time, as bench/review.py times the list page: the
WSGI environ handed to Django's ``WSGIHandler`` (every middleware, authentication, the view,
its queries, the rendering, the response's close), no network. The reference is the reviewer
list page (``/review/<slug>/items/``, 50 rows a page), timed in the same loop; the API is timed
at 50 items a page (the list page's size) and at 100 (its default), paging by cursor as a
pipeline does. Two datasets: bench/review.py's (1,000,000 queued items, made by that bench on
its first run, or here) and a small one of 10,000 items in the same database, for flatness.

Prints ``RESULT {json}`` lines and writes bench/results/api_list.json with the load average.
"""

import argparse
import json
import os
import statistics
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.review import (  # noqa: E402
    DEFAULT_URL,
    NEXT_PAGE,
    SLUG,
    _insert_select,
    _percentile,
    _seed,
    _SqlClock,
    django_bench,
    results_write,
)

RESULTS = ROOT / "bench" / "results" / "api_list.json"
SMALL_SLUG = "bench-api-small"
SMALL_ITEMS = 10_000
PAGES = 10


def _seed_small(users: list[Any]) -> Any:
    """A 10,000-item dataset beside the big one: the same rows (texts, states, scores)."""
    from django.db import connection, transaction

    from corpus.models import Dataset, Item, Score, Source

    dataset, _ = Dataset.objects.get_or_create(slug=SMALL_SLUG, defaults={"name": "API small"})
    dataset.reviewers.add(*users)
    source, _ = Source.objects.get_or_create(dataset=dataset, name="bench")
    if Item.objects.filter(dataset=dataset).exists():
        return dataset
    with transaction.atomic():
        _insert_select(
            Item,
            {
                "text": "'Small bench item ' || g || ': ' "
                "|| repeat('the model wrote a fluent paragraph about rivers and lakes. ', "
                "1 + g % 6)",
                "content_hash": "md5('small' || g) || md5('SMALL' || g)",
                "origin": "(ARRAY['synthetic','unknown','human'])[1 + g % 3]",
                "generator_model": "'bench-model-' || (g % 4)",
                "generation": "1 + g % 3",
                "state": "'queued'",
                "priority": "random()",
            },
            "generate_series(1, %s) AS g",
            [SMALL_ITEMS],
            {"dataset_id": dataset.pk, "source_id": source.pk},
        )
        _insert_select(
            Score,
            {
                "item_id": "i.id",
                "scorer_version": "'1'",
                "detector_name": "'bench-detector'",
                "detector_version": "'1'",
                "detector_probability": "(i.id % 100) / 100.0",
                "priority": "i.priority",
            },
            f"{connection.ops.quote_name(Item._meta.db_table)} i WHERE i.dataset_id = %s",
            [dataset.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_item")
        cursor.execute("ANALYZE corpus_score")
    return dataset


def _stats(name: str, samples: list[tuple[float, float, int, float]], ref: float | None) -> dict:
    ms = sorted(s[0] * 1000 for s in samples)
    row: dict[str, Any] = {
        "name": name,
        "n": len(ms),
        "p50": statistics.median(ms),
        "p95": _percentile(ms, 0.95),
        "sql_p50": statistics.median(s[1] * 1000 for s in samples),
        "statements": statistics.median(s[2] for s in samples),
        "cpu_p50": statistics.median(s[3] * 1000 for s in samples),
    }
    if ref:
        row["p50_vs_list_page"] = row["p50"] / ref
    row = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
    ratio = f"  {row['p50_vs_list_page']:.2f}x the list page" if ref else ""
    print(
        f"{name:<40} n={row['n']}  p50={row['p50']:6.2f}  p95={row['p95']:6.2f} ms  "
        f"(SQL p50 {row['sql_p50']:5.2f} ms, {row['statements']:.0f} statements, "
        f"CPU p50 {row['cpu_p50']:5.2f} ms){ratio}",
        flush=True,
    )
    print("RESULT " + json.dumps({"bench": "api_list", **row}), flush=True)
    return row


def _bench(datasets: list[Any], users: list[Any], rounds: int) -> list[dict[str, Any]]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import Client, RequestFactory

    from corpus.services.tokens import token_create

    class Environ(RequestFactory):
        def request(self, **request: Any) -> Any:
            return self._base_environ(**request)

    client = Client()
    client.force_login(users[0])
    handler = WSGIHandler()
    environ = Environ()
    clock = _SqlClock()

    def timed(url: str, headers: dict[str, str]) -> tuple[tuple[float, float, int, float], bytes]:
        env = environ.get(url, **headers)
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
            response.close()
        elapsed = time.perf_counter() - began
        cpu = time.thread_time() - cpu
        assert answer[0].startswith("200"), (answer[0], content[:300])
        for name, value in answer[1]:
            if name.lower() == "set-cookie":
                client.cookies.update(SimpleCookie(value))
        return (elapsed, clock.seconds, clock.statements, cpu), content

    def session() -> dict[str, str]:
        cookie = "; ".join(f"{k}={m.value}" for k, m in client.cookies.items())
        return {"HTTP_HX_REQUEST": "true", "HTTP_COOKIE": cookie}

    results = []
    with connection.execute_wrapper(clock):
        for dataset in datasets:
            _, key = token_create(
                actor="bench", name="api-list bench", scopes=["consume"], dataset=dataset
            )
            auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
            # The URLs of PAGES consecutive pages of each kind, found by following the cursors.
            first = f"/review/{dataset.slug}/items/"
            list_pages = [first]
            for _ in range(PAGES - 1):
                _, content = timed(list_pages[-1], session())
                found = NEXT_PAGE.search(content.decode())
                if found is None:
                    break
                list_pages.append(first + found.group(1).replace("&amp;", "&"))
            api_pages: dict[int, list[str]] = {}
            for limit in (50, 100):
                base = f"/api/v1/datasets/{dataset.slug}/items/?limit={limit}"
                urls = [base]
                for _ in range(PAGES - 1):
                    _, content = timed(urls[-1], auth)
                    urls.append(f"{base}&cursor={json.loads(content)['next']}")
                api_pages[limit] = urls
            for _ in range(2):  # warm-up: connections, caches, plans
                for url in list_pages:
                    timed(url, session())
                for urls in api_pages.values():
                    for url in urls:
                        timed(url, auth)
            samples: dict[str, list[Any]] = {"list": [], "api50": [], "api100": []}
            for r in range(rounds):
                page = r % len(list_pages)
                samples["list"].append(timed(list_pages[page], session())[0])
                samples["api50"].append(timed(api_pages[50][r % PAGES], auth)[0])
                samples["api100"].append(timed(api_pages[100][r % PAGES], auth)[0])
            count = dataset.items.count()
            ref = _stats(f"{count:,} items: list page (50 rows)", samples["list"], None)
            results.append({"items": count, **ref})
            for name, limit in (("api50", 50), ("api100", 100)):
                row = _stats(f"{count:,} items: API list, limit {limit}", samples[name], ref["p50"])
                results.append({"items": count, **row})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="big dataset's queued items")
    parser.add_argument("--rounds", type=int, default=300, help="timed requests per case")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    with django_bench(database_url):
        big, users = _seed(args.items)
        small = _seed_small(users)
        load_before = os.getloadavg()
        results = _bench([small, big], users, args.rounds)
        results_write(RESULTS, {"big_dataset": SLUG, "cases": results}, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
