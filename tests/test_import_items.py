"""import_items: JSONL and Parquet through the API's validation, streamed, with a summary."""

import io
import json
import sys
import tracemalloc
from itertools import islice

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import DataError
from tqdm import tqdm

from corpus.management.commands import import_items
from corpus.models import AuditEvent, Item
from corpus.services.audit_verify import audit_verify


def run(*args, **options):  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("import_items", *[str(a) for a in args], stdout=out, **options)
    return out.getvalue()


def write_jsonl(path, rows):  # type: ignore[no-untyped-def]
    """Rows are dicts (dumped as JSON) or raw strings (written as they are)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def test_import_jsonl_creates_items_with_provenance(dataset, tmp_path):
    # given a JSONL file with two items, one the child of the other
    path = write_jsonl(
        tmp_path / "batch.jsonl",
        [
            {
                "text": "A paragraph about tides.",
                "external_id": "t1",
                "origin": "synthetic",
                "generator_model": "acme-chat",
                "generator_version": "1.2",
                "sampling_params": {"temperature": 0.7},
                "metadata": {"lang": "en"},
            },
            {"text": "A rewrite about tides.", "external_id": "t2", "parents": ["t1"]},
        ],
    )
    # when it is imported
    output = run(path, dataset="demo", source="pipeline-a")
    # then both are stored, pending, in the named source, with lineage and provenance
    assert "batch.jsonl -> demo: created 2, duplicate 0, invalid 0" in output
    first = Item.objects.get(external_id="t1")
    second = Item.objects.get(external_id="t2")
    assert first.source.name == "pipeline-a"
    assert (first.generator_model, first.generator_version) == ("acme-chat", "1.2")
    assert first.sampling_params == {"temperature": 0.7}
    assert first.state == Item.State.PENDING and not first.is_reference
    assert list(second.parents.all()) == [first]
    assert second.generation == first.generation + 1
    event = AuditEvent.objects.get(action="items.ingested")
    assert event.actor == "system:import_items"
    assert event.payload["created"] == sorted([first.pk, second.pk])


def test_import_reports_invalid_rows_by_line_and_stores_the_rest(dataset, tmp_path):
    # given a file mixing good rows with every kind of bad one (line 2 is blank)
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"text": "good one", "external_id": "g1"},
            "",
            {"text": "   ", "external_id": "e1"},
            "this is not json",
            "[1, 2]",
            {"text": "has an unknown field", "colour": "red"},
            {"text": "orphan", "external_id": "o1", "parents": ["missing"]},
            {"text": "child of orphan", "external_id": "o2", "parents": ["o1"]},
            {"text": "good two", "external_id": "g2", "parents": ["g1"]},
            {"text": "bad origin", "origin": "alien"},
        ],
    )
    # when it is imported
    output = run(path, dataset="demo")
    # then each invalid row is named by its line with its message, in file order
    lines = output.splitlines()
    assert lines[:7] == [
        "line 3: text: text is empty",
        lines[1],
        "line 5: expected a JSON object, got list",
        "line 6: colour: unknown field",
        "line 7: parents.0: no item with external_id 'missing' in this source",
        "line 8: parents.0: no item with external_id 'o1' in this source",
        lines[6],
    ]
    assert lines[1].startswith("line 4: not valid JSON: ")
    assert lines[6].startswith("line 10: origin: ")
    assert "mixed.jsonl -> demo: created 2, duplicate 0, invalid 7" in output
    assert "invalid lines: 3, 4, 5, 6, 7, 8, 10" in output
    # and only the valid rows are stored
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["g1", "g2"]


def test_import_twice_stores_nothing_new(dataset, tmp_path):
    # given a file imported once
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [{"text": "with id", "external_id": "x1"}, {"text": "without an external id"}],
    )
    run(path, dataset="demo")
    # when it is imported again
    output = run(path, dataset="demo")
    # then every row is a duplicate
    assert "created 0, duplicate 2, invalid 0" in output
    assert Item.objects.count() == 2


def test_import_strict_exits_non_zero_after_storing_valid_rows(dataset, tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"text": "fine"}, {"text": ""}])
    with pytest.raises(CommandError, match=r"1 invalid row\(s\) \(--strict\)"):
        run(path, dataset="demo", strict=True)
    assert Item.objects.count() == 1


def test_import_without_strict_succeeds_despite_invalid_rows(dataset, tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"text": "fine"}, {"text": ""}])
    output = run(path, dataset="demo")
    assert "created 1, duplicate 0, invalid 1" in output


def test_import_reference_loads_approved_human_items_audited_as_reference(dataset, tmp_path):
    # given human paragraphs without a declared origin
    path = write_jsonl(
        tmp_path / "ref.jsonl", [{"text": "Human paragraph one."}, {"text": "Human two."}]
    )
    # when loaded as reference
    output = run(path, dataset="demo", reference=True)
    # then they are approved human reference items of the 'reference' source
    assert "created 2" in output
    items = list(Item.objects.all())
    assert {(i.origin, i.state, i.is_reference, i.generation) for i in items} == {
        ("human", "approved", True, 0)
    }
    assert {i.source.name for i in items} == {"reference"}
    # and the audit log says so, with an intact chain
    assert AuditEvent.objects.filter(action="items.reference_loaded").count() == 1
    assert audit_verify() == (AuditEvent.objects.count(), None)


def test_import_reference_refuses_rows_declaring_another_origin(dataset, tmp_path):
    path = write_jsonl(
        tmp_path / "ref.jsonl",
        [{"text": "Human.", "origin": "human"}, {"text": "Generated.", "origin": "synthetic"}],
    )
    output = run(path, dataset="demo", reference=True)
    assert "line 2: origin: 'synthetic' contradicts --reference" in output
    assert Item.objects.get().origin == "human"


def test_import_reference_with_another_origin_option_is_refused(dataset, tmp_path):
    path = write_jsonl(tmp_path / "ref.jsonl", [{"text": "x"}])
    with pytest.raises(CommandError, match="--reference loads human items"):
        run(path, dataset="demo", reference=True, origin="synthetic")


def test_import_origin_fills_rows_without_one(dataset, tmp_path):
    path = write_jsonl(
        tmp_path / "o.jsonl",
        [{"text": "no origin"}, {"text": "says unknown", "origin": "unknown"}],
    )
    output = run(path, dataset="demo", origin="synthetic")
    assert "line 2: origin: 'unknown' contradicts --origin synthetic" in output
    assert Item.objects.get().origin == "synthetic"


def test_import_batches_never_exceed_the_request_limit(dataset, tmp_path, settings):
    # given a limit of 3 items per request and 7 rows
    settings.SYNTHGATE_MAX_ITEMS_PER_REQUEST = 3
    path = write_jsonl(tmp_path / "b.jsonl", [{"text": f"row {n}"} for n in range(7)])
    # when imported
    run(path, dataset="demo")
    # then it took three transactions (3 + 3 + 1), one audit event each
    events = AuditEvent.objects.filter(action="items.ingested").order_by("seq")
    assert [len(e.payload["created"]) for e in events] == [3, 3, 1]


def test_import_batch_size_above_the_limit_is_refused(dataset, tmp_path, settings):
    settings.SYNTHGATE_MAX_ITEMS_PER_REQUEST = 3
    path = write_jsonl(tmp_path / "b.jsonl", [{"text": "x"}])
    with pytest.raises(CommandError, match="--batch-size must be from 1 to 3"):
        run(path, dataset="demo", batch_size=4)


def test_import_parents_may_point_at_rows_of_an_earlier_batch(dataset, tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"text": "root", "external_id": "r"},
            {"text": "child", "external_id": "c", "parents": ["r"]},
            {"text": "grandchild", "external_id": "g", "parents": ["c"]},
        ],
    )
    output = run(path, dataset="demo", batch_size=1)
    assert "created 3, duplicate 0, invalid 0" in output
    assert Item.objects.get(external_id="g").generation == 3


def test_import_isolates_rows_the_database_refuses(dataset, tmp_path, monkeypatch):
    # given a database that refuses any batch holding the text "poison"
    real_ingest = import_items.items_ingest

    def refusing_ingest(**kwargs):  # type: ignore[no-untyped-def]
        if any(item.text == "poison" for item in kwargs["items"]):
            raise DataError("value refused")
        return real_ingest(**kwargs)

    monkeypatch.setattr(import_items, "items_ingest", refusing_ingest)
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": f"fine {n}"} for n in range(5)] + [{"text": "poison"}]
    )
    # when imported
    output = run(path, dataset="demo")
    # then the refused row is reported, the others stored
    assert "line 6: refused by the database: value refused" in output
    assert "created 5, duplicate 0, invalid 1" in output
    assert Item.objects.count() == 5


def test_import_enqueues_scoring_after_commit(
    dataset, tmp_path, django_capture_on_commit_callbacks
):
    path = write_jsonl(tmp_path / "q.jsonl", [{"text": "to be scored"}])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run(path, dataset="demo")
    assert len(callbacks) == 1


def test_import_parquet_with_json_and_struct_columns(dataset, tmp_path):
    # given a Parquet file: metadata as JSON strings, sampling params as a struct, nulls
    table = pa.table(
        {
            "text": ["parquet one", "parquet two", ""],
            "external_id": ["p1", "p2", "p3"],
            "origin": ["synthetic", None, "synthetic"],
            "metadata": ['{"lang": "en"}', None, "{}"],
            "sampling_params": [{"temperature": 0.5}, {"temperature": 1.0}, None],
            "parents": [[], ["p1"], None],
            "generation": [None, 7, None],
        }
    )
    path = tmp_path / "items.parquet"
    pq.write_table(table, path, row_group_size=2)
    # when imported
    output = run(path, dataset="demo")
    # then rows are validated like JSON rows and numbered from 1
    assert "row 3: text: text is empty" in output
    assert "items.parquet -> demo: created 2, duplicate 0, invalid 1" in output
    one, two = Item.objects.get(external_id="p1"), Item.objects.get(external_id="p2")
    assert one.metadata == {"lang": "en"} and one.sampling_params == {"temperature": 0.5}
    assert two.origin == "unknown" and two.generation == 7
    assert list(two.parents.all()) == [one]


def test_import_format_option_overrides_the_extension(dataset, tmp_path):
    path = write_jsonl(tmp_path / "rows.txt", [{"text": "x"}])
    assert "created 1" in run(path, dataset="demo", format="jsonl")


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("absent.jsonl", None, {"dataset": "demo"}, "no such file: "),
        ("a.jsonl", b"{}\n", {"dataset": "nope"}, "no dataset 'nope'"),
        ("a.csv", b"text\n", {"dataset": "demo"}, "cannot tell the format of a.csv"),
        ("a.parquet", b"not parquet", {"dataset": "demo"}, "not a readable Parquet file"),
    ],
)
def test_import_bad_invocations_fail_with_one_line(
    dataset, tmp_path, name, content, options, message
):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CommandError, match=message) as excinfo:
        run(path, **options)
    assert "\n" not in str(excinfo.value)
    assert Item.objects.count() == 0


def test_import_shows_progress_only_on_a_terminal(dataset, tmp_path, capsys, monkeypatch):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "x"}, {"text": "y"}])
    run(path, dataset="demo")
    assert "importing t.jsonl" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run(path, dataset="demo")
    assert "importing t.jsonl" in capsys.readouterr().err


def _peak_reading(rows_iter, batch: int) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        while list(islice(rows_iter, batch)):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_streams_in_constant_memory(tmp_path):
    # given 20 MB of JSONL and the same rows as Parquet
    text = "word " * 200
    jsonl = write_jsonl(tmp_path / "big.jsonl", [{"text": f"{n} {text}"} for n in range(20_000)])
    pq.write_table(
        pa.table({"text": [f"{n} {text}" for n in range(20_000)]}),
        tmp_path / "big.parquet",
        row_group_size=1000,
    )
    assert jsonl.stat().st_size > 20_000_000
    # when read in batches of 1000, as the command does
    progress = tqdm(disable=True)
    peak_jsonl = _peak_reading(import_items._jsonl_rows(jsonl, progress), 1000)
    parquet = pq.ParquetFile(tmp_path / "big.parquet")
    peak_parquet = _peak_reading(import_items._parquet_rows(parquet, 1000, progress), 1000)
    # then memory is bounded by a batch (about 1 MB of text), not by the file
    assert peak_jsonl < 6_000_000, peak_jsonl
    assert peak_parquet < 6_000_000, peak_parquet
