"""`evaluate_detector` and `train_detector` on generated labelled files: the baseline beside the
learned detector, grouped splits by default, trained_on, --limit, and too-short texts."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from corpus.scoring.detectors import LearnedDetector
from corpus.scoring.synthetic import labelled_corpus


@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory):
    rows = labelled_corpus(seed=5, n_pairs=90, families=("alpha", "beta", "gamma"))
    rows.append({"text": "Too short here", "label": "human", "generator": "human", "pair_id": "s"})
    path = tmp_path_factory.mktemp("det") / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def run(*args: str) -> dict:
    out = io.StringIO()
    call_command("evaluate_detector", *args, stdout=out)
    return json.loads(out.getvalue())


def test_retraining_reports_the_baseline_beside_the_learned_detector(labelled_file):
    path, rows = labelled_file
    result = run(str(path), "--train-split", "0.5")
    # Grouped by the file's pair_id without being told; every pair on one side.
    assert result["group_field"] == "pair_id"
    assert result["auroc"] >= result["baseline"]["auroc"] + 0.1
    assert result["auroc"] >= 0.95
    # trained_on: the rows actually fit (the split's training side, less too-short texts); the
    # metrics are over the other side.
    assert result["n_rows"] == len(rows)
    assert len(rows) - 1 <= result["trained_on"] + result["n"] <= len(rows)
    assert 0.4 * len(rows) <= result["trained_on"] <= 0.6 * len(rows)


def test_trained_on_excludes_too_short_rows_and_the_held_out_side(labelled_file, tmp_path):
    path, rows = labelled_file
    result = run(str(path), "--train-split", "0.5", "--no-groups")
    assert result.get("group_field") is None
    short_in_train = len(rows) - result["n"] - result["trained_on"]
    assert short_in_train in (0, 1)  # the one too-short row, when the split put it there


def test_limit_samples_evenly_across_label_and_generator(labelled_file):
    path, rows = labelled_file
    result = run(str(path), "--limit", "40")
    assert result["n_rows"] == 40
    # 4 strata (human, alpha, beta, gamma): 10 each, not the file's first 40 rows.
    by_generator = result["by_generator"]
    assert {k: v["n_positive"] for k, v in by_generator.items() if k != "human"} == {
        "alpha": 10,
        "beta": 10,
        "gamma": 10,
    }
    assert result["n_negative"] == 10


def test_too_short_text_is_reported_not_nan(labelled_file):
    path, rows = labelled_file
    result = run(str(path))
    assert result["abstained"]["too_short"] == 1
    assert result["too_short_lines"] == [len(rows)]
    assert result["auroc"] is not None and np.isfinite(result["auroc"])


def test_bad_arguments_are_one_line_errors(labelled_file, tmp_path):
    path, _ = labelled_file
    with pytest.raises(CommandError, match="--train-split"):
        run(str(path), "--train-split", "1.5")
    with pytest.raises(CommandError, match="--limit"):
        run(str(path), "--limit", "0")
    with pytest.raises(CommandError, match="--with-lm"):
        run(str(path), "--with-lm")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "maybe"}\n')
    with pytest.raises(CommandError, match="bad.jsonl:1"):
        run(str(bad))


def test_train_detector_writes_a_model_that_loads(labelled_file, tmp_path):
    path, rows = labelled_file
    output = tmp_path / "model.npz"
    out = io.StringIO()
    call_command(
        "train_detector",
        "--file",
        str(path),
        "--output",
        str(output),
        "--group-field",
        "pair_id",
        "--test-size",
        "0",
        stdout=out,
    )
    report = json.loads(out.getvalue().rsplit("saved", 1)[0])
    detector = LearnedDetector.load(output)
    assert report["n_train"] == len(rows) - 1  # every row but the too-short one
    assert report["version"] == detector.version
