"""Evidence helpers: shared spans for the side-by-side view, folding, plain explanations."""

from review import evidence


def _marked(segments):
    return [s.text for s in segments if s.shared]


def test_shared_runs_are_marked_on_both_sides_with_whitespace_kept():
    left = "Intro words here.\nThe quick brown fox jumps over the lazy dog today."
    right = "Something else:  the QUICK brown fox jumps over the lazy dog, then more."

    result = evidence.shared_spans(left, right)

    assert "".join(s.text for s in result.left) == left
    assert "".join(s.text for s in result.right) == right
    assert _marked(result.left) == ["The quick brown fox jumps over the lazy dog"]
    assert _marked(result.right) == ["the QUICK brown fox jumps over the lazy dog,"]
    assert result.shared_words == 9
    assert not result.truncated


def test_short_common_runs_are_not_evidence():
    result = evidence.shared_spans("one of the best", "it is one of the worst")

    assert _marked(result.left) == []


def test_markup_in_texts_stays_plain_text_in_segments():
    payload = "<script>alert(1)</script> shared words run right here"
    result = evidence.shared_spans(payload, "x shared words run right here")

    assert "".join(s.text for s in result.left) == payload
    assert _marked(result.left) == ["shared words run right here"]


def test_comparison_is_capped_for_very_long_texts():
    long = " ".join(f"w{i}" for i in range(evidence.MAX_COMPARE_WORDS + 500))

    result = evidence.shared_spans(long, long)

    assert result.truncated
    assert result.shared_words == evidence.MAX_COMPARE_WORDS


def test_fold_cuts_at_a_space_near_the_limit():
    shown, folded = evidence.fold("abc " * 100, 50)

    assert shown + folded == "abc " * 100
    assert 40 <= len(shown) <= 50
    assert evidence.fold("short", 50) == ("short", "")


def test_detector_explanations():
    assert evidence.detector_explanation(None) == "not scored yet"
    assert evidence.detector_explanation(0.93).endswith("the detector is fairly sure.")
    assert evidence.detector_explanation(0.2).endswith("mostly human-like text.")
    assert evidence.detector_band(0.93) == "high"
    assert evidence.detector_band(0.6) == "mid"
    assert evidence.detector_band(0.1) == "low"


def test_lexical_rows_compare_with_the_reference_median():
    rows = {
        r["key"]: r
        for r in evidence.lexical_rows(
            {"distinct_1": 0.4, "distinct_2": 0.9, "compression_ratio": 2.0},
            {"distinct_1": 0.7, "distinct_2": 0.88},
        )
    }

    assert rows["distinct_1"]["comparison"] == "below the human reference"
    assert rows["distinct_2"]["comparison"] == "close to the human reference"
    assert rows["compression_ratio"]["comparison"] == "no human reference items to compare with"
    assert rows["distinct_3"]["comparison"] == "not scored yet"
