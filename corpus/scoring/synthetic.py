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
