"""Lexical statistics on hand-computed examples and brute-force references; degeneration."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.scoring import lexical
from corpus.scoring.synthetic import ai_text, human_text
from corpus.scoring.text import normalize, prepare

CAT = "The cat sat on the mat. The cat sat on the mat."


def brute_longest_repeat(words: list[str]) -> int:
    n = len(words)
    best = 0
    for k in range(1, n):
        grams = [tuple(words[i : i + k]) for i in range(n - k + 1)]
        if len(set(grams)) < len(grams):
            best = k
    return best


def brute_distinct(words: list[str], n: int) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def test_stats_of_a_hand_computed_example():
    s = lexical.lexical_stats(CAT)
    # 12 words; 5 distinct: the cat sat on mat.
    assert s.n_words == 12
    assert s.distinct_1 == pytest.approx(5 / 12)
    # 11 bigrams, distinct: the-cat cat-sat sat-on on-the the-mat mat-the.
    assert s.distinct_2 == pytest.approx(6 / 11)
    # 10 trigrams, 6 distinct (the 4 of the first sentence + 2 crossing the boundary).
    assert s.distinct_3 == pytest.approx(6 / 10)
    # 9 4-grams; positions 0-2 repeat at 6-8, the 3 crossing the boundary occur once.
    assert s.repeated_ngram_share == pytest.approx(6 / 9)
    assert s.longest_repeated_span == 6  # "the cat sat on the mat"
    data = normalize(CAT).encode()
    assert s.n_bytes == len(data)
    assert s.compression_ratio == pytest.approx(len(data) / len(gzip.compress(data)))


def test_longest_repeated_span_counts_overlapping_occurrences():
    assert lexical.longest_repeated_span("a a a a") == 3
    assert lexical.longest_repeated_span("a b c d") == 0
    assert lexical.longest_repeated_span("x a b x a b y") == 3
    assert lexical.longest_repeated_span("") == 0


def test_empty_text_has_zero_stats():
    s = lexical.lexical_stats("   ")
    assert s.as_dict() == {
        "n_chars": 0,
        "n_bytes": 0,
        "n_words": 0,
        "distinct_1": 0.0,
        "distinct_2": 0.0,
        "distinct_3": 0.0,
        "compression_ratio": 0.0,
        "repeated_ngram_share": 0.0,
        "longest_repeated_span": 0,
    }
    assert lexical.degeneration(s) == (False, None)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=40))
def test_ngram_metrics_match_brute_force(words):
    s = lexical.lexical_stats(" ".join(words))
    assert s.longest_repeated_span == brute_longest_repeat(words)
    assert s.distinct_1 == pytest.approx(brute_distinct(words, 1))
    assert s.distinct_2 == pytest.approx(brute_distinct(words, 2))
    assert s.distinct_3 == pytest.approx(brute_distinct(words, 3))
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    repeated = sum(grams.count(g) > 1 for g in grams)
    assert s.repeated_ngram_share == pytest.approx(repeated / len(grams) if grams else 0.0)


@pytest.mark.parametrize("size", [0, 1, 50, 500, 1_000, 1_800, 5_000, 40_000])
def test_gzip_size_equals_gzip_compress(rng, vocab, size):
    text = " ".join(vocab[i] for i in rng.integers(0, 300, size // 4 + 1))[:size].encode()
    loop = (b"all work and no play. " * (size // 20 + 1))[:size]
    for data in (text, loop):
        assert lexical.gzip_size(data) == len(gzip.compress(data, compresslevel=9))


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I cannot help with that request. " * 30,
        "Sure! Here is the answer you asked for. " + "the the the the the " * 60,
        "Intro sentence with several distinct words before the loop begins here. "
        + "And then it repeats the very same clause again and again, forever. " * 8,
        " ".join(["alpha", "beta", "gamma", "delta", "epsilon"] * 40),
    ],
)
def test_degeneration_flags_repetitive_text(text):
    degenerate, reason = lexical.degeneration(text)
    assert degenerate
    assert reason


def test_degeneration_does_not_flag_varied_text(rng, vocab):
    texts = [human_text(rng, vocab, int(n)) for n in rng.integers(20, 2000, 60)]
    texts += [ai_text(rng, vocab, int(n)) for n in rng.integers(20, 2000, 60)]
    flagged = [t[:60] for t in texts if lexical.degeneration(t)[0]]
    assert flagged == []


def test_degeneration_reason_names_the_rule_and_value():
    degenerate, reason = lexical.degeneration("buy now " * 200)
    assert degenerate
    assert reason is not None and reason.startswith("compression_ratio ")
    stats = lexical.lexical_stats("buy now " * 200)
    assert lexical.degeneration(stats) == (degenerate, reason)


def test_stats_are_fast_enough_for_the_ingest_budget(rng, vocab):
    # ~1 KB texts must cost well under the 200 us per-item budget of all cheap signals; the
    # bound is loose (shared CI machines), the benchmark measures the real number.
    from time import perf_counter

    from corpus.scoring.text import prepare

    docs = [prepare(human_text(rng, vocab, 140)) for _ in range(300)]
    start = perf_counter()
    for doc in docs:
        lexical.doc_stats(doc)
    per_text = (perf_counter() - start) / len(docs)
    assert per_text < 1e-3
    assert np.mean([len(d.normalized) for d in docs]) > 700


def _mixed_docs(rng, vocab):
    texts = ["", "a", "a a", "one two", "hi hi hi hi hi", "a b a b a b a b", "x " * 700]
    texts += ["the loop repeats " * int(n) for n in rng.integers(1, 60, 8)]
    texts += [human_text(rng, vocab, int(n)) for n in rng.integers(0, 900, 40)]
    texts += [ai_text(rng, vocab, int(n)) for n in rng.integers(1, 300, 40)]
    texts += [human_text(rng, vocab, 6000), "Ünïcode ßtraße ﬁne 日本語 " * 30]
    order = rng.permutation(len(texts))
    return [prepare(texts[i]) for i in order]


def test_batch_stats_equal_one_document_at_a_time(rng, vocab):
    # given documents of every length, degenerate and natural, in no particular order
    docs = _mixed_docs(rng, vocab)
    # when their statistics are computed together
    got = lexical.docs_stats(docs)
    # then every value is the one doc_stats gives for the document alone, exactly
    assert got == [lexical.doc_stats(doc) for doc in docs]


def test_batch_stats_are_exact_across_block_boundaries(rng, vocab, monkeypatch):
    # given blocks far smaller than the batch, so documents share blocks with their neighbours
    monkeypatch.setattr(lexical, "_BLOCK_WORDS", 300)
    docs = _mixed_docs(rng, vocab)
    # when / then
    assert lexical.docs_stats(docs) == [lexical.doc_stats(doc) for doc in docs]
    assert lexical.docs_stats([]) == []
