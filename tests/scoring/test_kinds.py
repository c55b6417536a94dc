"""Pure per-kind text derivation: chat assistant turns, code tokens, repeated code blocks."""

import pytest

from corpus.scoring import kinds, minhash

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "How do I boil an egg?"},
    {"role": "assistant", "content": "Put it in boiling water for nine minutes."},
]


def test_transcript_text_keeps_roles_and_order():
    assert kinds.transcript_text(CHAT).splitlines()[0] == "system: You are a helpful assistant."
    assert kinds.transcript_text(CHAT).endswith(
        "assistant: Put it in boiling water for nine minutes."
    )


def test_chat_is_scored_on_assistant_turns_only():
    text = kinds.scoring_text("chat", kinds.transcript_text(CHAT), CHAT, None)
    assert text == "Put it in boiling water for nine minutes."


def test_code_tokens_ignore_whitespace_and_comments():
    a = "def add(a, b):\n    # add two numbers\n    return a + b\n"
    b = "def add(a,b):  # sum\n        return a+b"
    assert kinds.code_tokens_text(a, "python") == kinds.code_tokens_text(b, "python")
    assert "add two numbers" not in kinds.code_tokens_text(a, "python")


def test_code_copies_with_new_comments_are_near_duplicates():
    body = "\n".join(f"    total_{i} = compute(values[{i}], factor={i})" for i in range(30))
    a = "def run(values):\n" + body + "\n    return total_0\n"
    b = (
        "# generated\ndef run(values):\n"
        + body.replace("    ", "\t")
        + "\n    return total_0  # done\n"
    )
    sa = minhash.shingles(kinds.code_tokens_text(a, "python"))
    sb = minhash.shingles(kinds.code_tokens_text(b, "python"))
    assert minhash.exact_jaccard(sa, sb) == 1.0


def test_language_aliases_are_canonical_and_unknown_ones_refused():
    assert kinds.canonical_language("Python3") == "python"
    assert kinds.canonical_language("js") == "javascript"
    with pytest.raises(ValueError, match="unknown language 'klingon'"):
        kinds.canonical_language("klingon")


def test_repeated_code_blocks_are_degenerate():
    block = ["for row in rows:", "    total += compute_value(row)", "    print('value', total)"]
    looping = "\n".join(block * 6)
    assert kinds.code_repeated_blocks(looping)[0] is True
    varied = "\n".join(f"value_{i} = compute_value(rows[{i}])" for i in range(30))
    assert kinds.code_repeated_blocks(varied) == (False, None)


def test_short_code_is_never_flagged():
    assert kinds.code_repeated_blocks("x = compute()\nx = compute()\nx = compute()") == (
        False,
        None,
    )
