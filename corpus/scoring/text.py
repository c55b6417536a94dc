"""Text normalization, content hashing and tokenization shared by every scorer.

Everything downstream (exact-duplicate hashing, MinHash shingles, lexical statistics, detector
features) works on the *normalized* text so that trivial variants -- different Unicode forms,
case, or whitespace layout -- count as the same content. The hash of the normalized text is the
idempotency key for ingest, so `normalize` must never change behaviour silently: if it has to,
bump `NORMALIZATION_VERSION` (and `corpus.scoring.SCORER_VERSION`) and rehash stored items.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import xxhash

__all__ = [
    "NORMALIZATION_VERSION",
    "Doc",
    "content_hash",
    "fmix64",
    "hash_normalized",
    "ngram_hashes",
    "normalize",
    "prepare",
    "token_hashes",
    "word_tokens",
    "words",
]

# Part of the content-hash contract: stored hashes are only comparable within one version.
NORMALIZATION_VERSION = "1"

# \w in Python's re is Unicode-aware: letters, digits and underscore of any script. Punctuation
# is dropped so that "Hello, world" and "Hello world" tokenize (and shingle) identically.
_WORD_RE = re.compile(r"\w+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# For pure-ASCII text the same tokenization is a byte translation plus split, ~3x faster than
# the regex. \w restricted to ASCII is exactly [A-Za-z0-9_]; everything else becomes a space.
_ASCII_NON_WORD_TO_SPACE = (
    bytes(c if (chr(c).isalnum() or c == ord("_")) else ord(" ") for c in range(128)) + b" " * 128
)

# content_hash's ASCII fast path: uppercase to lowercase, and the whitespace str.split() splits
# on other than the space itself (tab, newline, vertical tab, form feed, carriage return and the
# separators 0x1C - 0x1F), to be deleted.
_ASCII_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_ASCII_OTHER_SPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"

# Odd 64-bit constants from MurmurHash3's fmix64 finalizer and xxhash's PRIME64_1.
_FMIX_C1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_PRIME64 = np.uint64(0x9E3779B185EBCA87)
_S33 = np.uint64(33)


def normalize(text: str) -> str:
    """Return the canonical form of `text`: NFKC, casefolded, whitespace runs collapsed, stripped.

    NFKC folds compatibility characters (full-width letters, ligatures, non-breaking spaces) so
    they cannot be used to slip a duplicate past the exact-hash check. Casefold (not lower) is the
    Unicode-correct caseless match ("Straße" == "STRASSE"). Lone surrogates (not Unicode, but
    JSON escapes like "\\ud800" can produce them) become U+FFFD, so that every later encoding
    step -- hashing, tokenizing, storing -- succeeds.
    """
    # str.split() with no argument splits on exactly the characters the regex `\s` matches
    # (both use Py_UNICODE_ISSPACE) and drops leading/trailing runs; it is ~4x faster than re.sub.
    if text.isascii():
        # No ASCII character has a compatibility decomposition, and casefold maps ASCII exactly
        # as lower() does: both NFKC passes are the identity here.
        return " ".join(text.lower().split())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE_RE.sub("\ufffd", text)
    folded = unicodedata.normalize("NFKC", text).casefold()
    # casefold can, in rare cases, produce text that is no longer NFKC; a second pass is cheap
    # (a no-op check for already-normalized text) and makes normalize idempotent, which the hash
    # contract relies on.
    folded = unicodedata.normalize("NFKC", folded)
    return " ".join(folded.split())


def hash_normalized(normalized: str) -> str:
    """sha256 hex digest of an already normalized text (see `content_hash`)."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    """sha256 hex digest of `normalize(text)` encoded as UTF-8: the exact-duplicate key."""
    if text.isascii():
        # Most texts are ASCII with single spaces between words. For them normalize() is
        # lower() and nothing else, and the words need not be split and joined again (that
        # was most of the cost of hashing 1 KB: bench/RESULTS.md, "Ingest over HTTP"). One
        # translate lowercases and deletes the other whitespace; when it deleted none and no
        # space is doubled, leading or trailing, the bytes are normalize(text)'s.
        raw = text.encode("ascii")
        folded = raw.translate(_ASCII_LOWER, _ASCII_OTHER_SPACE)
        if (
            len(folded) == len(raw)
            and b"  " not in folded
            and folded[:1] != b" "
            and folded[-1:] != b" "
        ):
            return hashlib.sha256(folded).hexdigest()
    return hash_normalized(normalize(text))


def word_tokens(normalized: str) -> list[bytes]:
    """Word tokens (Unicode `\\w+` runs) of an already normalized text, UTF-8 encoded.

    Bytes rather than str because every consumer hashes them, and xxhash takes bytes.
    """
    if normalized.isascii():
        return normalized.encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).split()
    return [w.encode("utf-8") for w in _WORD_RE.findall(normalized)]


def words(normalized: str) -> list[str]:
    """Word tokens (Unicode `\\w+` runs) of an already normalized text."""
    return _WORD_RE.findall(normalized)


def token_hashes(tokens: list[bytes]) -> np.ndarray:
    """64-bit xxh3 hash of each token, as uint64.

    xxh3_64 is specified on bytes, so values are identical across processes, machines and
    Python versions (unlike built-in `hash`, which is salted per process).
    """
    return np.fromiter(map(xxhash.xxh3_64_intdigest, tokens), dtype=np.uint64, count=len(tokens))


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finalizer, vectorized: a bijection that spreads every input bit.

    Returns a new array; uint64 arithmetic wraps modulo 2**64 by design.
    """
    x = x ^ (x >> _S33)
    x *= _FMIX_C1
    x ^= x >> _S33
    x *= _FMIX_C2
    x ^= x >> _S33
    return x


def ngram_hashes(hashes: np.ndarray, n: int, salt: int = 0) -> np.ndarray:
    """Order-sensitive 64-bit hashes of every run of `n` consecutive items of `hashes`.

    Combines per-token hashes with a multiply-xor chain and a final avalanche instead of
    re-hashing joined strings: one numpy pass per position rather than one Python call per
    n-gram. The result is deterministic (pure integer arithmetic) and, because the token hashes
    are already uniform 64-bit values, behaves like a random hash of the n-gram (collisions have
    probability ~ m**2 / 2**64 for m distinct n-grams). `salt` separates hash families (e.g. word
    vs character n-grams) so they never alias each other.
    """
    m = hashes.shape[0] - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    acc = hashes[:m] ^ np.uint64((salt * 0x100 + n) & 0xFFFFFFFFFFFFFFFF)
    for k in range(1, n):
        acc *= _PRIME64
        acc ^= hashes[k : k + m]
    return fmix64(acc)


@dataclass(frozen=True, slots=True)
class Doc:
    """A text normalized and tokenized once, shared by all the cheap scorers.

    Scoring a text runs hashing, MinHash, lexical statistics and the detector; preparing the
    text once instead of in each of them is a large share of the per-item budget.
    """

    normalized: str
    tokens: list[bytes]
    hashes: np.ndarray  # uint64 xxh3 hash per token, aligned with `tokens`

    @property
    def n_words(self) -> int:
        return len(self.tokens)


def prepare(text: str) -> Doc:
    """Normalize and tokenize `text` once (see `Doc`)."""
    normalized = normalize(text)
    tokens = word_tokens(normalized)
    return Doc(normalized=normalized, tokens=tokens, hashes=token_hashes(tokens))
