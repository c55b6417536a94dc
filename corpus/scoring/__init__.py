"""Pure scoring for Synthgate: hashing, MinHash/LSH, lexical statistics, detectors.

No Django import anywhere in this package, so it can be tested and benchmarked alone and run in
any worker. `score_text` / `score_texts` compute every cheap signal of an item in one pass over
the text (normalized and tokenized once); the detector and the LSH index are separate because
they carry state (trained weights, the corpus index).

`SCORER_VERSION` is stored with each score. Bump it whenever a change here alters any stored
value (the content hash, signatures, band keys, lexical statistics or degeneration rules), so
stale scores can be found and recomputed (`manage.py rescore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import lexical, lsh, minhash
from .text import NORMALIZATION_VERSION, content_hash, hash_normalized, normalize, prepare

__all__ = [
    "NORMALIZATION_VERSION",
    "SCORER_VERSION",
    "content_hash",
    "normalize",
    "score_text",
    "score_texts",
]

SCORER_VERSION = "2"  # 2: word-bigram shingles, 32 x 4 bands


def score_texts(texts: Sequence[str]) -> list[dict[str, Any]]:
    """Cheap signals for many texts; MinHash is computed for the whole batch at once.

    Each dict holds:
      scorer_version      SCORER_VERSION
      content_hash        sha256 hex of the normalized text (the exact-duplicate key)
      n_chars, n_words    of the normalized text
      n_shingles          distinct MinHash shingles (0 only for an empty text)
      minhash             signature bytes (minhash.SIGNATURE_BYTES, little-endian uint32)
      band_keys           LSH bucket keys (list of bytes; empty for an empty text)
      lexical             LexicalStats.as_dict()
      degenerate, degeneration_reason
    Bytes values are not JSON: store them in binary columns (or hex-encode).
    """
    docs = [prepare(t) for t in texts]
    sigs, shingle_sets = minhash.signatures_and_shingles(docs)
    results = []
    for doc, sig, shingles, stats in zip(
        docs, sigs, shingle_sets, lexical.docs_stats(docs), strict=True
    ):
        degenerate, reason = lexical.degeneration(stats)
        results.append(
            {
                "scorer_version": SCORER_VERSION,
                "content_hash": hash_normalized(doc.normalized),
                "n_chars": len(doc.normalized),
                "n_words": doc.n_words,
                "n_shingles": int(shingles.size),
                "minhash": minhash.to_bytes(sig),
                "band_keys": lsh.band_keys(sig),
                "lexical": stats.as_dict(),
                "degenerate": degenerate,
                "degeneration_reason": reason,
            }
        )
    return results


def score_text(text: str) -> dict[str, Any]:
    """Cheap signals of one text (see `score_texts`), without the detector."""
    return score_texts([text])[0]
