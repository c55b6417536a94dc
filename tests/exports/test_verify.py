"""verify_export: recompute the hashes, compare with the manifest and the audit log."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from corpus.models import Export
from tests.exports.conftest import approved_items, build


def _path(export: Export, export_dirs: Path) -> Path:
    return export_dirs / "exports" / export.file


def _verify(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_export", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def jsonl(dataset):
    approved_items(dataset, 6)
    return build(dataset)


def test_an_untouched_export_verifies_by_id_and_by_path(jsonl, export_dirs):
    assert "OK, 6 rows" in _verify(str(jsonl.pk))
    assert "OK, 6 rows" in _verify(str(_path(jsonl, export_dirs)))


def test_a_parquet_export_verifies(dataset, export_dirs):
    approved_items(dataset, 4)
    export = build(dataset, format="parquet")
    assert "OK, 4 rows" in _verify(str(export.pk))


def test_a_flipped_byte_in_a_text_names_the_row(jsonl, export_dirs):
    path = _path(jsonl, export_dirs)
    data = bytearray(path.read_bytes())
    lines = data.split(b"\n")
    offset = len(lines[0]) + 1 + lines[1].index(b"answer")  # inside row 2's text
    data[offset] ^= 0x02  # "answer" -> "cnswer": still valid JSON, another text
    path.write_bytes(bytes(data))

    with pytest.raises(CommandError, match=r"row 2 \(item \d+\): its content_hash does not match"):
        _verify(str(jsonl.pk))


def test_a_flipped_byte_outside_the_texts_is_caught_by_the_file_hash(jsonl, export_dirs):
    path = _path(jsonl, export_dirs)
    data = bytearray(path.read_bytes())
    offset = data.index(b"pipeline")  # the first row's source (no text mentions it)
    data[offset] ^= 0x01  # "pipeline" -> "qipeline": rows still parse, hashes still match
    path.write_bytes(bytes(data))

    with pytest.raises(CommandError, match="the file's sha256 .* differs from the manifest"):
        _verify(str(jsonl.pk))


def test_a_truncated_file(jsonl, export_dirs):
    path = _path(jsonl, export_dirs)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(CommandError, match="row 6: the row is cut off"):
        _verify(str(jsonl.pk))

    # cut exactly at a row boundary: every row is whole, one is missing
    path.write_bytes(b"".join(data.splitlines(keepends=True)[:5]))
    with pytest.raises(CommandError, match="the file has 5 rows, the manifest says 6"):
        _verify(str(jsonl.pk))


def test_swapped_rows(jsonl, export_dirs):
    path = _path(jsonl, export_dirs)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    with pytest.raises(CommandError, match=r"row 4 \(item \d+\): out of order"):
        _verify(str(jsonl.pk))


def test_a_flipped_byte_in_parquet(dataset, export_dirs):
    approved_items(dataset, 4)
    export = build(dataset, format="parquet")
    path = _path(export, export_dirs)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match=f"export {export.pk}: "):
        _verify(str(export.pk))


def test_a_manifest_that_disagrees_with_the_audit_log(jsonl, export_dirs, tmp_path):
    # Someone rewrote the file and its manifest consistently: the audit log still disagrees.
    manifest = dict(jsonl.manifest)
    manifest["file"] = {**manifest["file"], "sha256": "0" * 64}
    forged = tmp_path / "manifest.json"
    forged.write_text(json.dumps({"manifest": manifest}))
    with pytest.raises(CommandError, match="manifest's sha256 .* differs from the audit log"):
        _verify(str(_path(jsonl, export_dirs)), "--manifest", str(forged))


def test_bad_arguments_exit_non_zero(jsonl, tmp_path, dataset):
    with pytest.raises(CommandError, match="no export 999"):
        _verify("999")
    with pytest.raises(CommandError, match="no such file"):
        _verify(str(tmp_path / "missing.jsonl"))
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text("{}\n")
    with pytest.raises(CommandError, match="pass --manifest"):
        _verify(str(stranger))
    pending = build(dataset, mode="delta")  # nothing new: an empty, ready delta
    assert pending.rows_written == 0
    assert "OK, 0 rows" in _verify(str(pending.pk))
