"""The ``Score`` write: the COPY path (PostgreSQL) stores exactly what the upsert path stores."""

import datetime

import pytest
from django.db import connection

from corpus.models import Score
from corpus.services import scoring
from tests.pipeline.test_scoring_golden import _ingest
from tests.pipeline.test_scoring_pipeline import _varied

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=datetime.UTC)


def _rows(ids: list[int]) -> list[dict]:
    """One full evidence row and one failed attempt's row per pair of ids, with awkward values."""
    rows = []
    for n, item_id in enumerate(ids):
        if n % 2:
            rows.append(
                {
                    **scoring._ERROR_SCORE,
                    "item_id": item_id,
                    "attempts": 3,
                    "error": "ValueError: ünïcode \\ tab\t newline\n quote' \"",
                    "computed_at": NOW,
                }
            )
            continue
        rows.append(
            {
                "item_id": item_id,
                "scorer_version": "1",
                "exact_duplicate_of_id": ids[-1],
                "near_duplicate_of_id": None,
                "near_duplicate_jaccard": 0.8123456789012345,
                "minhash": bytes(range(256)) * 2,
                "lexical": {"distinct_1": 0.1 + 0.2, "n_words": 150, "compression_ratio": 1e-7},
                "degenerate": True,
                "degenerate_reason": "compression_ratio 23.02 >= 5.0 — ünïcode",
                "detector_name": "learned",
                "detector_version": "learned-f1-2ceb15edded5",
                "detector_probability": 0.5423816531540966,
                "detectors": {"learned": {"version": "v", "probability": 0.5423816531540966}},
                "priority": 0.757618,
                "attempts": 1,
                "error": "",
                "computed_at": NOW,
            }
        )
    return rows


def _stored(ids: list[int]) -> list[dict]:
    out = []
    for row in Score.objects.filter(item_id__in=ids).order_by("item_id").values():
        row.pop("item_id")
        row["exact_duplicate_of_id"] = row["exact_duplicate_of_id"] is not None
        row["minhash"] = bytes(row["minhash"]) if row["minhash"] is not None else None
        out.append(row)
    return out


def test_copied_scores_equal_upserted_scores(dataset):
    # given two sets of items and the same evidence rows for each
    a = _ingest(dataset, [{"text": _varied(3000 + n)} for n in range(4)])
    b = _ingest(dataset, [{"text": _varied(3100 + n)} for n in range(4)])
    # when one set is written as new rows (COPY on PostgreSQL) and the other through the upsert
    scoring._scores_upsert(_rows(a), existing=())
    scoring._scores_upsert(_rows(b), existing=set(b))
    # then the stored rows are identical
    assert _stored(a) == _stored(b)
    assert len(_stored(a)) == 4


def test_rescoring_replaces_every_field(dataset):
    ids = _ingest(dataset, [{"text": _varied(3200 + n)} for n in range(2)])
    scoring._scores_upsert(_rows(ids), existing=())
    # a later attempt of the first item fails: its evidence goes back to the defaults
    failed = {**_rows(ids[1:2] + ids[:1])[1], "attempts": 2}
    scoring._scores_upsert([failed], existing={ids[0]})
    score = Score.objects.get(item_id=ids[0])
    assert (score.minhash, score.lexical, score.degenerate, score.attempts) == (None, {}, False, 2)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_rows_that_appeared_meanwhile_are_upserted_not_lost(dataset):
    # given scores stored by another scorer that the caller does not know about (lost lock)
    ids = _ingest(dataset, [{"text": _varied(3300 + n)} for n in range(3)])
    scoring._scores_upsert(_rows(ids[:1]), existing=())
    newer = [{**row, "priority": 0.25} for row in _rows(ids)]
    # when the caller writes them as new rows
    scoring._scores_upsert(newer, existing=())
    # then the COPY's conflict falls back to the upsert, and the transaction goes on
    assert (
        list(Score.objects.filter(item_id__in=ids).values_list("priority", flat=True)) == [0.25] * 3
    )
    assert Score.objects.filter(item_id__in=ids).count() == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL array literals")
def test_array_literals_round_trip_any_text_and_number():
    texts = ["", "plain", 'quo"te', "back\\slash", "{brace}, comma", "NULL", "null", " sp ", "ü—✓"]
    numbers = [0.1 + 0.2, 1e-300, -0.0, 0.757618, 5e-324]
    ids = [1, 2**62, -3]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text[], %s::float8[], %s::bigint[], %s::text[]",
            [
                scoring._pg_array(texts),
                scoring._pg_array(numbers),
                scoring._pg_array(ids),
                scoring._pg_array(["a", None]),
            ],
        )
        assert cursor.fetchone() == (texts, numbers, ids, ["a", None])
    with pytest.raises(TypeError):
        scoring._pg_array([True])
