"""Lexical diversity and degeneration statistics of one text.

Metrics (all on the normalized text and its word tokens, see `text.prepare`):

distinct_n (n = 1, 2, 3)
    Unique word n-grams / total word n-grams (Li et al. 2016). Falls with length (Heaps' law),
    so compare texts of similar length or use it only with length guards, as below.
compression_ratio
    UTF-8 bytes / gzip-compressed bytes, the measure recommended by Shaib et al. 2024
    ("Standardizing the Measurement of Text Diversity"): repetition compresses well. The size is
    exactly `len(gzip.compress(data))` (level 9; checked in the tests) but computed with a
    deflate window sized to the input, which is 3x cheaper for short texts than `gzip.compress`,
    whose fixed 32 KiB window costs more to set up than compressing 1 KB.
repeated_ngram_share
    Share of word 4-gram occurrences whose 4-gram occurs more than once in the text. 4-grams,
    not 3-grams, because natural prose repeats many 3-grams ("one of the", "as well as").
longest_repeated_span
    Length in words of the longest word sequence occurring at least twice (occurrences may
    overlap, so "a a a a" has span 3). Found by exponential then binary search on the length,
    each probe a sort of rolling polynomial hashes of all windows: O(n log^2 n) numpy work, no
    per-n-gram Python loop.

All n-gram identities use 64-bit hashes; the chance that a collision changes a count is about
n**2 / 2**64 for n words, negligible for any real text.

Degeneration
    `degeneration` flags texts that are looping or padded, the failure mode of sampling from a
    language model. Thresholds are deliberately conservative because a flag can auto-reject an
    item without review. They were calibrated on English prose (the GNU/Apache/MPL/CC license
    texts, 105 pieces) and on library documentation (Python, numpy, scipy, scikit-learn and
    Django docstrings, which mix prose with code and tables; 623 pieces), cut into 300 B - 10 KB
    pieces:

        metric                              prose    documentation    threshold
        compression_ratio, max              3.14     5.98             >= 5.0
        repeated 4-gram share, max          0.31     0.85             >= 0.8
        longest repeated span / words, max  0.04     0.36             >= 0.4
        distinct_1 (100-5000 words), min    0.23     0.11             < 0.10

    A text is degenerate when any rule fires:

    - compression_ratio >= 5.0, for texts of at least 200 bytes (shorter ones do not compress);
    - repeated_ngram_share >= 0.8, for texts of at least 50 words;
    - longest_repeated_span >= 20 words *and* >= 40% of the words: a loop repeats most of the
      text, while a long quotation repeated once in a long document does not;
    - distinct_1 < 0.10 for texts of 100 to 5000 words (longer natural texts can get that low).

    On that calibration set the rules flag no prose and 2 of 623 documentation pieces: a code
    sample (compression 5.98) and the near-identical docstrings of json.dump and json.dumps
    back to back (repeated 4-gram share 0.85). Code and tabular data compress better than prose,
    so callers may want to skip the check for items of kind "code".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from .text import Doc, prepare

__all__ = [
    "LexicalStats",
    "degeneration",
    "doc_stats",
    "docs_stats",
    "gzip_size",
    "lexical_stats",
    "longest_repeated_span",
]

# Degeneration thresholds (see the module docstring for how they were chosen).
MAX_COMPRESSION_RATIO = 5.0
MIN_BYTES_FOR_COMPRESSION = 200
MAX_REPEATED_NGRAM_SHARE = 0.8
MIN_WORDS_FOR_REPEATED_SHARE = 50
MIN_REPEATED_SPAN_WORDS = 20
MAX_REPEATED_SPAN_FRACTION = 0.4
MIN_DISTINCT_1 = 0.10
DISTINCT_1_WORD_RANGE = (100, 5000)
REPEATED_NGRAM_N = 4

_GZIP_OVERHEAD = 18  # 10-byte header (no file name) + CRC32 + ISIZE trailer
_MIN_LOOKAHEAD = 262  # zlib keeps this much of the window free of back-references

# Rolling polynomial hash: base B (odd, so invertible mod 2**64) and its powers.
_B = 0x9E3779B97F4A7C15
_B_INV = pow(_B, -1, 1 << 64)
# (B**i, B**-i) for i below the cached length; replaced as a whole so that concurrent threads
# always see a matching pair.
_pow_cache: tuple[np.ndarray, np.ndarray] = (np.ones(1, dtype=np.uint64),) * 2


def gzip_size(data: bytes) -> int:
    """Size of `gzip.compress(data)` (compresslevel 9), computed without the 32 KiB window setup.

    A deflate window of at least len(data) + 262 bytes allows every back-reference the full
    window would, and memLevel 8 (zlib's default) keeps the same hash and block-size choices, so
    the output is byte-identical to gzip's deflate stream.
    """
    wbits = max(9, min(15, (len(data) + _MIN_LOOKAHEAD).bit_length()))
    # One call, as gzip.compress makes it (zlib.compress takes memLevel 8, zlib's default):
    # cheaper than a compressobj's compress and flush.
    return len(zlib.compress(data, 9, -wbits)) + _GZIP_OVERHEAD


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(B**i, B**-i) mod 2**64 for i < n, cached and grown geometrically."""
    global _pow_cache
    pw, inv = _pow_cache
    if pw.size < n:
        size = max(n, 2 * pw.size, 1024)
        pw = np.cumprod(np.r_[np.uint64(1), np.full(size - 1, _B, dtype=np.uint64)])
        inv = np.cumprod(np.r_[np.uint64(1), np.full(size - 1, _B_INV, dtype=np.uint64)])
        _pow_cache = (pw, inv)
    return pw[:n], inv[:n]


class _Windows:
    """Hashes of every length-k window of a token-hash sequence, for any k, in O(n) each.

    Prefix sums of h[j] * B**-j give sum(h[j] * B**-j for j in [i, i+k)); multiplying by B**i
    makes it position-independent: sum(h[i+t] * B**-t). All mod 2**64 (numpy wraps).
    """

    def __init__(self, hashes: np.ndarray) -> None:
        n = hashes.size
        pw, inv = _powers(n)
        self.n = n
        self._pw = pw
        self._prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(hashes * inv, out=self._prefix[1:])

    def of_length(self, k: int) -> np.ndarray:
        m = self.n - k + 1
        if m <= 0:
            return np.empty(0, dtype=np.uint64)
        out = self._prefix[k:] - self._prefix[:m]
        out *= self._pw[:m]
        return out


def _count_distinct(sorted_values: np.ndarray) -> int:
    if sorted_values.size == 0:
        return 0
    return int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1])) + 1


def _has_repeat(values: np.ndarray) -> bool:
    if values.size < 2:
        return False
    s = np.sort(values)
    return bool((s[1:] == s[:-1]).any())


def _longest_repeat(
    windows: _Windows | _SpanWindows, distinct_1: int, known: dict[int, bool] | None = None
) -> int:
    """`known` maps window lengths to whether they repeat, when the caller has found out."""
    n = windows.n
    if n < 2 or distinct_1 == n:
        return 0
    known = known or {}

    def repeats(k: int) -> bool:
        found = known.get(k)
        return _has_repeat(windows.of_length(k)) if found is None else found

    # Repeats are monotone in k (if a k-gram repeats, so does its (k-1)-prefix): find an upper
    # bound by doubling, then bisect. Natural text stops after 3-4 probes.
    lo, hi = 1, 2
    # Length n has a single window, so it never repeats: hi == n is a valid upper bound.
    while hi < n and repeats(hi):
        lo, hi = hi, min(2 * hi, n)
    while hi - lo > 1:  # invariant: lo repeats, hi does not
        mid = (lo + hi) // 2
        if repeats(mid):
            lo = mid
        else:
            hi = mid
    return lo


def longest_repeated_span(text: str) -> int:
    """Length in words of the longest word sequence that occurs at least twice in `text`."""
    doc = prepare(text)
    distinct = _count_distinct(np.sort(doc.hashes))
    return _longest_repeat(_Windows(doc.hashes), distinct)


@dataclass(frozen=True, slots=True)
class LexicalStats:
    """Lexical statistics of one text (see the module docstring for definitions)."""

    n_chars: int
    n_bytes: int
    n_words: int
    distinct_1: float
    distinct_2: float
    distinct_3: float
    compression_ratio: float
    repeated_ngram_share: float
    longest_repeated_span: int

    def as_dict(self) -> dict[str, int | float]:
        # Not dataclasses.asdict: it deep-copies every value, which cost as much as computing
        # half the statistics. The values are immutable numbers; the order is the field order.
        return {name: getattr(self, name) for name in _STAT_FIELDS}


_STAT_FIELDS = tuple(f.name for f in fields(LexicalStats))


def doc_stats(doc: Doc) -> LexicalStats:
    """`LexicalStats` of a prepared document."""
    data = doc.normalized.encode("utf-8")
    n = doc.n_words
    windows = _Windows(doc.hashes)
    uni = np.sort(doc.hashes)
    d1 = _count_distinct(uni)
    distinct = [d1 / n if n else 0.0]
    # Whether windows of a length repeat, read off the sorted windows counted here anyway: the
    # longest-repeat search below would otherwise sort them again.
    known: dict[int, bool] = {}
    for k in (2, 3):
        grams = windows.of_length(k)
        grams.sort()
        count = _count_distinct(grams)
        known[k] = count < grams.size
        distinct.append(count / grams.size if grams.size else 0.0)

    grams = windows.of_length(REPEATED_NGRAM_N)
    repeated_share = 0.0
    known[REPEATED_NGRAM_N] = False
    if grams.size:
        grams.sort()
        eq = grams[1:] == grams[:-1]
        known[REPEATED_NGRAM_N] = bool(eq.any())
        repeated = np.zeros(grams.size, dtype=bool)
        repeated[1:] |= eq
        repeated[:-1] |= eq
        repeated_share = float(np.count_nonzero(repeated)) / grams.size

    return LexicalStats(
        n_chars=len(doc.normalized),
        n_bytes=len(data),
        n_words=n,
        distinct_1=distinct[0],
        distinct_2=distinct[1],
        distinct_3=distinct[2],
        compression_ratio=len(data) / gzip_size(data) if data else 0.0,
        repeated_ngram_share=repeated_share,
        longest_repeated_span=_longest_repeat(windows, d1, known),
    )


# Words per block of `docs_stats`: bounds the padded arrays (8 bytes a word) and the cached
# powers of B to a few MB whatever the batch.
_BLOCK_WORDS = 65_536
_PAD = np.uint64(0xFFFFFFFFFFFFFFFF)


class _SpanWindows:
    """`_Windows.of_length` for one document inside a block's shared prefix sums: a window's
    hash does not depend on where it starts, so slicing the block's arrays gives the same
    values as a `_Windows` of the document alone."""

    def __init__(self, prefix: np.ndarray, pw: np.ndarray, start: int, n: int) -> None:
        self.n = n
        self._prefix = prefix
        self._pw = pw
        self._start = start

    def of_length(self, k: int) -> np.ndarray:
        m = self.n - k + 1
        if m <= 0:
            return np.empty(0, dtype=np.uint64)
        s = self._start
        out = self._prefix[s + k : s + k + m] - self._prefix[s : s + m]
        out *= self._pw[s : s + m]
        return out


def _sorted_rows(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row r: values[starts[r] : starts[r] + counts[r]] sorted, then padded with 2**64 - 1.

    Padding sorts last, so the first counts[r] entries of a row are exactly the row's sorted
    values even where one equals the padding.
    """
    width = max(int(counts.max()), 1)
    columns = np.arange(width)
    index = starts[:, None] + columns
    outside = columns >= counts[:, None]
    np.minimum(index, max(values.size - 1, 0), out=index)
    rows = values[index] if values.size else np.zeros(index.shape, dtype=np.uint64)
    rows[outside] = _PAD
    rows.sort(axis=1)
    return rows


def _row_counts(rows: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `_sorted_rows`: (distinct values, values that occur more than once)."""
    inside = np.arange(rows.shape[1] - 1) < (counts[:, None] - 1)
    eq = (rows[:, 1:] == rows[:, :-1]) & inside
    distinct = np.where(counts > 0, counts - eq.sum(axis=1), 0)
    repeated = np.zeros(rows.shape, dtype=bool)
    repeated[:, 1:] |= eq
    repeated[:, :-1] |= eq
    return distinct, repeated.sum(axis=1)


def docs_stats(docs: Sequence[Doc]) -> list[LexicalStats]:
    """`[doc_stats(doc) for doc in docs]`, with every value the same, computed for many documents
    at once: their window hashes and sorts run as a few numpy calls over blocks of documents of
    similar length (each document a row of a padded array) instead of about twenty calls on
    small arrays per document. Only the longest-repeat search past 4 words, which natural text
    rarely needs, still probes one document at a time."""
    out: list[LexicalStats | None] = [None] * len(docs)
    # Blocks of documents of similar length, so that padding every row to the block's longest
    # costs little.
    order = sorted(range(len(docs)), key=lambda i: docs[i].n_words)
    block: list[int] = []
    words = 0
    for i in order:
        n = docs[i].n_words
        if block and (words + n > _BLOCK_WORDS or n > 2 * docs[block[0]].n_words + 16):
            _block_stats(docs, block, out)
            block, words = [], 0
        block.append(i)
        words += n
    if block:
        _block_stats(docs, block, out)
    return out  # type: ignore[return-value]


def _block_stats(docs: Sequence[Doc], block: list[int], out: list[LexicalStats | None]) -> None:
    lengths = np.fromiter((docs[i].n_words for i in block), dtype=np.int64, count=len(block))
    starts = np.zeros(len(block), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    hashes = np.concatenate([docs[i].hashes for i in block])
    total = hashes.size
    pw, inv = _powers(total)
    prefix = np.zeros(total + 1, dtype=np.uint64)
    np.cumsum(hashes * inv, out=prefix[1:])

    distinct: dict[int, np.ndarray] = {}
    sizes: dict[int, np.ndarray] = {}
    repeated_4 = np.zeros(len(block), dtype=np.int64)
    for k in (1, 2, 3, REPEATED_NGRAM_N):
        m = max(total - k + 1, 0)
        grams = prefix[k : k + m] - prefix[:m]
        grams *= pw[:m]
        counts = np.maximum(lengths - k + 1, 0)
        rows = _sorted_rows(grams, starts, counts)
        distinct[k], repeated = _row_counts(rows, counts)
        sizes[k] = counts
        if k == REPEATED_NGRAM_N:
            repeated_4 = repeated

    # Python ints from here on: indexing numpy arrays one element at a time costs more.
    d1s, d2s, d3s, d4s = (distinct[k].tolist() for k in (1, 2, 3, REPEATED_NGRAM_N))
    m2s, m3s, m4s = (sizes[k].tolist() for k in (2, 3, REPEATED_NGRAM_N))
    for r, (i, n, start, rep4) in enumerate(
        zip(block, lengths.tolist(), starts.tolist(), repeated_4.tolist(), strict=True)
    ):
        normalized = docs[i].normalized
        data = normalized.encode("utf-8")
        d1, m2, m3, m4 = d1s[r], m2s[r], m3s[r], m4s[r]
        known = {2: d2s[r] < m2, 3: d3s[r] < m3, REPEATED_NGRAM_N: d4s[r] < m4}
        out[i] = LexicalStats(
            n_chars=len(normalized),
            n_bytes=len(data),
            n_words=n,
            distinct_1=d1 / n if n else 0.0,
            distinct_2=d2s[r] / m2 if m2 else 0.0,
            distinct_3=d3s[r] / m3 if m3 else 0.0,
            compression_ratio=len(data) / gzip_size(data) if data else 0.0,
            repeated_ngram_share=float(rep4) / m4 if m4 else 0.0,
            longest_repeated_span=_longest_repeat(_SpanWindows(prefix, pw, start, n), d1, known),
        )


def lexical_stats(text: str) -> LexicalStats:
    """`LexicalStats` of `text`."""
    return doc_stats(prepare(text))


def degeneration(text_or_stats: str | LexicalStats) -> tuple[bool, str | None]:
    """(degenerate, reason): whether the text looks like a looping or padded generation.

    The reason names the first rule that fired with the measured value, e.g.
    "compression_ratio 6.12 >= 5.0"; it is stored with an automatic rejection, so a reviewer can
    see why. Accepts precomputed stats to avoid computing them twice.
    """
    s = lexical_stats(text_or_stats) if isinstance(text_or_stats, str) else text_or_stats
    if s.n_bytes >= MIN_BYTES_FOR_COMPRESSION and s.compression_ratio >= MAX_COMPRESSION_RATIO:
        return True, f"compression_ratio {s.compression_ratio:.2f} >= {MAX_COMPRESSION_RATIO}"
    if (
        s.n_words >= MIN_WORDS_FOR_REPEATED_SHARE
        and s.repeated_ngram_share >= MAX_REPEATED_NGRAM_SHARE
    ):
        return True, (
            f"repeated_{REPEATED_NGRAM_N}gram_share {s.repeated_ngram_share:.2f} "
            f">= {MAX_REPEATED_NGRAM_SHARE}"
        )
    span = s.longest_repeated_span
    if span >= MIN_REPEATED_SPAN_WORDS and span >= MAX_REPEATED_SPAN_FRACTION * s.n_words:
        return True, (
            f"longest_repeated_span {span} of {s.n_words} words >= {MAX_REPEATED_SPAN_FRACTION:.0%}"
        )
    low, high = DISTINCT_1_WORD_RANGE
    if low <= s.n_words <= high and s.distinct_1 < MIN_DISTINCT_1:
        return True, f"distinct_1 {s.distinct_1:.3f} < {MIN_DISTINCT_1}"
    return False, None
