"""MinHash signatures for near-duplicate detection, vectorized with numpy.

Shingles
    Word *bigrams* of the normalized text (`text.prepare`) for prose and chat, word *trigrams*
    for code tokens (`kinds.shingle_size`), each hashed to 64 bits: every word is hashed with
    xxh3_64 and the words of a shingle are combined arithmetically (`text.ngram_hashes`), which
    is deterministic everywhere and avoids one Python call per shingle. Short shingles are what
    lets a near-copy survive light edits: a changed word breaks `size` shingles, so editing 10% of
    the words of a 1 KB English text keeps word-bigram Jaccard at 0.69 or more (1st percentile;
    word 5-grams, used before, fell to 0.35 - 0.45), while unrelated texts of one domain stay
    below 0.09 (bench/RESULTS.md, "Near-duplicates under edits"). Code shingles are one word
    longer because identifier pairs ("self x", "return self") recur across unrelated functions.
    Texts with fewer than 5 words fall back to *character* 5-grams of their words
    joined by single spaces (so "Hello, world" and "hello world" still match), and texts shorter
    than 5 characters to a single shingle, the whole string. Only an empty normalized text has
    no shingles at all.

Permutations
    `NUM_PERM` (128) affine maps h_k(x) = (a_k * x + b_k) mod 2**32, a_k odd, applied to the top
    32 bits of each shingle hash; the signature keeps min_x h_k(x) for each k. a_k odd makes
    each h_k a bijection, so it adds no collisions, and the inputs are already avalanche-mixed
    64-bit hashes, which is what this (only 2-universal) family needs to behave min-wise
    independently in practice. datasketch >= 2.0 uses the same construction by default (its
    "affine32" scheme). It replaces the textbook (a*x + b) mod (2**61 - 1), which needs 128-bit
    products numpy does not have, and runs as three numpy passes over a (128 x shingles) uint32
    block: measured 7x faster than datasketch from raw text and 12x for the signature step
    (5.5x when datasketch reuses its permutation arrays) at the same accuracy; see
    bench/scoring.py. Truncating shingle hashes to 32 bits merges two distinct shingles with
    probability ~m**2 / 2**33 for m shingles, negligible against the estimator's own error.
    a_k and b_k come from a fixed splitmix64 stream, not numpy's RNG, whose streams may change
    between numpy versions: signatures are stored, so they must be identical on every
    machine and release. `test_signature_golden_values` pins them.

Accuracy
    Each position matches with probability J (the Jaccard similarity of the shingle sets), so
    the estimate is Binomial(128, J) / 128: standard error sqrt(J(1 - J) / 128), at most 0.044
    (at J = 0.5). Hence |estimate - J| <= 0.08 for about 96% of pairs whose J is spread evenly
    over [0, 1] (93% at J = 0.5), and for over 99% of pairs with J <= 0.15 or J >= 0.85, where
    duplicate decisions are made. More permutations are the only way to shrink the error, at
    proportional cost (the error falls with the square root).

Signatures are uint32 arrays, 512 bytes when serialized little-endian (`to_bytes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .text import Doc, fmix64, ngram_hashes, prepare

__all__ = [
    "EMPTY_SIGNATURE",
    "NUM_PERM",
    "CODE_SHINGLE_SIZE",
    "SHINGLE_SIZE",
    "SHINGLING_VERSION",
    "SIGNATURE_BYTES",
    "containment",
    "doc_shingles",
    "estimate_jaccard",
    "exact_jaccard",
    "from_bytes",
    "is_empty",
    "shingles",
    "signature",
    "signatures",
    "signatures_and_raw_shingles",
    "signatures_and_shingles",
    "to_bytes",
    "unique_shingles",
]

NUM_PERM = 128
SHINGLE_SIZE = 2  # words, prose and chat
CODE_SHINGLE_SIZE = 3  # code tokens
_CHAR_SHINGLE_SIZE = 5  # the fallback for short texts
# Fewer words than this: character shingles. One changed word of a three-word text would leave
# its word bigrams nothing in common; character 5-grams still see the rest.
_MIN_WORDS = 5
# Part of the stored-signature contract (with _SEED): bump when shingles change.
SHINGLING_VERSION = "w2c3"
SIGNATURE_DTYPE = np.dtype("<u4")
SIGNATURE_BYTES = NUM_PERM * SIGNATURE_DTYPE.itemsize

# Salts keep word-shingle and character-shingle hashes apart (they must never alias).
_WORD_SALT = 0x57
_CHAR_SALT = 0x43
_WHOLE_SALT = 0x5A

_MASK64 = (1 << 64) - 1
_SEED = 0x5347_5F4D_494E_4831  # "SG_MINH1": changing it invalidates every stored signature
# Shingles per block: 128 x 4096 uint32 = 2 MiB keeps the working set in cache; much larger
# blocks were measured to be several times slower per shingle.
_BLOCK = 4096
_MAX32 = np.uint32(0xFFFFFFFF)
_S32 = np.uint64(32)


def _splitmix64(state: int, count: int) -> list[int]:
    """`count` outputs of the splitmix64 generator (Steele et al.), in exact integer math."""
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        out.append(z ^ (z >> 31))
    return out


def _permutation_params() -> tuple[np.ndarray, np.ndarray]:
    stream = [x >> 32 for x in _splitmix64(_SEED, 2 * NUM_PERM)]
    a = np.array([x | 1 for x in stream[:NUM_PERM]], dtype=np.uint32).reshape(NUM_PERM, 1)
    b = np.array(stream[NUM_PERM:], dtype=np.uint32).reshape(NUM_PERM, 1)
    return a, b


_A, _B = _permutation_params()

EMPTY_SIGNATURE = np.full(NUM_PERM, 0xFFFFFFFF, dtype=SIGNATURE_DTYPE)
EMPTY_SIGNATURE.flags.writeable = False


def _char_ngram_hashes(s: str, n: int, salt: int) -> np.ndarray:
    codepoints = np.frombuffer(s.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    return ngram_hashes(fmix64(codepoints + np.uint64(salt)), n, salt)


def _raw_shingles(doc: Doc, size: int = SHINGLE_SIZE) -> np.ndarray:
    """Shingle hashes of `doc`, possibly with repeats (the minimum does not care)."""
    if doc.n_words >= max(size, _MIN_WORDS):
        return ngram_hashes(doc.hashes, size, _WORD_SALT)
    basis = b" ".join(doc.tokens).decode("utf-8") if doc.tokens else doc.normalized
    if len(basis) >= _CHAR_SHINGLE_SIZE:
        return _char_ngram_hashes(basis, _CHAR_SHINGLE_SIZE, _CHAR_SALT)
    if basis:
        return _char_ngram_hashes(basis, len(basis), _WHOLE_SALT)
    return np.empty(0, dtype=np.uint64)


def _raw_shingles_many(docs: Sequence[Doc], sizes: Sequence[int] | None = None) -> list[np.ndarray]:
    """`[_raw_shingles(doc, size) for doc, size in zip(docs, sizes)]`, the word shingles of all
    documents of one size hashed in one pass over their concatenated token hashes (a shingle's
    hash depends only on its own tokens, so each document's are a slice of it, the windows
    across two documents left out) instead of a dozen numpy calls on small arrays per
    document. `sizes` defaults to `SHINGLE_SIZE` for every document."""
    if sizes is None:
        sizes = [SHINGLE_SIZE] * len(docs)
    parts: list[np.ndarray] = []
    by_size: dict[int, list[int]] = {}
    for i, (doc, size) in enumerate(zip(docs, sizes, strict=True)):
        if doc.n_words >= max(size, _MIN_WORDS):
            by_size.setdefault(size, []).append(i)
            parts.append(_EMPTY)
        else:
            parts.append(_raw_shingles(doc, size))
    for size, words in by_size.items():
        grams = ngram_hashes(np.concatenate([docs[i].hashes for i in words]), size, _WORD_SALT)
        start = 0
        for i in words:
            n = docs[i].n_words
            parts[i] = grams[start : start + n - size + 1]
            start += n
    return parts


_EMPTY = np.empty(0, dtype=np.uint64)
_EMPTY.flags.writeable = False


def unique_shingles(raw: np.ndarray) -> np.ndarray:
    """Sorted unique shingle hashes from `raw_shingles`' (what `doc_shingles` returns)."""
    return _unique(raw)


def _unique(x: np.ndarray) -> np.ndarray:
    # Sort + neighbour compare: several times faster than np.unique on small arrays.
    if x.size <= 1:
        return x.copy()
    s = np.sort(x)
    keep = np.empty(s.shape, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def doc_shingles(doc: Doc, size: int = SHINGLE_SIZE) -> np.ndarray:
    """Sorted unique shingle hashes (uint64) of a prepared document."""
    return _unique(_raw_shingles(doc, size))


def shingles(text: str, size: int = SHINGLE_SIZE) -> np.ndarray:
    """Sorted unique shingle hashes (uint64) of `text` (see the module docstring); `size` is
    the word-shingle length (`CODE_SHINGLE_SIZE` for code tokens)."""
    return doc_shingles(prepare(text), size)


def signature(shingle_hashes: np.ndarray) -> np.ndarray:
    """MinHash signature (uint32[NUM_PERM]) of a set of shingle hashes; repeats are harmless.

    An empty set gets `EMPTY_SIGNATURE` (all 0xFFFFFFFF).
    """
    x = np.asarray(shingle_hashes, dtype=np.uint64)
    if x.size == 0:
        return EMPTY_SIGNATURE.copy()
    x32 = (x >> _S32).astype(np.uint32)
    best = None
    for start in range(0, x32.size, _BLOCK):
        h = _A * x32[start : start + _BLOCK]
        h += _B
        m = h.min(axis=1)
        best = m if best is None else np.minimum(best, m)
    assert best is not None
    return best.astype(SIGNATURE_DTYPE, copy=False)


def signatures(texts: Iterable[str | Doc]) -> np.ndarray:
    """Signatures of many texts (or prepared docs) as a (len(texts), NUM_PERM) uint32 array.

    Concatenates the shingles of consecutive texts into cache-sized blocks and reduces each text's
    segment with `np.minimum.reduceat`, so short texts share the per-call numpy overhead.
    """
    return _signatures_of(
        _raw_shingles_many([t if isinstance(t, Doc) else prepare(t) for t in texts])
    )


def signatures_and_shingles(
    docs: Sequence[Doc], sizes: Sequence[int] | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`signatures(docs)` and `[doc_shingles(d) for d in docs]`, hashing each doc's shingles
    once for both."""
    sigs, raw = signatures_and_raw_shingles(docs, sizes)
    return sigs, [_unique(p) for p in raw]


def signatures_and_raw_shingles(
    docs: Sequence[Doc], sizes: Sequence[int] | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`signatures(docs)` and each doc's shingle hashes as hashed, repeats included and
    unsorted: the scoring pipeline needs a doc's set (`unique_shingles`) only to verify the
    rare near-duplicate candidates, so it sorts only those. `sizes`: word-shingle length per
    doc (default `SHINGLE_SIZE`)."""
    raw = _raw_shingles_many(docs, sizes)
    return _signatures_of(raw), raw


def _signatures_of(parts: list[np.ndarray]) -> np.ndarray:
    n_docs = len(parts)
    best = np.full((n_docs, NUM_PERM), _MAX32, dtype=np.uint32)
    lengths = np.fromiter((p.size for p in parts), dtype=np.int64, count=n_docs)
    nonempty = np.flatnonzero(lengths)
    if nonempty.size:
        flat = (np.concatenate([parts[i] for i in nonempty]) >> _S32).astype(np.uint32)
        doc_of = np.repeat(nonempty, lengths[nonempty])
        for start in range(0, flat.size, _BLOCK):
            block = flat[start : start + _BLOCK]
            owners = doc_of[start : start + _BLOCK]
            # Start of each owner's run inside the block (owners are sorted, runs contiguous).
            run_start = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            h = _A * block
            h += _B
            mins = np.minimum.reduceat(h, run_start, axis=1).T
            rows = owners[run_start]
            best[rows] = np.minimum(best[rows], mins)
    return best.astype(SIGNATURE_DTYPE, copy=False)


def is_empty(sig: np.ndarray) -> bool:
    """True for the signature of a text without shingles (only an empty normalized text)."""
    return bool(np.array_equal(sig, EMPTY_SIGNATURE))


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of positions where the signatures agree."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signature shapes differ: {sig_a.shape} vs {sig_b.shape}")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.shape[-1]


def exact_jaccard(shingles_a: np.ndarray, shingles_b: np.ndarray) -> float:
    """Exact Jaccard similarity of two unique shingle-hash arrays (as from `shingles`).

    Two empty sets count as identical (1.0), matching what their signatures estimate.
    """
    if shingles_a.size == 0 and shingles_b.size == 0:
        return 1.0
    inter = np.intersect1d(shingles_a, shingles_b, assume_unique=True).size
    return inter / (shingles_a.size + shingles_b.size - inter)


def containment(shingles_a: np.ndarray, shingles_b: np.ndarray) -> float:
    """Share of the smaller set's shingles found in the larger one (exact, on unique arrays).

    Jaccard divides by the union, so a short text pasted whole into a long one scores low on
    it; containment says "all of the short text is in the long one" (1.0). Two empty sets: 1.0.
    """
    smaller = min(shingles_a.size, shingles_b.size)
    if smaller == 0:
        return 1.0 if shingles_a.size == shingles_b.size else 0.0
    inter = np.intersect1d(shingles_a, shingles_b, assume_unique=True).size
    return inter / smaller


def to_bytes(sig: np.ndarray) -> bytes:
    """Compact, endianness-fixed serialization (SIGNATURE_BYTES long) for database storage."""
    if sig.shape != (NUM_PERM,):
        raise ValueError(f"expected a signature of shape ({NUM_PERM},), got {sig.shape}")
    return sig.astype(SIGNATURE_DTYPE, copy=False).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    """Inverse of `to_bytes`; returns a writable uint32 array."""
    if len(data) != SIGNATURE_BYTES:
        raise ValueError(f"expected {SIGNATURE_BYTES} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=SIGNATURE_DTYPE).copy()
