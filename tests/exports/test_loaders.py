"""Export files load where training pipelines read data: pyarrow, pandas, Hugging Face."""

import json

import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from corpus.models import Score
from tests.exports.conftest import approved_items, build


@pytest.fixture
def exports(dataset, export_dirs):
    # Items whose metadata keys and value types differ from row to row, scored and unscored:
    # the shapes that make naive JSON files unloadable.
    items = approved_items(dataset, 3, metadata={"lang": "en", "n": 1})
    items += approved_items(dataset, 2, source="web", origin="human", metadata={"n": "one"})
    Score.objects.create(item=items[0], scorer_version="1", lexical={"distinct_1": 0.5})
    jsonl = build(dataset)
    parquet = build(dataset, format="parquet")
    root = export_dirs / "exports"
    return {
        "jsonl": root / jsonl.file,
        "parquet": root / parquet.file,
        "ids": [i.pk for i in items],
    }


def test_pyarrow_reads_both_formats(exports):
    from_json = pa_json.read_json(exports["jsonl"])
    from_parquet = pq.read_table(exports["parquet"])
    assert from_json.column("id").to_pylist() == exports["ids"]
    assert from_parquet.column("id").to_pylist() == exports["ids"]
    assert from_parquet.column("text").to_pylist() == from_json.column("text").to_pylist()
    assert json.loads(from_parquet.column("metadata")[3].as_py()) == {"n": "one"}


def test_pandas_reads_both_formats(exports):
    import pandas as pd

    frame_json = pd.read_json(exports["jsonl"], lines=True)
    frame_parquet = pd.read_parquet(exports["parquet"])
    assert list(frame_json["id"]) == exports["ids"] == list(frame_parquet["id"])
    assert list(frame_parquet["origin"]) == ["synthetic"] * 3 + ["human"] * 2


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_hugging_face_datasets_loads_the_file_offline(exports, fmt, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    path = exports["jsonl" if fmt == "json" else "parquet"]
    loaded = load_dataset(fmt, data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))
    assert loaded["id"] == exports["ids"]
    assert loaded[0]["decision"]["reviewer_ids"] == [7]
    assert loaded[0]["scores"]["scorer_version"] == "1"
    assert loaded[1]["scores"] is None or loaded[1]["scores"]["scorer_version"] is None


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of Peru?", "name": "ana"},
    {"role": "assistant", "content": "Lima."},
]


@pytest.fixture
def mixed_kinds(dataset, export_dirs):
    from corpus.scoring.kinds import transcript_text

    text = approved_items(dataset, 1)
    chat = approved_items(
        dataset, 1, kind="chat", messages=MESSAGES, text=transcript_text(MESSAGES)
    )
    code = approved_items(dataset, 1, kind="code", text="SELECT 1;\n", language="sql")
    exports = {fmt: build(dataset, format=fmt) for fmt in ("jsonl", "parquet")}
    return {
        "files": {f: export_dirs / "exports" / e.file for f, e in exports.items()},
        "manifest": exports["jsonl"].manifest,
        "ids": [text[0].pk, chat[0].pk, code[0].pk],
    }


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_mixed_kind_export_loads_with_the_messages_intact(
    mixed_kinds, fmt, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    path = mixed_kinds["files"]["jsonl" if fmt == "json" else "parquet"]
    loaded = load_dataset(fmt, data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))
    rows = {row["id"]: row for row in loaded}
    text_id, chat_id, code_id = mixed_kinds["ids"]
    assert [rows[i]["kind"] for i in mixed_kinds["ids"]] == ["text", "chat", "code"]
    assert rows[chat_id]["messages"] == [
        {"role": "system", "content": "Be brief.", "name": None},
        {"role": "user", "content": "Capital of Peru?", "name": "ana"},
        {"role": "assistant", "content": "Lima.", "name": None},
    ]
    assert rows[text_id]["messages"] is None
    assert rows[code_id]["language"] == "sql" and rows[code_id]["text"] == "SELECT 1;\n"


def test_the_manifest_counts_each_kind(mixed_kinds):
    assert mixed_kinds["manifest"]["counts"]["kind"] == {"chat": 1, "code": 1, "text": 1}
