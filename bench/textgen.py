"""Synthetic prose for benchmarks, with the word statistics of natural text.

Word frequencies follow Zipf's law (rank r drawn with weight 1 / r) over a vocabulary of
20,000 words: the 60 commonest English function words first, then pseudo-words made of
syllables. Sentences of 8 to 22 words, capitalized, with end punctuation.

Why not a short word list: near-duplicate search compares texts by their shared word bigrams.
Texts drawn uniformly from 52 words (what `bench/pipeline.py` used before) share about 2.7% of
their bigrams with *every* other text, so every pair sits in the tail of the LSH curve: 29
candidate pairs per million at 10,000 texts, where 1 KB windows of the shipped human and AI
texts (`../shared/data/detector-train.jsonl`) give 8 (and the distribution of their pairwise
Jaccard predicts 0.7). The verification work then grows with the corpus, which no natural
corpus does. This generator measures, on 2,000 texts (20,000 random pairs): mean word-bigram
Jaccard 0.0104, 99th percentile 0.0248, max 0.040 (shipped windows: 0.0064, 0.0231, 0.089), and
0.4 LSH candidate pairs per million among 10,000 texts: slightly more alike than real text, so
the figures it gives are if anything pessimistic.
"""

import itertools
import random

FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "more",
    "can",
    "who",
    "its",
    "them",
    "out",
    "up",
    "then",
    "about",
]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ra",
    "to",
    "su",
    "ve",
    "di",
    "po",
    "an",
    "el",
    "or",
    "is",
    "un",
    "ta",
    "ri",
    "mo",
    "ze",
    "lu",
    "ba",
    "ce",
    "fi",
    "go",
    "ho",
]
VOCABULARY_SIZE = 20_000
ZIPF_EXPONENT = 1.0


def _vocabulary(size: int = VOCABULARY_SIZE, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


VOCABULARY = _vocabulary()
_CUM_WEIGHTS = list(
    itertools.accumulate(1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(VOCABULARY)))
)


def prose(rng: random.Random, size: int = 1024, tag: str | None = None) -> str:
    """About `size` characters of prose (cut at `size`); `tag`, when given, replaces one word of
    the first sentence, so that texts made with distinct tags are distinct."""
    sentences: list[str] = []
    length = 0
    while length < size:
        k = rng.randint(8, 22)
        words = rng.choices(VOCABULARY, cum_weights=_CUM_WEIGHTS, k=k)
        if tag is not None and not sentences:
            words[rng.randrange(k)] = tag
        sentence = " ".join(words).capitalize() + rng.choice(".....?!;")
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)[:size]
