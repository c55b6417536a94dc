"""Planner statistics kept fresh by the product (corpus/services/maintenance.py), and the ingest
lookups that do not depend on them (corpus.db.bulk.values_by_key)."""

import pytest
from django.conf import settings
from django.db import connection

from corpus.db.bulk import bulk_insert, values_by_key
from corpus.models import Item
from corpus.services.maintenance import tables_analyze_stale
from corpus.tasks import tables_analyze_stale_task
from tests.factories import DatasetFactory, SourceFactory
from tests.test_bulk_insert import row


def _analyze_count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def _flush_statistics() -> None:
    # This backend's table counters reach pg_stat_user_tables when it next goes idle, at most
    # once a second unless forced.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_table_past_the_threshold_is_analyzed_and_one_below_it_is_not(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's cumulative statistics")
    # Given two tables analyzed once, then 2,000 items inserted (past 1,000 + 10% of rows) and
    # two datasets created (below it)
    source = SourceFactory(dataset=dataset)
    bulk_insert(Item, [row(dataset, source, n) for n in range(300)])
    _flush_statistics()  # before ANALYZE resets the counters, or they land after it
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_item")
        cursor.execute("ANALYZE corpus_dataset")
    items_before, datasets_before = _analyze_count("corpus_item"), _analyze_count("corpus_dataset")
    bulk_insert(Item, [row(dataset, source, n) for n in range(300, 2300)])
    DatasetFactory(slug="below-one")
    DatasetFactory(slug="below-two")
    _flush_statistics()

    # When the statistics task runs
    analyzed = tables_analyze_stale(min_changes=1000, share=0.1)

    # Then only the item table was analyzed
    assert "corpus_item" in analyzed
    assert "corpus_dataset" not in analyzed
    assert _analyze_count("corpus_item") == items_before + 1
    assert _analyze_count("corpus_dataset") == datasets_before
    # and a second run finds nothing left to do there
    _flush_statistics()
    assert "corpus_item" not in tables_analyze_stale(min_changes=1000, share=0.1)
    assert _analyze_count("corpus_item") == items_before + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_threshold_grows_with_the_table(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's cumulative statistics")
    # Given an item table of 2,300 analyzed rows and 1,200 more
    source = SourceFactory(dataset=dataset)
    bulk_insert(Item, [row(dataset, source, n) for n in range(2300)])
    _flush_statistics()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_item")
    bulk_insert(Item, [row(dataset, source, n) for n in range(2300, 3500)])
    _flush_statistics()
    # Then 1,200 changes are past a threshold of 1,000 + 0% of the rows, not of 1,000 + 10%
    assert "corpus_item" not in tables_analyze_stale(min_changes=1000, share=0.1)
    assert "corpus_item" in tables_analyze_stale(min_changes=1000, share=0.0)


@pytest.mark.django_db
def test_the_task_does_nothing_on_sqlite_and_is_scheduled():
    if connection.vendor == "postgresql":
        assert isinstance(tables_analyze_stale_task(), list)
    else:
        assert tables_analyze_stale_task() == []
    entry = settings.CELERY_BEAT_SCHEDULE["analyze-stale-tables"]
    assert entry["task"] == "corpus.tasks.tables_analyze_stale_task"


@pytest.mark.django_db
def test_values_by_key_finds_exactly_the_keys_that_exist(dataset):
    # Given items of two sources, some without an external id
    first, second = SourceFactory(dataset=dataset), SourceFactory(dataset=dataset)
    ids = bulk_insert(
        Item,
        [row(dataset, first, n) for n in range(4)]
        + [row(dataset, second, n) for n in range(4, 6)]
        + [row(dataset, second, n, external_id=None) for n in range(6, 9)],
    )
    # When looked up by (source, external id), with a pair whose parts exist only apart
    got = values_by_key(
        Item,
        ["source_id", "external_id"],
        {(first.pk, "ext-1"), (second.pk, "ext-5"), (second.pk, "ext-1"), (first.pk, "no")},
        ["id", "generation"],
    )
    # Then only the pairs that exist come back, each with its row's fields
    assert sorted(got) == sorted([(first.pk, "ext-1", ids[1], 2), (second.pk, "ext-5", ids[5], 2)])
    # and a where condition applies to the probed row
    by_hash = values_by_key(
        Item,
        ["dataset_id", "content_hash"],
        [(dataset.pk, f"{n:064x}") for n in (1, 7, 8, 99)],
        ["id"],
        external_id__isnull=True,
    )
    assert sorted(by_hash) == [(dataset.pk, f"{7:064x}", ids[7]), (dataset.pk, f"{8:064x}", ids[8])]
    assert values_by_key(Item, ["source_id", "external_id"], [], ["id"]) == []
    with pytest.raises(ValueError, match="lookup"):
        values_by_key(Item, ["source_id", "external_id"], [(1, "x")], ["id"], id__in=[1])


@pytest.mark.postgres
@pytest.mark.django_db
def test_values_by_key_probes_the_unique_index_on_a_table_never_analyzed(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plans")
    # Given a table of 3,000 items with no statistics (its size only, from its pages)
    source = SourceFactory(dataset=dataset)
    bulk_insert(Item, [row(dataset, source, n) for n in range(3000)])
    keys = [(source.pk, f"ext-{n}") for n in range(0, 3000, 3)]
    # When the ingest lookup is planned
    captured: list[str] = []

    def explain(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "LATERAL" in sql:
            execute("EXPLAIN " + sql, params, many, context)
            captured.extend(line for (line,) in context["cursor"].fetchall())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        found = values_by_key(Item, ["source_id", "external_id"], keys, ["id"])
    # Then every key is one probe of the unique index on both columns
    plan = "\n".join(captured)
    assert "Nested Loop" in plan and "item_unique_source_external_id" in plan, plan
    assert "external_id" in plan.split("Index Cond:", 1)[1].splitlines()[0], plan
    assert len(found) == 1000
