"""Seeded generators of synthetic texts, for the scoring tests and benchmarks.

Shipped with the package (not under tests/) so that the tests and `bench/scoring.py` exercise
the same data without reading any file. Nothing here is used in production scoring.

The two "styles" stand in for human and model-written prose: they share a vocabulary but differ
in word preferences, sentence-length spread and stock connectives, roughly the surface cues a
lexical detector can learn. They are not realistic, only distinct and overlapping.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ai_text", "human_text", "make_vocab", "mutate", "random_text"]

_ONSETS = list("bcdfghklmnprstvwz") + ["br", "ch", "cl", "dr", "gr", "pl", "sh", "st", "th", "tr"]
_VOWELS = list("aeiou") + ["ai", "ea", "ou", "io"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng"]
_AI_CONNECTIVES = [
    "furthermore",
    "moreover",
    "additionally",
    "overall",
    "importantly",
    "in conclusion",
    "it is important to note that",
    "in addition",
]
_HUMAN_FILLERS = ["well", "honestly", "i mean", "anyway", "so", "like", "actually", "you know"]


def make_vocab(rng: np.random.Generator, size: int = 5000) -> list[str]:
    """`size` distinct pronounceable pseudo-words."""
    words: dict[str, None] = {}
    while len(words) < size:
        n_syll = int(rng.integers(1, 4))
        w = "".join(
            _ONSETS[rng.integers(len(_ONSETS))]
            + _VOWELS[rng.integers(len(_VOWELS))]
            + _CODAS[rng.integers(len(_CODAS))]
            for _ in range(n_syll)
        )
        words[w] = None
    return list(words)


def _zipf_ranks(rng: np.random.Generator, n: int, size: int, a: float) -> np.ndarray:
    # Zipf over ranks 1..size by inverse-CDF sampling (np.random.zipf is unbounded).
    weights = 1.0 / np.arange(1, size + 1) ** a
    cdf = np.cumsum(weights)
    return np.searchsorted(cdf, rng.random(n) * cdf[-1])


def random_text(rng: np.random.Generator, vocab: list[str], n_words: int, a: float = 1.1) -> str:
    """Space-separated Zipf-distributed words: a plain text for hashing and MinHash tests."""
    return " ".join(vocab[i] for i in _zipf_ranks(rng, n_words, len(vocab), a))


def human_text(rng: np.random.Generator, vocab: list[str], n_words: int = 180) -> str:
    """Varied sentence lengths, fillers, mixed punctuation, a flatter word distribution."""
    ranks = _zipf_ranks(rng, n_words, len(vocab), 1.0)
    out: list[str] = []
    i = 0
    while i < n_words:
        length = max(3, int(rng.lognormal(2.5, 0.7)))
        sentence = [vocab[r] for r in ranks[i : i + length]]
        i += length
        if rng.random() < 0.25:
            sentence.insert(0, _HUMAN_FILLERS[rng.integers(len(_HUMAN_FILLERS))] + ",")
        if rng.random() < 0.3 and len(sentence) > 4:
            sentence[int(rng.integers(1, len(sentence) - 1))] += ","
        end = [".", ".", "!", "?", "...", ";"][rng.integers(6)]
        out.append(" ".join(sentence).capitalize() + end)
    return " ".join(out)


def ai_text(rng: np.random.Generator, vocab: list[str], n_words: int = 180) -> str:
    """Even sentence lengths, stock connectives, a steeper preference for a shifted word list."""
    shifted = vocab[len(vocab) // 3 :] + vocab[: len(vocab) // 3]
    ranks = _zipf_ranks(rng, n_words, len(vocab), 1.2)
    out: list[str] = []
    i = 0
    while i < n_words:
        length = max(8, int(rng.normal(17, 2.5)))
        sentence = [shifted[r] for r in ranks[i : i + length]]
        i += length
        if rng.random() < 0.35:
            sentence.insert(0, _AI_CONNECTIVES[rng.integers(len(_AI_CONNECTIVES))] + ",")
        if len(sentence) > 6:
            sentence[len(sentence) // 2] += ","
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def mutate(rng: np.random.Generator, text: str, vocab: list[str], replace_rate: float) -> str:
    """Replace each word with probability `replace_rate` by a random vocabulary word."""
    tokens = text.split(" ")
    hits = np.flatnonzero(rng.random(len(tokens)) < replace_rate)
    for i in hits:
        tokens[i] = vocab[rng.integers(len(vocab))]
    return " ".join(tokens)


# Generator families for the detector tests: each writes on the same topics as the human texts
# it is paired with, but with its own habits (sentence length and its spread, connectives,
# punctuation). "delta" also draws its words from another syllable inventory (another domain
# or language): the family the tests hold out of training.
_FAMILIES: dict[str, dict[str, object]] = {
    "alpha": {"mean": 17.0, "sd": 2.0, "connectives": _AI_CONNECTIVES[:4], "comma": 0.8},
    "beta": {"mean": 13.0, "sd": 1.5, "connectives": _AI_CONNECTIVES[3:], "comma": 0.5},
    "gamma": {"mean": 21.0, "sd": 3.0, "connectives": _AI_CONNECTIVES[::2], "comma": 0.9},
    "delta": {"mean": 30.0, "sd": 1.0, "connectives": ["whereupon", "thus"], "comma": 0.2},
}
FAMILIES = tuple(_FAMILIES)
_DELTA_ONSETS = ["q", "x", "zv", "kx", "vj", "yq"]
_DELTA_VOWELS = ["y", "aa", "uu", "ee"]


def _family_text(
    rng: np.random.Generator, topic: list[str], common: list[str], family: str, n_words: int
) -> str:
    style = _FAMILIES[family]
    out: list[str] = []
    i = 0
    while i < n_words:
        length = max(6, int(rng.normal(style["mean"], style["sd"])))  # type: ignore[call-overload]
        words = [
            topic[rng.integers(len(topic))]
            if rng.random() < 0.35
            else common[rng.integers(len(common))]
            for _ in range(length)
        ]
        i += length
        connectives: list[str] = style["connectives"]  # type: ignore[assignment]
        if rng.random() < 0.15:
            words.insert(0, connectives[rng.integers(len(connectives))] + ",")
        if rng.random() < style["comma"] and len(words) > 6:  # type: ignore[operator]
            words[len(words) // 2] += ","
        if family == "delta":
            words[-1] += f"; {int(rng.integers(10, 999))}"
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _human_paired(
    rng: np.random.Generator, topic: list[str], common: list[str], n_words: int
) -> str:
    out: list[str] = []
    i = 0
    while i < n_words:
        length = max(3, int(rng.lognormal(2.5, 0.7)))
        words = [
            topic[rng.integers(len(topic))]
            if rng.random() < 0.35
            else common[rng.integers(len(common))]
            for _ in range(length)
        ]
        i += length
        if rng.random() < 0.1:
            words.insert(0, _HUMAN_FILLERS[rng.integers(len(_HUMAN_FILLERS))] + ",")
        if rng.random() < 0.3 and len(words) > 4:
            words[int(rng.integers(1, len(words) - 1))] += ","
        end = [".", ".", "!", "?", "...", ";", " -"][rng.integers(7)]
        out.append(" ".join(words).capitalize() + end)
    return " ".join(out)


def labelled_corpus(
    seed: int, n_pairs: int = 120, families: tuple[str, ...] = ("alpha", "beta", "gamma")
) -> list[dict[str, object]]:
    """Rows like a labelled detector file: text, label (human|ai), generator, pair_id.

    Each pair is a topic (a draw of content words) with one human text and one text of a
    generator family (families in turn), so topic words say nothing about the label: only the
    writing habits do. Texts are 60-220 words.
    """
    rng = np.random.default_rng(seed)
    vocab = make_vocab(rng, 6000)
    common = vocab[:300]  # the function-word-like head shared by every writer
    rows: list[dict[str, object]] = []
    for pair in range(n_pairs):
        family = families[pair % len(families)]
        topic = [vocab[int(i)] for i in rng.choice(np.arange(300, len(vocab)), 40, replace=False)]
        ai_topic, ai_common = topic, common
        if family == "delta":
            ai_topic = [
                "".join(
                    _DELTA_ONSETS[rng.integers(len(_DELTA_ONSETS))]
                    + _DELTA_VOWELS[rng.integers(len(_DELTA_VOWELS))]
                    for _ in range(int(rng.integers(2, 4)))
                )
                for _ in range(40)
            ]
            ai_common = ai_topic[:20]
        rows.append(
            {
                "text": _human_paired(rng, topic, common, int(rng.integers(60, 220))),
                "label": "human",
                "generator": "human",
                "pair_id": f"p{seed}-{pair}",
            }
        )
        rows.append(
            {
                "text": _family_text(rng, ai_topic, ai_common, family, int(rng.integers(60, 220))),
                "label": "ai",
                "generator": family,
                "pair_id": f"p{seed}-{pair}",
            }
        )
    return rows
