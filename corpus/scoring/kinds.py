"""What each kind of item is scored on: prose as is, chat on its assistant turns, code on its
tokens without whitespace and comments.

- chat: near-duplicates and diversity look at what the model said, not at the prompts users
  typed (two transcripts that share a system prompt are not near-duplicates); the whole
  transcript is still hashed for exact duplicates.
- code: shingles come from the lexer's tokens with comments and whitespace dropped, so
  re-indenting or re-commenting a function does not hide a copy; degeneration also looks for
  repeated blocks of lines, which is how code generation loops.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Comment
from pygments.util import ClassNotFound

from . import minhash

KINDS = ("text", "chat", "code")
ROLES = ("system", "user", "assistant", "tool")

# Repeated-block rule for code: at least this many substantive lines, of which this share are
# copies of another line of the same item, in runs of at least REPEATED_RUN lines.
MIN_CODE_LINES = 12
MAX_REPEATED_LINE_SHARE = 0.5
REPEATED_RUN = 3
_SUBSTANTIVE = 8  # characters; shorter lines ("}", "end", "else:") repeat naturally


def transcript_text(messages: Sequence[dict[str, Any]]) -> str:
    """The whole transcript as one text (the stored ``text`` of a chat item, and what its
    content hash covers)."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def assistant_text(messages: Sequence[dict[str, Any]]) -> str:
    return "\n\n".join(m["content"] for m in messages if m["role"] == "assistant")


@lru_cache(maxsize=256)
def lexer_for(language: str) -> Lexer:
    """Pygments lexer for a language name or alias; raises ValueError for an unknown one."""
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        raise ValueError(f"unknown language '{language}'") from None


def canonical_language(language: str) -> str:
    """The lexer's primary alias, so "py", "python3" and "Python" are stored alike."""
    lexer = lexer_for(language.strip().lower())
    return lexer.aliases[0] if lexer.aliases else language.strip().lower()


def code_tokens_text(code: str, language: str) -> str:
    """The code's tokens joined by single spaces, comments and whitespace dropped."""
    tokens = []
    for token_type, value in lexer_for(language).get_tokens(code):
        if token_type in Comment:
            continue
        stripped = value.strip()
        if stripped:
            tokens.append(stripped)
    return " ".join(tokens)


def code_repeated_blocks(code: str) -> tuple[bool, str | None]:
    """Flag code whose substantive lines are mostly repeated blocks (a generation loop)."""
    lines = [line.strip() for line in code.splitlines()]
    substantive = [line for line in lines if len(line) >= _SUBSTANTIVE]
    if len(substantive) < MIN_CODE_LINES:
        return False, None
    counts = Counter(substantive)
    # A line counts as repeated when it sits in a run of REPEATED_RUN consecutive substantive
    # lines that all occur more than once: scattered repeats (imports, returns) do not.
    repeated_flags = [counts[line] > 1 for line in substantive]
    in_block = [False] * len(substantive)
    run_start = 0
    for i in range(len(substantive) + 1):
        if i == len(substantive) or not repeated_flags[i]:
            if i - run_start >= REPEATED_RUN:
                for j in range(run_start, i):
                    in_block[j] = True
            run_start = i + 1
    share = sum(in_block) / len(substantive)
    if share >= MAX_REPEATED_LINE_SHARE:
        return True, f"repeated blocks: {share:.0%} of substantive lines repeat in blocks"
    return False, None


def shingle_size(kind: str) -> int:
    """Words per MinHash shingle for items of `kind` (see `minhash`): code tokens take one more
    than prose, as short identifier runs recur across unrelated code."""
    return minhash.CODE_SHINGLE_SIZE if kind == "code" else minhash.SHINGLE_SIZE


def scoring_text(
    kind: str, text: str, messages: Sequence[dict[str, Any]] | None, language: str | None
) -> str:
    """The text near-duplicate, diversity and detector signals are computed on."""
    if kind == "chat" and messages:
        return assistant_text(messages)
    if kind == "code" and language:
        return code_tokens_text(text, language)
    return text
