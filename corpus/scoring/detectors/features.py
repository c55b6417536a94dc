"""Feature extraction for the learned detector: hashed n-grams plus lexical statistics.

The hashed part is what sklearn's `HashingVectorizer` would give for word 1-2 grams and character
3-5 grams (alternate_sign=False), but computed with numpy on the prepared document: the
vectorizer's character analyzer builds one Python string per n-gram (~3,600 for 1 KB of text)
and costs about 1 ms per text, five times the whole per-item budget. Here every n-gram hash is
a few vectorized integer operations over the text's code points: ~35 us per 1 KB text, weight
lookups included.

Values are term frequencies normalized per family (count / occurrences of that family in the
text, i.e. L1 normalization per family), so every family weighs the same whatever the text
length. Unlike the usual log-count + L2 normalization, this lets prediction skip counting
altogether: a text's score is the mean weight of its n-gram occurrences (`hashed_scores`). No
IDF: it would need corpus statistics stored next to the weights, and the linear model absorbs
term weighting. The dense lexical features are appended after the hashed block; the model
standardizes them with the training mean and standard deviation it stores.

Everything is deterministic integer arithmetic and xxh3 (see `text.token_hashes`), so the
feature index of an n-gram never changes between processes or machines: changing anything here
requires retraining and a new `FEATURE_VERSION`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..lexical import LexicalStats, docs_stats
from ..text import Doc

__all__ = [
    "DENSE_FEATURES",
    "FEATURE_VERSION",
    "HASH_BITS",
    "N_FEATURES",
    "dense_features",
    "features",
    "hashed_features",
    "hashed_scores",
    "linear_scores",
]

FEATURE_VERSION = "1"
HASH_BITS = 18
N_HASHED = 1 << HASH_BITS
CHAR_NGRAMS = (3, 4, 5)
DENSE_FEATURES = (
    "compression_ratio",
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "repeated_ngram_share",
    "log_words",
    "log_longest_repeated_span",
    "mean_word_chars",
)
N_FEATURES = N_HASHED + len(DENSE_FEATURES)

_SHIFT = np.uint64(64 - HASH_BITS)
# Characters scored together. Each intermediate array is 8 bytes per character; below ~128 KB
# numpy/malloc reuse memory instead of mapping fresh pages, which made larger chunks 2-3x
# slower per document in measurements.
_SCORE_CHUNK_CHARS = 12_000
_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
# Salts separate the feature families so that, e.g., the word "the" and the trigram "the" do
# not share a column (they still may by hash collision, like in any hashed feature space).
_UNIGRAM_SALT = np.uint64(0x243F6A8885A308D3)
_BIGRAM_SALT = np.uint64(0x13198A2E03707344)
_CHAR_SALT = np.uint64(0xA4093822299F31D0)


def _word_columns(th: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(n, column of every word n-gram starting at each position) for n = 1, 2."""
    out = [(1, ((th ^ _UNIGRAM_SALT) * _P1) >> _SHIFT)]
    if th.size >= 2:
        bigram = th[:-1] * _P1
        bigram ^= th[1:]
        bigram ^= _BIGRAM_SALT
        bigram *= _P2
        out.append((2, bigram >> _SHIFT))
    return out


def _char_columns(text: str) -> list[tuple[int, np.ndarray]]:
    """(n, column of every char n-gram starting at each position) for n in CHAR_NGRAMS."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    out: list[tuple[int, np.ndarray]] = []
    if cps.size < CHAR_NGRAMS[0]:
        return out
    # Multiplying by an odd constant spreads small code points over all 64 bits, so the top
    # bits (the column) depend on every character of the n-gram. One multiply-xor chain serves
    # all n: the n-gram hash extends the (n-1)-gram hash by one character.
    base = (cps.astype(np.uint64) + _CHAR_SALT) * _P2
    acc = base
    for n in range(2, CHAR_NGRAMS[-1] + 1):
        acc = acc[:-1] * _P1
        acc ^= base[n - 1 :]
        if acc.size == 0:
            break
        if n in CHAR_NGRAMS:
            out.append((n, (acc * _P2) >> _SHIFT))
    return out


def _doc_parts(doc: Doc) -> list[np.ndarray]:
    """Hashed column of every n-gram occurrence in `doc`, one int64 array per family.

    Families: word unigrams, word bigrams, char 3-, 4- and 5-grams (empty ones are left out).
    """
    parts = _word_columns(doc.hashes) + _char_columns(doc.normalized)
    return [cols.astype(np.int64) for _, cols in parts if cols.size]


def hashed_features(docs: Sequence[Doc]) -> sp.csr_matrix:
    """(len(docs), N_HASHED) CSR matrix: per family, count / occurrences in that family.

    Used for training; `hashed_scores` computes the same products with a weight vector without
    building the matrix.
    """
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        for part in _doc_parts(doc):
            rows.append(np.full(part.size, i, dtype=np.int64))
            cols.append(part)
            vals.append(np.full(part.size, 1.0 / part.size))
    if not cols:
        return sp.csr_matrix((len(docs), N_HASHED), dtype=np.float64)
    x = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(docs), N_HASHED),
    )
    x.sum_duplicates()  # COO -> CSR already summed repeats; this also sorts the indices
    return x


def _family_sums(
    families: list[tuple[int, np.ndarray]],
    lengths: np.ndarray,
    w: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add each document's mean weight per family to `out`, for a chunk of concatenated docs.

    `families` holds n-gram columns computed over the concatenation of the chunk's documents;
    `lengths` the documents' lengths in that concatenation. An n-gram starting at position i is
    inside its document iff at least n positions of that document remain from i: the n - 1
    positions before each document's end start n-grams that straddle into the next document.
    Their weights are set to 0.0 rather than masked out, which saves copying every other
    position, and leaves each sum bit for bit as it was: `bincount` adds in position order from
    +0.0, and adding +0.0 to a sum that started at +0.0 never changes it.
    """
    doc_of = np.repeat(np.arange(lengths.size), lengths)
    ends = np.cumsum(lengths)
    for n, cols in families:
        weights = np.take(w, cols)
        if n > 1:
            straddling = (ends[:, None] - np.arange(1, n)).ravel()
            weights[straddling[(straddling >= 0) & (straddling < cols.size)]] = 0.0
        sums = np.bincount(doc_of[: cols.size], weights=weights, minlength=lengths.size)
        out += sums / np.maximum(lengths - (n - 1), 1)


def hashed_scores(docs: Sequence[Doc], weights: np.ndarray) -> np.ndarray:
    """`hashed_features(docs) @ weights[:N_HASHED]` without building the matrix.

    With per-family L1 normalization each family contributes the mean weight of its n-gram
    occurrences, so scoring needs no counting, sorting or sparse matrix: only hashing and a
    gather. Documents are processed in chunks (concatenated, with n-grams that would straddle two
    documents dropped), so the numpy call overhead is paid per chunk rather than per document,
    while a chunk's arrays still fit in cache.
    """
    w = weights[:N_HASHED]
    out = np.zeros(len(docs), dtype=np.float64)
    lo = 0
    while lo < len(docs):
        hi, chars = lo, 0
        while hi < len(docs) and (
            hi == lo or chars + len(docs[hi].normalized) <= _SCORE_CHUNK_CHARS
        ):
            chars += len(docs[hi].normalized)
            hi += 1
        chunk, part = docs[lo:hi], out[lo:hi]
        lo = hi
        word_lengths = np.fromiter((d.n_words for d in chunk), dtype=np.int64, count=len(chunk))
        if word_lengths.sum():
            words = np.concatenate([d.hashes for d in chunk])
            _family_sums(_word_columns(words), word_lengths, w, part)
        char_lengths = np.fromiter(
            (len(d.normalized) for d in chunk), dtype=np.int64, count=len(chunk)
        )
        if char_lengths.sum():
            text = "".join(d.normalized for d in chunk)
            _family_sums(_char_columns(text), char_lengths, w, part)
    return out


def dense_features(stats: Sequence[LexicalStats]) -> np.ndarray:
    """(len(stats), len(DENSE_FEATURES)) raw (unscaled) lexical features."""
    out = np.empty((len(stats), len(DENSE_FEATURES)), dtype=np.float64)
    for i, s in enumerate(stats):
        out[i] = (
            s.compression_ratio,
            s.distinct_1,
            s.distinct_2,
            s.distinct_3,
            s.repeated_ngram_share,
            np.log1p(s.n_words),
            np.log1p(s.longest_repeated_span),
            s.n_chars / s.n_words if s.n_words else 0.0,
        )
    return out


def features(
    docs: Sequence[Doc],
    stats: Sequence[LexicalStats] | None = None,
    dense_mean: np.ndarray | None = None,
    dense_scale: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Full (len(docs), N_FEATURES) design matrix; dense part standardized when mean/scale given.

    Pass `stats` when the caller has computed lexical statistics already (the scoring pipeline
    does), to avoid computing them twice.
    """
    if stats is None:
        stats = docs_stats(docs)
    dense = dense_features(stats)
    if dense_mean is not None and dense_scale is not None:
        dense = (dense - dense_mean) / dense_scale
    return sp.hstack([hashed_features(docs), sp.csr_matrix(dense)], format="csr")


def linear_scores(
    docs: Sequence[Doc],
    weights: np.ndarray,
    stats: Sequence[LexicalStats] | None = None,
    dense_mean: np.ndarray | None = None,
    dense_scale: np.ndarray | None = None,
) -> np.ndarray:
    """`features(docs, stats, dense_mean, dense_scale) @ weights` without building the matrix."""
    if stats is None:
        stats = docs_stats(docs)
    dense = dense_features(stats)
    if dense_mean is not None and dense_scale is not None:
        dense = (dense - dense_mean) / dense_scale
    return hashed_scores(docs, weights) + dense @ weights[N_HASHED:]
