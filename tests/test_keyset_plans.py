"""Keyset pages read about a page of rows wherever the cursor is (PostgreSQL plans).

A page of the API item list or of the reviewer's list joins each item to its score. Written
as one flat join ordered by id, PostgreSQL may merge-join the two tables and read the score
index from its first row up to the cursor on every page: it does not carry ``id > cursor``
over to the score side, and its estimate of where the merge starts ignores the cursor. At 1M
items a page from the middle took about 1 s (bench/RESULTS.md, "Keyset pages in the middle").
These tests run each page query with ``EXPLAIN ANALYZE`` on the first page and from the middle
of a scored dataset, and check that the page from the middle reads no more rows than the first
page (a page's worth of slack): the cost of a page must not grow with its position. (Whether a
page reads 50 score rows through the index or, on a table this small, all 3,000 through a hash
join is the planner's choice on either page alike.)
"""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from corpus import selectors
from corpus.models import Item, Score
from review.selectors import ListQuery, review_item_list
from tests.factories import ItemFactory, SourceFactory
from tests.plans import plan_rows_read

pytestmark = [pytest.mark.postgres]

N_ITEMS = 3_000
LIMIT = 50


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's")


@pytest.fixture
def scored(dataset) -> list[int]:
    source = SourceFactory(dataset=dataset)
    items = Item.objects.bulk_create(
        ItemFactory.build(dataset=dataset, source=source, priority=(n % 97) / 97.0)
        for n in range(N_ITEMS)
    )
    Score.objects.bulk_create(
        Score(item=item, scorer_version="1", detector_probability=(item.pk % 100) / 100.0)
        for item in items
    )
    with connection.cursor() as cursor:  # statistics, as autovacuum or the product's task gives
        for model in (Item, Score):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return sorted(item.pk for item in items)


def _page_queries(read) -> list[tuple[str, Any]]:
    with CaptureQueriesContext(connection) as queries:
        rows = read()
    assert len(rows) == LIMIT
    return [(q["sql"], None) for q in queries.captured_queries if "corpus_score" in q["sql"]]


def _most_rows_read(read) -> int:
    statements = _page_queries(read)
    assert statements
    return max(plan_rows_read(sql, params) for sql, params in statements)


def test_an_api_page_from_the_middle_reads_no_more_than_the_first(dataset, scored):
    middle = scored[N_ITEMS // 2]

    first = _most_rows_read(lambda: selectors.item_rows(dataset=dataset, limit=LIMIT))
    deep = _most_rows_read(
        lambda: selectors.item_rows(dataset=dataset, after_id=middle, limit=LIMIT)
    )

    assert deep <= first + LIMIT, (first, deep)


@pytest.mark.parametrize(
    "sort, cursor",
    [
        ("oldest", lambda ids: {"id": ids[N_ITEMS // 2]}),
        ("newest", lambda ids: {"id": ids[N_ITEMS // 2]}),
        ("priority", lambda ids: {"priority": 0.5, "id": ids[N_ITEMS // 2]}),
    ],
)
def test_a_review_list_page_from_the_middle_reads_no_more_than_the_first(
    dataset, scored, admin_user, sort, cursor
):
    def page(position):
        query = ListQuery(sort=sort, cursor=position, limit=LIMIT)
        return lambda: review_item_list(dataset=dataset, user=admin_user, query=query).items

    first = _most_rows_read(page(None))
    deep = _most_rows_read(page(cursor(scored)))

    assert deep <= first + LIMIT, (first, deep)
