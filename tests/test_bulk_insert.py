"""corpus.bulk.bulk_insert: COPY on PostgreSQL, bulk_create elsewhere; the same rows either way."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from corpus.bulk import bulk_insert
from corpus.models import Item, ItemParent
from tests.factories import SourceFactory

pytestmark = pytest.mark.django_db

COMPARED = [
    "dataset_id", "source_id", "text", "content_hash", "origin", "generator_model",
    "generator_version", "prompt", "sampling_params", "generation", "metadata", "is_reference",
    "state", "state_reason", "priority", "decided_at", "decided_by", "created_at", "updated_at",
]  # fmt: skip


def row(dataset, source, n: int, **extra):  # type: ignore[no-untyped-def]
    now = timezone.now()
    return {
        "dataset_id": dataset.pk,
        "source_id": source.pk,
        "text": f"Text number {n}, with a tab\tand ünïcode.",
        "content_hash": f"{n:064x}",
        "external_id": f"ext-{n}",
        "origin": Item.Origin.SYNTHETIC,
        "generator_model": "acme-chat",
        "generator_version": "1.2",
        "prompt": "",
        "sampling_params": {"temperature": 0.7, "stop": ["\n\n"], "nested": {"a": [1, None]}},
        "generation": 2,
        "metadata": {"lang": "en", "quote": 'say "hi"\\'},
        "is_reference": False,
        "state": Item.State.PENDING,
        "created_at": now,
        "updated_at": now,
        **extra,
    }


def test_bulk_insert_stores_what_the_orm_would(dataset):
    # given the same item written by the ORM and by bulk_insert
    source = SourceFactory(dataset=dataset)
    by_orm = Item.objects.create(**{**row(dataset, source, 1), "external_id": "orm"})
    [pk] = bulk_insert(Item, [{**row(dataset, source, 1), "created_at": by_orm.created_at,
                               "updated_at": by_orm.updated_at}])  # fmt: skip
    # then every stored value is the same, defaults included
    stored = Item.objects.filter(pk__in=[by_orm.pk, pk]).values(*COMPARED, "external_id", "pk")
    orm_row, copy_row = sorted(stored, key=lambda r: r["pk"] != by_orm.pk)
    assert copy_row["external_id"] == "ext-1"
    assert {k: orm_row[k] for k in COMPARED} == {k: copy_row[k] for k in COMPARED}
    assert copy_row["state"] == "pending" and copy_row["decided_by"] == []


def test_bulk_insert_returns_new_increasing_ids_in_row_order(dataset):
    source = SourceFactory(dataset=dataset)
    before = Item.objects.create(**row(dataset, source, 0))
    ids = bulk_insert(Item, [row(dataset, source, n) for n in range(1, 6)])
    assert ids == sorted(ids) and ids[0] > before.pk
    texts = dict(Item.objects.filter(pk__in=ids).values_list("pk", "external_id"))
    assert [texts[i] for i in ids] == [f"ext-{n}" for n in range(1, 6)]


def test_bulk_insert_of_links(dataset):
    source = SourceFactory(dataset=dataset)
    parent, child = bulk_insert(Item, [row(dataset, source, 1), row(dataset, source, 2)])
    [link] = bulk_insert(ItemParent, [{"child_id": child, "parent_id": parent}])
    assert ItemParent.objects.get(pk=link).parent_id == parent
    assert list(Item.objects.get(pk=child).parents.values_list("pk", flat=True)) == [parent]


def test_bulk_insert_raises_djangos_integrity_error_and_stores_nothing(dataset):
    # given two rows with the same (source, external_id)
    source = SourceFactory(dataset=dataset)
    rows = [row(dataset, source, 1), row(dataset, source, 1)]
    # when inserted in one transaction, then Django's IntegrityError (which ingest retries on)
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(Item, rows)
    assert Item.objects.count() == 0


def test_bulk_insert_refuses_unknown_fields(dataset):
    source = SourceFactory(dataset=dataset)
    with pytest.raises(ValueError, match=r"Item has no field\(s\) \['colour'\]"):
        bulk_insert(Item, [row(dataset, source, 1, colour="red")])


def test_bulk_insert_of_nothing_is_a_no_op(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert bulk_insert(Item, []) == []


@pytest.mark.postgres
def test_bulk_insert_uses_copy_on_postgresql(dataset, django_assert_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    source = SourceFactory(dataset=dataset)
    rows = [row(dataset, source, n) for n in range(1000)]
    # one query reserves the ids; COPY is not a query Django counts
    with django_assert_num_queries(1):
        ids = bulk_insert(Item, rows)
    assert len(set(ids)) == 1000 and Item.objects.count() == 1000
