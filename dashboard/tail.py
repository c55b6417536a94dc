"""Tail coverage, the pure part: which n-grams of a text count. No Django import.

Definition (README, "Dataset dashboard"): the *rare reference n-grams* are the word n-grams
(``TAIL_N`` words, hashed as ``corpus.scoring.text.ngram_hashes`` does) that occur in at least
one and at most ``RARE_MAX_DOCS`` documents of the dataset's human reference corpus. *Tail
coverage* is the share of them that occur in at least one approved (non-reference) item. Only
n-grams whose hash is 0 modulo ``sample`` are kept (a uniform hash sample, so the share is an
unbiased estimate of the full one), which bounds the table that counts them.

Word unigrams by default: model collapse shows first as rare words disappearing from generated
text (Shumailov et al. 2024, "AI models collapse when trained on recursively generated data"),
and unigrams, unlike longer n-grams, can be shared by texts on different topics.
"""

from __future__ import annotations

import numpy as np

from corpus.scoring.text import ngram_hashes, prepare

TAIL_N = 1
RARE_MAX_DOCS = 2


def tail_grams(text: str, *, sample: int = 1, n: int = TAIL_N) -> np.ndarray:
    """The distinct sampled n-gram hashes of ``text``, as int64 (how the database stores them)."""
    doc = prepare(text)
    if doc.hashes.size < n:
        return np.empty(0, dtype=np.int64)
    grams = np.unique(ngram_hashes(doc.hashes, n))
    if sample > 1:
        grams = grams[grams % np.uint64(sample) == 0]
    return grams.view(np.int64)
