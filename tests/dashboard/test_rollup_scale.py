"""The rollup's reads of reference items stay small however large the dataset.

Reference items are a few thousand among millions. The rollup's tail step used to ask for new
references on every batch of feed entries, and with no index to find them each ask read the
whole item table: 3.4 s a batch at 1M items, so its first run at 10M (600 batches of
approvals) did not end in 20 minutes (bench/RESULTS.md, "The dashboard at 10M")."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from corpus.models import FeedKind, Item
from corpus.services.feed import feed_append
from dashboard.models import DashboardState
from dashboard.services.rollup import tail_update
from tests.factories import ItemFactory, SourceFactory
from tests.plans import plan_rows_read


def _reference_reads(queries: CaptureQueriesContext) -> int:
    table = Item._meta.db_table
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        and f'FROM "{table}"' in q["sql"]
        and "is_reference" in q["sql"]
    )


def test_references_are_asked_for_until_a_batch_comes_back_short(dataset):
    source = SourceFactory(dataset=dataset)
    refs = [ItemFactory(dataset=dataset, source=source, is_reference=True) for _ in range(3)]
    approved = [ItemFactory(dataset=dataset, source=source, state="approved") for _ in range(7)]
    with transaction.atomic():
        feed_append(
            dataset_id=dataset.pk, item_ids=[i.pk for i in approved], kind=FeedKind.APPROVED
        )

    with CaptureQueriesContext(connection) as queries:
        counted = tail_update(dataset=dataset, batch=2)

    assert counted == len(refs) + len(approved)
    # Batches of 2: references 2, then 1 (short: no more asked), while 4 batches of approvals
    # run; asking on every batch would be 5 reads.
    assert _reference_reads(queries) == 2
    state = DashboardState.objects.get(dataset=dataset)
    assert state.reference_item_id == refs[-1].pk


@pytest.mark.postgres
def test_new_references_are_found_without_reading_the_other_items(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's")
    source = SourceFactory(dataset=dataset)
    Item.objects.bulk_create(
        ItemFactory.build(dataset=dataset, source=source, is_reference=n % 1000 == 0)
        for n in range(3_000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Item._meta.db_table)}")
    query = (
        Item.objects.filter(dataset=dataset, is_reference=True, id__gt=0)
        .order_by("id")
        .values_list("id", "text")[:5000]
    )
    sql, params = query.query.sql_with_params()

    assert plan_rows_read(sql, params) <= 10  # the 3 references, not the 3,000 items
