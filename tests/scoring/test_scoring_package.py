"""The package surface: score_text(s), versions, and the no-Django rule."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import corpus.scoring as scoring
from corpus.scoring import lexical, lsh, minhash
from corpus.scoring.text import content_hash

PACKAGE_DIR = Path(scoring.__file__).resolve().parent


def test_score_text_computes_every_cheap_signal():
    text = "The quick brown fox jumps over the lazy dog. " * 3
    result = scoring.score_text(text)
    assert result["scorer_version"] == scoring.SCORER_VERSION
    assert result["content_hash"] == content_hash(text)
    assert result["n_words"] == 27
    assert result["n_shingles"] == minhash.shingles(text).size
    sig = minhash.from_bytes(result["minhash"])
    assert np.array_equal(sig, minhash.signature(minhash.shingles(text)))
    assert result["band_keys"] == lsh.band_keys(sig)
    assert result["lexical"] == lexical.lexical_stats(text).as_dict()
    assert (result["degenerate"], result["degeneration_reason"]) == lexical.degeneration(text)


def test_score_texts_equals_score_text_one_by_one(rng, vocab):
    from corpus.scoring.synthetic import random_text

    texts = ["", "Hi", "spam " * 300] + [random_text(rng, vocab, n) for n in (3, 50, 400)]
    assert scoring.score_texts(texts) == [scoring.score_text(t) for t in texts]


def test_score_text_flags_degenerate_text():
    result = scoring.score_text("As an AI language model, I cannot. " * 40)
    assert result["degenerate"]
    assert result["degeneration_reason"]


def test_scoring_package_never_imports_django():
    offenders = []
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "django"]
    assert offenders == []
