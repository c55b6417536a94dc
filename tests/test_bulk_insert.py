"""corpus.db.bulk: bulk_insert (COPY on PostgreSQL, bulk_create elsewhere) and values_in
(= ANY(array) on PostgreSQL, the ORM elsewhere); the same rows either way."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from corpus.db.bulk import bulk_insert, values_in
from corpus.models import Item, ItemParent
from tests.factories import SourceFactory

pytestmark = pytest.mark.django_db

COMPARED = [
    "dataset_id", "source_id", "text", "content_hash", "origin", "generator_model",
    "generator_version", "prompt", "sampling_params", "generation", "metadata", "is_reference",
    "state", "state_reason", "priority", "decided_at", "decided_by", "created_at", "updated_at",
]  # fmt: skip


def row(dataset, source, n: int, **extra):
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


# values_in: the lookups of a bulk write -------------------------------------------------------


@pytest.mark.postgres
def test_values_in_returns_what_the_orm_returns(dataset):
    # Given items of two sources, some without an external id
    first, second = SourceFactory(dataset=dataset), SourceFactory(dataset=dataset)
    rows = [row(dataset, first, n) for n in range(6)] + [
        row(dataset, second, n, external_id=None) for n in range(6, 10)
    ]
    ids = bulk_insert(Item, rows)
    cases = [
        ({"source_id__in": {first.pk, second.pk}, "external_id__in": {"ext-1", "ext-4", "no"}},),
        ({"dataset_id": dataset.pk, "content_hash__in": [f"{n:064x}" for n in (2, 7, 9, 99)]},),
        ({"dataset_id": dataset.pk, "id__in": ids[3:8], "external_id__isnull": True},),
        ({"source_id": first.pk, "external_id__isnull": False},),
    ]
    for (where,) in cases:
        # When looked up with values_in and with the ORM
        got = values_in(Item, ["id", "source_id", "external_id", "content_hash"], **where)
        expected = Item.objects.filter(**where).values_list(
            "id", "source_id", "external_id", "content_hash"
        )
        # Then both find the same rows
        assert sorted(got) == sorted(expected), where
        assert got


def test_values_in_with_an_empty_collection_matches_nothing_without_a_query(
    dataset, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert values_in(Item, ["id"], dataset_id=dataset.pk, id__in=[]) == []


def test_values_in_refuses_other_lookups(dataset):
    with pytest.raises(ValueError, match="lookup"):
        values_in(Item, ["id"], id__gt=3)


@pytest.mark.postgres
def test_values_in_sends_one_array_per_column_on_postgresql(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("= ANY(array) is PostgreSQL's")
    source = SourceFactory(dataset=dataset)
    bulk_insert(Item, [row(dataset, source, n) for n in range(3)])
    keys = [f"ext-{n}" for n in range(1000)]
    with CaptureQueriesContext(connection) as queries:
        found = values_in(Item, ["external_id"], source_id__in=[source.pk], external_id__in=keys)
    assert sorted(found) == [("ext-0",), ("ext-1",), ("ext-2",)]
    assert "= ANY(" in queries[0]["sql"]


@pytest.mark.postgres
def test_item_foreign_keys_have_no_single_column_indexes_but_are_covered(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's catalog")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'corpus_item' ORDER BY indexname"
        )
        definitions = [definition for (definition,) in cursor.fetchall()]
    leading = [d.split("(", 1)[1].split(")")[0].split(",")[0].strip() for d in definitions]
    single = [d.split("(", 1)[1].split(")")[0].strip() for d in definitions]
    assert "dataset_id" not in single and "source_id" not in single
    # Lookups by source alone (a PROTECT check, the foreign key's) use a full (not partial) index.
    covering = [d for d, first in zip(definitions, leading, strict=True) if first == "source_id"]
    assert covering and not any(" WHERE " in d for d in covering)
    assert "dataset_id" in leading


def test_source_external_id_constraint_still_allows_many_items_without_external_id(dataset):
    source = SourceFactory(dataset=dataset)
    ids = bulk_insert(Item, [row(dataset, source, n, external_id=None) for n in range(3)])
    assert len(ids) == 3
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(Item, [row(dataset, source, 7), row(dataset, source, 8, external_id="ext-7")])


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
def test_bulk_insert_stores_choices_naive_datetimes_and_json_as_the_orm_would(dataset):
    # COPY's binary format takes each value by its column type: a choices member is stored as
    # its value, a naive datetime in the default time zone, JSON scalars and nesting as given.
    source = SourceFactory(dataset=dataset)
    naive = timezone.now().replace(tzinfo=None, microsecond=0)
    values = row(
        dataset,
        source,
        1,
        state=Item.State.QUEUED,
        origin=Item.Origin.HUMAN,
        created_at=naive,
        metadata={"s": "tab\tnl\n\\ \u00e9", "n": 2**40, "f": 0.5, "b": False, "z": None},
        messages=None,
    )
    aware = row(dataset, source, 2, state="approved", messages=None)  # plain, aware
    pk, other = bulk_insert(Item, [values, aware])
    item = Item.objects.get(pk=pk)
    assert item.state == "queued" and item.origin == "human"
    assert item.created_at == timezone.make_aware(naive)
    assert Item.objects.get(pk=other).created_at == aware["created_at"]
    assert item.metadata == values["metadata"]
    assert item.messages is None


@pytest.mark.postgres
def test_bulk_insert_uses_binary_copy_for_items_and_text_for_other_columns(dataset):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    from corpus.db.bulk import _column_type
    from corpus.models import Score

    assert all(_column_type(f, connection) for f in Item._meta.concrete_fields)
    # A bytea column (the MinHash signature) keeps the whole table on the text format.
    assert _column_type(Score._meta.get_field("minhash"), connection) is None
