"""The item table after migration 0012: one composite foreign key on PostgreSQL (an item's
source must exist and belong to the item's dataset), byte-order collation on the hash and id
columns, a hash index on content_hash, a partial index for the pending sweep, and the hot
lookups still on their indexes; SQLite keeps its two single-column foreign keys."""

import pytest
from django.db import IntegrityError, connection, transaction

from corpus.db.bulk import bulk_insert, values_in
from corpus.models import Item
from tests.factories import DatasetFactory, SourceFactory
from tests.test_bulk_insert import row

pytestmark = pytest.mark.django_db


def _insert_and_check(rows):
    # The foreign keys are deferred: check them now, as the commit would.
    with transaction.atomic():
        bulk_insert(Item, rows)
        connection.check_constraints(table_names=["corpus_item"])


def test_an_item_of_a_missing_source_is_refused(dataset):
    source = SourceFactory(dataset=dataset)
    with pytest.raises(IntegrityError):
        _insert_and_check([{**row(dataset, source, 1), "source_id": source.pk + 1000}])
    assert not Item.objects.exists()


def test_an_item_of_a_missing_dataset_is_refused(dataset):
    source = SourceFactory(dataset=dataset)
    with pytest.raises(IntegrityError):
        _insert_and_check([{**row(dataset, source, 1), "dataset_id": dataset.pk + 1000}])
    assert not Item.objects.exists()


def test_an_item_with_its_sources_dataset_is_stored(dataset):
    source = SourceFactory(dataset=dataset)
    _insert_and_check([row(dataset, source, 1)])
    assert Item.objects.get().source.dataset == dataset


@pytest.mark.postgres
def test_an_item_in_another_dataset_than_its_source_is_refused_on_postgresql(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("the composite foreign key is PostgreSQL's")
    elsewhere = SourceFactory(dataset=DatasetFactory(slug="elsewhere"))
    with pytest.raises(IntegrityError):
        _insert_and_check([row(dataset, elsewhere, 1)])


@pytest.mark.postgres
def test_one_foreign_key_per_item_row_on_postgresql(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's catalog")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'corpus_item'::regclass AND contype = 'f'"
        )
        keys = dict(cursor.fetchall())
        cursor.execute(
            "SELECT attname, collname FROM pg_attribute "
            "JOIN pg_collation c ON c.oid = attcollation WHERE attrelid = 'corpus_item'::regclass "
            "AND attname IN ('content_hash', 'external_id')"
        )
        collations = dict(cursor.fetchall())
    assert list(keys.values()) == [
        "FOREIGN KEY (source_id, dataset_id) REFERENCES corpus_source(id, dataset_id) "
        "DEFERRABLE INITIALLY DEFERRED"
    ]
    assert collations == {"content_hash": "C", "external_id": "C"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'item_dataset_hash'")
        assert cursor.fetchone()[0].endswith("USING hash (content_hash)")


@pytest.mark.postgres
def test_lookups_by_hash_and_external_id_still_use_their_indexes(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plans")
    source = SourceFactory(dataset=dataset)
    bulk_insert(Item, [row(dataset, source, n) for n in range(50)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_item")
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = []
        for sql, params in [
            (
                "SELECT id FROM corpus_item WHERE source_id = %s AND external_id = ANY(%s)",
                [source.pk, ["ext-1", "ext-2"]],
            ),
            (
                "SELECT id FROM corpus_item WHERE dataset_id = %s AND content_hash = %s",
                [dataset.pk, f"{1:064x}"],
            ),
            (  # scoring's exact-duplicate lookup
                "SELECT content_hash, MIN(id) FROM corpus_item WHERE dataset_id = %s "
                "AND content_hash = ANY(%s::text[]) GROUP BY content_hash",
                [dataset.pk, [f"{1:064x}", f"{2:064x}"]],
            ),
            (  # ingest's lookup of items without an external id
                "SELECT content_hash, id FROM corpus_item WHERE dataset_id = %s "
                "AND content_hash = ANY(%s) AND external_id IS NULL",
                [dataset.pk, [f"{1:064x}", f"{2:064x}"]],
            ),
        ]:
            cursor.execute("EXPLAIN " + sql, params)
            plans.append(" ".join(line for (line,) in cursor.fetchall()))
    assert "item_unique_source_external_id" in plans[0]
    assert "item_dataset_hash" in plans[1]
    assert "item_dataset_hash" in plans[2]
    assert "item_unique_dataset_hash_without_external_id" in plans[3]
    # The collation does not change what the lookups find.
    assert values_in(Item, ["external_id"], source_id=source.pk, external_id__in={"ext-7"}) == [
        ("ext-7",)
    ]


@pytest.mark.postgres
def test_the_pending_sweep_uses_the_partial_index(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plans")
    source = SourceFactory(dataset=dataset)
    bulk_insert(Item, [row(dataset, source, n) for n in range(50)])
    query = Item.objects.filter(state=Item.State.PENDING, created_at__lt="2100-01-01T00:00Z")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_item")
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert "item_pending_created" in query.order_by("id").values_list("id").explain()
