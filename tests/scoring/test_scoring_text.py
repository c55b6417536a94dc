"""normalize / content_hash / tokenization."""

from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.scoring.text import (
    content_hash,
    ngram_hashes,
    normalize,
    prepare,
    token_hashes,
    word_tokens,
    words,
)


def test_normalize_folds_case_unicode_forms_and_whitespace():
    assert normalize("  Hello\u00a0\u00a0WORLD\n\t Straße  ") == "hello world strasse"
    assert normalize("\uff28\uff45\uff4c\uff4c\uff4f") == "hello"  # full-width letters
    assert normalize("\ufb01ne") == "fine"  # ligature
    assert normalize("\u2003\n") == ""


def test_content_hash_collides_for_whitespace_case_and_unicode_variants():
    variants = [
        "The quick brown fox.",
        "the  quick\tbrown\nfox.",
        "  THE QUICK BROWN FOX.  ",
        "The\u00a0quick\u2003brown fox.",
        "\uff34he quick brown fox.",
    ]
    assert len({content_hash(v) for v in variants}) == 1


def test_content_hash_differs_for_different_texts():
    texts = ["The quick brown fox.", "The quick brown fox!", "The quick brown fax.", "", " "]
    hashes = [content_hash(t) for t in texts]
    # "" and " " normalize to the same empty string; everything else differs.
    assert hashes[3] == hashes[4]
    assert len(set(hashes[:4])) == 4


def test_content_hash_is_sha256_hex_of_normalized_utf8():
    assert content_hash(" Héllo  World ") == hashlib.sha256("héllo world".encode()).hexdigest()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_word_tokens_match_the_regex_definition(text):
    normalized = normalize(text)
    assert word_tokens(normalized) == [w.encode() for w in words(normalized)]


def test_word_tokens_drop_punctuation_and_keep_unicode_words():
    assert word_tokens(normalize("Hello, wörld! It's 42_a — ok")) == [
        b"hello",
        "wörld".encode(),
        b"it",
        b"s",
        b"42_a",
        b"ok",
    ]


def test_token_hashes_are_deterministic_xxh3_values():
    # Pinned: stored signatures depend on these never changing.
    assert token_hashes([b"hello"]).tolist() == [10760762337991515389]


def test_ngram_hashes_are_order_sensitive_and_salted():
    h = token_hashes([b"a", b"b", b"c"])
    forward = ngram_hashes(h, 2)
    backward = ngram_hashes(h[::-1].copy(), 2)
    assert forward.size == 2
    assert not set(forward.tolist()) & set(backward.tolist())
    assert not np.array_equal(ngram_hashes(h, 2, salt=1), forward)
    assert ngram_hashes(h, 4).size == 0


def test_prepare_shares_one_normalization():
    doc = prepare("  Two   WORDS ")
    assert doc.normalized == "two words"
    assert doc.tokens == [b"two", b"words"]
    assert doc.n_words == 2
    assert doc.hashes.dtype == np.uint64


def test_lone_surrogates_become_replacement_characters():
    # json.loads('"a\\ud800b"') yields a lone surrogate, which cannot be UTF-8 encoded.
    assert normalize("a\ud800b") == "a\ufffdb"
    assert content_hash("a\ud800b") == content_hash("A\ufffdB")
    assert prepare("x\udfff y").tokens == [b"x", b"y"]
