"""The detector rows of the evidence panel: a probability with the detector's measured quality
on this dataset, or the reason it gives none; never "not scored yet" once scoring ran."""

from review import evidence


def test_probability_with_measured_quality():
    rows = evidence.detector_rows(
        {
            "learned": {
                "version": "v2",
                "probability": 0.91,
                "quality": {"auroc": 0.934, "n_items": 412},
            }
        }
    )
    assert rows == [
        {
            "name": "learned",
            "label": "Learned detector",
            "version": "v2",
            "probability": 0.91,
            "band": "high",
            "text": "chance it is machine-written; the detector is fairly sure.",
            "quality": "held-out AUROC 0.93 on this dataset, measured on 412 reviewed items",
        }
    ]


def test_unmeasured_detector_says_so():
    (row,) = evidence.detector_rows(
        {"learned": {"version": "v", "probability": 0.2, "quality": None}}
    )
    assert row["quality"] == "quality on this dataset not yet measured"
    assert row["band"] == "low"


def test_abstentions_and_out_of_scope_kinds_say_why():
    rows = {
        r["name"]: r
        for r in evidence.detector_rows(
            {
                "learned": {"version": "v", "abstained": "out_of_distribution"},
                "fast-detectgpt": {"version": "m", "unsupported": "chat"},
                "other": {"version": "x", "too_short": True},
            }
        )
    }
    assert rows["learned"]["probability"] is None
    assert rows["learned"]["text"].startswith("outside this detector's scope")
    assert rows["fast-detectgpt"]["text"] == (
        "outside this detector's scope: it is not trained on chat"
    )
    assert rows["other"]["text"] == "too short for this detector to judge"
    skipped = evidence.detector_rows({"fast-detectgpt": {"version": "m", "skipped": "sampled_out"}})
    assert skipped[0]["text"].startswith("not run on this item")


def test_no_detector_evidence_gives_no_rows():
    assert evidence.detector_rows(None) == []
    assert evidence.detector_rows({}) == []


def test_scores_stored_before_per_detector_entries_still_show_their_probability():
    (row,) = evidence.detector_rows({}, legacy=("logreg", "3", 0.87))
    assert (row["name"], row["version"], row["probability"]) == ("logreg", "3", 0.87)
    assert evidence.detector_rows({}, legacy=("logreg", "3", None)) == []
