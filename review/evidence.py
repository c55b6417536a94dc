"""Evidence shown beside an item, in words a reviewer reads at a glance.

Pure functions over values already loaded (no queries). Texts are returned as plain strings
and segment lists; templates escape them, nothing here builds HTML.
"""

import difflib
import re
from dataclasses import dataclass
from typing import Any

# Comparing beyond this many words per side costs more than it tells: SequenceMatcher is
# quadratic in the worst case, and the first few thousand words show the overlap well enough.
MAX_COMPARE_WORDS = 3000
# Shorter common runs ("of the", "it is") are everywhere; they are not evidence of copying.
MIN_SHARED_WORDS = 4

_TOKEN_RE = re.compile(r"\S+|\s+")

LEXICAL_METRICS: list[tuple[str, str, str]] = [
    (
        "distinct_1",
        "Distinct words",
        "share of words that are not repeats; lower means a smaller vocabulary",
    ),
    (
        "distinct_2",
        "Distinct word pairs",
        "share of two-word sequences used once; lower means repetitive phrasing",
    ),
    (
        "distinct_3",
        "Distinct word triples",
        "share of three-word sequences used once; lower means formulaic text",
    ),
    (
        "compression_ratio",
        "Compression ratio",
        "how much gzip shrinks the text; higher means more repetition",
    ),
    (
        "repeated_ngram_share",
        "Repeated 4-word runs",
        "share of four-word runs that occur more than once",
    ),
]


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    shared: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    left: list[Segment]
    right: list[Segment]
    shared_words: int
    truncated: bool


def _word_key(token: str) -> str:
    return token.casefold().strip(".,;:!?\"'()[]{}")


def _segments(tokens: list[str], words: list[int], shared: list[bool]) -> list[Segment]:
    """Merge consecutive tokens with the same highlight state; whitespace between two shared
    words stays inside the highlight so a shared span reads as one mark."""
    flags = [False] * len(tokens)
    for word_index, token_index in enumerate(words):
        flags[token_index] = shared[word_index]
    for i, token in enumerate(tokens):
        if token.isspace() and 0 < i < len(tokens) - 1 and flags[i - 1] and flags[i + 1]:
            flags[i] = True
    segments: list[Segment] = []
    for token, flag in zip(tokens, flags, strict=True):
        if segments and segments[-1].shared == flag:
            segments[-1] = Segment(segments[-1].text + token, flag)
        else:
            segments.append(Segment(token, flag))
    return segments


def shared_spans(left_text: str, right_text: str) -> Comparison:
    """Both texts cut into segments, with word runs they share (case and punctuation aside,
    at least MIN_SHARED_WORDS long) marked ``shared``. Whitespace is kept exactly."""
    sides = []
    truncated = False
    for text in (left_text, right_text):
        tokens = _TOKEN_RE.findall(text)
        words = [i for i, tok in enumerate(tokens) if not tok.isspace()]
        if len(words) > MAX_COMPARE_WORDS:
            truncated = True
            cut = words[MAX_COMPARE_WORDS]
            tokens, words = tokens[:cut], words[:MAX_COMPARE_WORDS]
        sides.append((tokens, words))
    (lt, lw), (rt, rw) = sides
    left_keys = [_word_key(lt[i]) for i in lw]
    right_keys = [_word_key(rt[i]) for i in rw]
    matcher = difflib.SequenceMatcher(None, left_keys, right_keys, autojunk=False)
    left_shared = [False] * len(lw)
    right_shared = [False] * len(rw)
    total = 0
    for block in matcher.get_matching_blocks():
        if block.size < MIN_SHARED_WORDS:
            continue
        total += block.size
        for k in range(block.size):
            left_shared[block.a + k] = True
            right_shared[block.b + k] = True
    return Comparison(
        left=_segments(lt, lw, left_shared),
        right=_segments(rt, rw, right_shared),
        shared_words=total,
        truncated=truncated,
    )


def fold(text: str, limit: int) -> tuple[str, str]:
    """(shown, folded): the text cut near ``limit`` characters at a whitespace, so long texts
    open short and the rest is one click away."""
    if len(text) <= limit:
        return text, ""
    cut = text.rfind(" ", int(limit * 0.8), limit)
    if cut == -1:
        cut = limit
    return text[:cut], text[cut:]


def detector_band(probability: float | None) -> str:
    if probability is None:
        return "unscored"
    if probability >= 0.8:
        return "high"
    if probability >= 0.5:
        return "mid"
    return "low"


def detector_explanation(probability: float | None) -> str:
    if probability is None:
        return "not scored yet"
    if probability >= 0.8:
        return "chance it is machine-written; the detector is fairly sure."
    if probability >= 0.65:
        return "chance it is machine-written; the detector leans that way but is unsure."
    if probability > 0.35:
        return "chance it is machine-written; no clear evidence either way."
    return "chance it is machine-written; the detector sees mostly human-like text."


DETECTOR_LABELS = {
    "learned": "Learned detector",
    "fast-detectgpt": "Language-model detector",
    "learned+lm": "Learned detector with language-model features",
}
ABSTENTIONS = {
    "out_of_distribution": "outside this detector's scope: the text is unlike what it was "
    "trained on, so it gives no probability",
    "too_short": "too short for this detector to judge",
    "sampled_out": "not run on this item: the learned detector was confident, and this "
    "detector sees only a sample of such items",
    "backlog": "not run on this item: its queue was too far behind, so the item went to review "
    "with the other evidence alone",
}


def detector_quality_text(quality: dict[str, Any] | None) -> str:
    """The detector's measured quality on this dataset, in words."""
    if not quality or quality.get("auroc") is None:
        return "quality on this dataset not yet measured"
    return (
        f"held-out AUROC {quality['auroc']:.2f} on this dataset, measured on "
        f"{quality['n_items']} reviewed items"
    )


def detector_rows(
    detectors: dict[str, Any] | None, legacy: tuple[str, str, float | None] | None = None
) -> list[dict[str, Any]]:
    """One row per detector that left evidence: its probability, or why it gives none, and its
    measured quality. A detector that abstains is shown as abstaining, never as "not scored".

    `legacy` (name, version, probability) covers scores stored before per-detector entries.
    """
    if not detectors and legacy is not None and legacy[2] is not None:
        detectors = {legacy[0] or "detector": {"version": legacy[1], "probability": legacy[2]}}
    rows = []
    for name, entry in sorted((detectors or {}).items()):
        if not isinstance(entry, dict):
            continue
        probability = entry.get("probability")
        if probability is not None:
            status = ""
        elif entry.get("unsupported"):
            status = f"outside this detector's scope: it is not trained on {entry['unsupported']}"
        elif entry.get("too_short"):
            status = ABSTENTIONS["too_short"]
        elif entry.get("skipped"):
            status = ABSTENTIONS.get(entry["skipped"], "not run on this item")
        else:
            status = ABSTENTIONS.get(entry.get("abstained", ""), "gave no probability")
        rows.append(
            {
                "name": name,
                "label": DETECTOR_LABELS.get(name, name),
                "version": entry.get("version", ""),
                "probability": probability,
                "band": detector_band(probability) if probability is not None else "unscored",
                "text": detector_explanation(probability) if probability is not None else status,
                "quality": detector_quality_text(entry.get("quality")),
            }
        )
    return rows


def lexical_rows(
    lexical: dict[str, Any] | None, reference: dict[str, float] | None
) -> list[dict[str, Any]]:
    """One row per metric: the item's value, the reference median, and a plain comparison."""
    rows = []
    for key, label, meaning in LEXICAL_METRICS:
        value = (lexical or {}).get(key)
        median = (reference or {}).get(key)
        if value is None:
            comparison = "not scored yet"
        elif median is None:
            comparison = "no human reference items to compare with"
        # Within 10% (or 0.02 on these 0-to-1 shares) reads as "the same" to a person.
        elif abs(value - median) <= max(0.1 * abs(median), 0.02):
            comparison = "close to the human reference"
        elif value > median:
            comparison = "above the human reference"
        else:
            comparison = "below the human reference"
        rows.append(
            {
                "key": key,
                "label": label,
                "meaning": meaning,
                "value": value,
                "median": median,
                "comparison": comparison,
            }
        )
    return rows
