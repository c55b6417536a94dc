"""Feature extraction for the learned detector: hashed TF-IDF n-grams plus stylometry.

Two TF-IDF blocks, as two sklearn `TfidfVectorizer(sublinear_tf=True)` in a `FeatureUnion` would
give (word 1-2 grams; character 3-5 grams over the normalized text, punctuation included), but
hashed into 2**HASH_BITS columns and computed with numpy on the prepared document: sklearn's
character analyzer builds one Python string per n-gram (~3,600 for 1 KB of text) and costs about
1 ms per text, several times the whole per-item budget of the scoring worker. Here every n-gram
hash is a few vectorized integer operations over the text's code points, and the counting is one
`np.unique` per chunk of documents (`ngram_counts`).

Per block: tf = 1 + log(count) (sublinear), times the idf learnt at training time
(log((1 + n) / (1 + df)) + 1, sklearn's smooth idf), L2-normalized, so the two blocks weigh the
same whatever the text length. Texts are cut at MAX_CHARS normalized characters first: past a few
KB the estimate no longer improves, and the cost grows linearly.

Stylometric features (`dense_features`) come after: the lexical statistics the scoring pipeline
computes anyway (compression ratio, distinct-n, repetition) plus sentence-length mean and spread
("burstiness"), punctuation rates and word length. The model standardizes them with the training
mean and standard deviation it stores.

Everything is deterministic integer arithmetic and xxh3 (see `text.token_hashes`), so the
feature index of an n-gram never changes between processes or machines: changing anything here
requires retraining and a new `FEATURE_VERSION`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..lexical import LexicalStats, docs_stats
from ..text import Doc

__all__ = [
    "DENSE_FEATURES",
    "FEATURE_VERSION",
    "HASH_BITS",
    "MAX_CHARS",
    "MIN_WORDS",
    "N_HASHED",
    "NgramCounts",
    "dense_features",
    "clipped_word_counts",
    "linear_scores",
    "ngram_counts",
    "tfidf",
]

FEATURE_VERSION = "2"
HASH_BITS = 18
N_HASHED = 1 << HASH_BITS
CHAR_NGRAMS = (3, 4, 5)
MAX_CHARS = 4000
# Below this many words the n-gram and stylometric estimates are noise: the detector says
# "too short" instead of a probability.
MIN_WORDS = 20
DENSE_FEATURES = (
    "compression_ratio",
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "repeated_ngram_share",
    "log_words",
    "log_longest_repeated_span",
    "mean_word_chars",
    "sentence_words_mean",
    "sentence_words_cv",
    "comma_rate",
    "semicolon_colon_rate",
    "exclaim_question_rate",
    "quote_paren_dash_rate",
    "digit_rate",
)

_SHIFT = np.uint64(64 - HASH_BITS)
_MASK = np.int64(N_HASHED - 1)
# Documents counted together: the per-call overhead of numpy is paid per chunk, while the arrays
# stay small enough for the cache.
_CHUNK_CHARS = 12_000
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


def _clip(doc: Doc) -> tuple[str, np.ndarray]:
    """The normalized text and word hashes used for features: the first MAX_CHARS characters."""
    text = doc.normalized
    if len(text) <= MAX_CHARS:
        return text, doc.hashes
    text = text[:MAX_CHARS]
    # Words are whitespace-separated in the normalized text, so the words of the prefix are
    # about its share of spaces; an exact count would need re-tokenizing.
    n_words = min(doc.n_words, text.count(" ") + 1)
    return text, doc.hashes[:n_words]


def _keys(families: list[tuple[int, np.ndarray]], lengths: np.ndarray) -> np.ndarray:
    """doc index * N_HASHED + column of every n-gram inside one document of the chunk.

    `families` were computed over the chunk's concatenated documents, whose lengths are
    `lengths`: an n-gram starting in the last n - 1 positions of a document straddles into the
    next one and is dropped.
    """
    doc_of = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    ends = np.cumsum(lengths)
    keys = []
    for n, cols in families:
        k = doc_of[: cols.size] * N_HASHED + cols.astype(np.int64)
        if n > 1:
            straddling = (ends[:, None] - np.arange(1, n)).ravel()
            straddling = straddling[(straddling >= 0) & (straddling < cols.size)]
            k = np.delete(k, straddling)
        keys.append(k)
    return np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)


def clipped_word_counts(docs: Sequence[Doc]) -> np.ndarray:
    """Words of each document that the features see (after the MAX_CHARS cut)."""
    return np.fromiter((_clip(d)[1].size for d in docs), dtype=np.int64, count=len(docs))


@dataclass(frozen=True)
class NgramCounts:
    """Raw n-gram counts of a batch of documents, one CSR matrix per block (word, char)."""

    word: sp.csr_matrix
    char: sp.csr_matrix


def _csr(unique_keys: np.ndarray, counts: np.ndarray, n_docs: int) -> sp.csr_matrix:
    rows = unique_keys // N_HASHED
    cols = unique_keys & _MASK
    indptr = np.searchsorted(rows, np.arange(n_docs + 1))
    return sp.csr_matrix(
        (counts.astype(np.float64), cols.astype(np.int32), indptr), shape=(n_docs, N_HASHED)
    )


def ngram_counts(docs: Sequence[Doc]) -> NgramCounts:
    """Count every hashed word 1-2 gram and char 3-5 gram of each document (clipped)."""
    word_parts: list[sp.csr_matrix] = []
    char_parts: list[sp.csr_matrix] = []
    clipped = [_clip(d) for d in docs]
    lo = 0
    while lo < len(clipped):
        hi, chars = lo, 0
        while hi < len(clipped) and (hi == lo or chars + len(clipped[hi][0]) <= _CHUNK_CHARS):
            chars += len(clipped[hi][0])
            hi += 1
        chunk = clipped[lo:hi]
        lo = hi
        n = len(chunk)
        word_lengths = np.fromiter((h.size for _, h in chunk), dtype=np.int64, count=n)
        char_lengths = np.fromiter((len(t) for t, _ in chunk), dtype=np.int64, count=n)
        for lengths, parts, families in (
            (
                word_lengths,
                word_parts,
                lambda c=chunk: _word_columns(np.concatenate([h for _, h in c])),
            ),
            (char_lengths, char_parts, lambda c=chunk: _char_columns("".join(t for t, _ in c))),
        ):
            if lengths.sum():
                keys, counts = np.unique(_keys(families(), lengths), return_counts=True)
            else:
                keys, counts = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
            parts.append(_csr(keys, counts, n))
    if not docs:
        empty = sp.csr_matrix((0, N_HASHED), dtype=np.float64)
        return NgramCounts(word=empty, char=empty)
    return NgramCounts(
        word=sp.vstack(word_parts, format="csr"), char=sp.vstack(char_parts, format="csr")
    )


def tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """count x idf per column, each row divided by sqrt(sum of count x idf**2).

    The normalizer is the L2 norm the row would have if every n-gram occurred once: unlike the
    true L2 norm it is a sum over occurrences, so `linear_scores` computes it without counting
    (see the module docstring). Rows without n-grams stay zero.
    """
    x = counts.copy()
    w = idf[x.indices]
    norm2 = np.bincount(
        np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)),
        weights=x.data * w * w,
        minlength=x.shape[0],
    )
    norms = np.sqrt(norm2)
    norms[norms == 0] = 1.0
    x.data = x.data * w / np.repeat(norms, np.diff(x.indptr))
    return x


def _block_sums(
    families: list[tuple[int, np.ndarray]],
    lengths: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add to `out[i]` the sum of table[column] over document i's n-grams, for a chunk.

    `families` hold n-gram columns computed over the chunk's concatenated documents of
    `lengths`; the n - 1 positions before each document's end start n-grams that straddle into
    the next document, whose gathered rows are set to 0.0 (which changes no sum). Documents
    are consecutive in the concatenation, so one `add.reduceat` sums every table column.
    """
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = np.cumsum(lengths)
    for n, cols in families:
        gathered = np.take(table, cols, axis=0).astype(np.float64)
        if n > 1:
            straddling = (ends[:, None] - np.arange(1, n)).ravel()
            gathered[straddling[(straddling >= 0) & (straddling < cols.size)]] = 0.0
        # A document too short for any n-gram of this size has no row of its own: reduceat
        # would return the next row there, so those documents are masked out.
        has = (lengths >= n) & (starts < cols.size)
        if not has.any():
            continue
        sums = np.add.reduceat(gathered, np.minimum(starts, cols.size - 1), axis=0)
        out[has] += sums[has]


def linear_scores(
    docs: Sequence[Doc], word_tables: np.ndarray, char_tables: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-document sums of table values over n-gram occurrences, without counting.

    word_tables / char_tables: (N_HASHED, k) arrays, e.g. columns coef x idf, idf**2 and
    "seen" (one row per hashed column, so a gather reads one cache line); returns
    (len(docs), k_word) and (len(docs), k_char) float64 sums. With them, `tfidf(counts) @ coef`
    is sum(coef x idf) / sqrt(sum(idf**2)) per block: a gather and a `bincount` per n-gram
    family over a chunk of concatenated documents, no sort, no sparse matrix.
    """
    word_out = np.zeros((len(docs), word_tables.shape[1]))
    char_out = np.zeros((len(docs), char_tables.shape[1]))
    clipped = [_clip(d) for d in docs]
    lo = 0
    while lo < len(clipped):
        hi, chars = lo, 0
        while hi < len(clipped) and (hi == lo or chars + len(clipped[hi][0]) <= _CHUNK_CHARS):
            chars += len(clipped[hi][0])
            hi += 1
        chunk = clipped[lo:hi]
        n = len(chunk)
        word_lengths = np.fromiter((h.size for _, h in chunk), dtype=np.int64, count=n)
        if word_lengths.sum():
            families = _word_columns(np.concatenate([h for _, h in chunk]))
            _block_sums(families, word_lengths, word_tables, word_out[lo:hi])
        char_lengths = np.fromiter((len(t) for t, _ in chunk), dtype=np.int64, count=n)
        if char_lengths.sum():
            families = _char_columns("".join(t for t, _ in chunk))
            _block_sums(families, char_lengths, char_tables, char_out[lo:hi])
        lo = hi
    return word_out, char_out


def smooth_idf(counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(idf, df): sklearn's smooth idf over the rows of `counts`; df is the document frequency."""
    df = np.bincount(counts.indices, minlength=N_HASHED).astype(np.float64)
    n = counts.shape[0]
    return np.log((1.0 + n) / (1.0 + df)) + 1.0, df


def _char_stats(texts: list[str]) -> np.ndarray:
    """(len(texts), 7): sentence words mean and coefficient of variation, and per-1000-char rates
    of commas, ; and :, ! and ?, quotes/parentheses/dashes, digits.

    One pass of numpy over the batch's concatenated code points. A sentence ends at ".", "!" or
    "?" followed by a space (or the text's end); its words are its spaces + 1 (the normalized
    text has single spaces).
    """
    n = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    out = np.zeros((n, 7))
    total = int(lengths.sum())
    if not total:
        return out
    cps = np.frombuffer("".join(texts).encode("utf-32-le"), dtype="<u4")
    doc_of = np.repeat(np.arange(n), lengths)
    ends = np.cumsum(lengths)
    last = np.zeros(total, dtype=bool)
    last[ends[lengths > 0] - 1] = True
    space = cps == 32
    next_space = np.empty(total, dtype=bool)
    next_space[:-1] = space[1:]
    next_space[-1] = True
    terminal = (cps == 46) | (cps == 33) | (cps == 63)
    sentence_end = terminal & (next_space | last)
    sentence_end |= last  # the text's last sentence ends with it, terminated or not
    # Sentence index of each position: ends so far, counting the one at this position as later.
    sid = np.cumsum(sentence_end) - sentence_end
    n_sent = int(sentence_end.sum())
    inner_space = space.copy()
    inner_space[1:] &= ~sentence_end[:-1]  # the space after a sentence starts no word of it
    words = np.bincount(sid[inner_space], minlength=n_sent) + 1.0
    sent_doc = doc_of[sentence_end]
    per_doc = np.maximum(np.bincount(sent_doc, minlength=n), 1)
    mean = np.bincount(sent_doc, weights=words, minlength=n) / per_doc
    sq = np.bincount(sent_doc, weights=words**2, minlength=n) / per_doc
    std = np.sqrt(np.maximum(sq - mean**2, 0.0))
    out[:, 0] = np.log1p(mean)
    out[:, 1] = np.where(mean > 0, std / np.where(mean > 0, mean, 1.0), 0.0)
    per_k = 1000.0 / np.maximum(lengths, 1)
    for col, mask in enumerate(
        (
            cps == 44,
            (cps == 59) | (cps == 58),
            (cps == 33) | (cps == 63),
            (cps == 34) | (cps == 40) | (cps == 45),
            (cps >= 48) & (cps <= 57),
        ),
        start=2,
    ):
        out[:, col] = np.bincount(doc_of[mask], minlength=n) * per_k
    out[lengths == 0] = 0.0
    return out


def dense_features(docs: Sequence[Doc], stats: Sequence[LexicalStats] | None = None) -> np.ndarray:
    """(len(docs), len(DENSE_FEATURES)) raw (unscaled) stylometric features."""
    if stats is None:
        stats = docs_stats(docs)
    out = np.empty((len(docs), len(DENSE_FEATURES)), dtype=np.float64)
    for i, s in enumerate(stats):
        out[i, :8] = (
            s.compression_ratio,
            s.distinct_1,
            s.distinct_2,
            s.distinct_3,
            s.repeated_ngram_share,
            np.log1p(s.n_words),
            np.log1p(s.longest_repeated_span),
            s.n_chars / s.n_words if s.n_words else 0.0,
        )
    out[:, 8:] = _char_stats([_clip(d)[0] for d in docs])
    return out
