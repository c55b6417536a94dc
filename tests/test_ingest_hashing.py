"""The content hash is the idempotency key of stored items: its fast paths must give exactly the
value of the full normalization (NFKC, casefold, whitespace collapsed), never another."""

import hashlib
import random
import re
import unicodedata

import pytest

from corpus.scoring.text import content_hash, normalize


def reference_normalize(text: str) -> str:
    # normalize() as first written, without its ASCII shortcut.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def reference_hash(text: str) -> str:
    return hashlib.sha256(reference_normalize(text).encode("utf-8")).hexdigest()


# Every ASCII whitespace str.split() knows (including the separators 0x1C - 0x1F), letters of
# both cases and a few other characters, so random texts hit each branch of the fast path.
ALPHABET = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x00", "a",
            "Z", "q", "Q", "1", ".", "_", "\x7f", "~"]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "Hello world",
        "Hello  world",
        " Hello world",
        "Hello world ",
        "Hello\tworld",
        "Hello\x1cworld",
        "HELLO WORLD.",
        "a",
        "   \n\t ",
        "Straße",
        "caf\u00e9 \u00a0 ok",
        "a\ud800b",
    ],
)
def test_content_hash_matches_the_full_normalization(text):
    assert normalize(text) == reference_normalize(text)
    assert content_hash(text) == reference_hash(text)


def test_content_hash_matches_the_full_normalization_on_random_ascii_texts():
    rng = random.Random(20261125)
    for _ in range(5000):
        text = "".join(rng.choices(ALPHABET, k=rng.randint(0, 12)))
        assert content_hash(text) == reference_hash(text), repr(text)
        assert normalize(text) == reference_normalize(text), repr(text)


def test_content_hash_of_plain_ascii_prose_is_pinned():
    # The stored keys of existing data: this value must never change.
    expected = hashlib.sha256(b"the quick brown fox.").hexdigest()
    assert content_hash("The Quick brown fox.") == expected
    assert content_hash("The Quick\n brown  fox. ") == content_hash("the quick brown fox.")
