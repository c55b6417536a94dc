"""How each kind of item is shown to a reviewer: prose as text, a transcript as turns with the
assistant turns marked as the part under review, code with line numbers and server-side syntax
highlighting.

Everything returned here is plain data (strings, classes); templates render it through
auto-escaping, so producer content never becomes markup. Highlighting is Pygments' tokenizer
only: each token becomes a (css class, text) pair, and no HTML comes out of Pygments.
"""

import difflib
from dataclasses import dataclass
from typing import Any

from pygments.token import STANDARD_TYPES, Token

from corpus.scoring.kinds import lexer_for

MAX_CODE_LINES = 2000


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    name: str | None
    under_review: bool


@dataclass(frozen=True)
class CodeLine:
    number: int
    tokens: list[tuple[str, str]]  # (css class, text)


def chat_turns(messages: list[dict[str, Any]] | None) -> list[Turn]:
    return [
        Turn(
            role=m["role"],
            content=m["content"],
            name=m.get("name"),
            under_review=m["role"] == "assistant",
        )
        for m in messages or []
    ]


def _css_class(token_type: Any) -> str:
    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES.get(token_type, "")


def code_lines(code: str, language: str) -> list[CodeLine]:
    """The code split into numbered lines of classed tokens (Pygments' short class names, as
    in static/css/pygments.css)."""
    try:
        tokens = list(lexer_for(language).get_tokens(code)) if language else []
    except ValueError:
        tokens = []
    if not tokens:
        tokens = [(Token.Text, code)]
    lines: list[CodeLine] = []
    current: list[tuple[str, str]] = []
    for token_type, value in tokens:
        css = _css_class(token_type)
        parts = value.split("\n")
        for index, part in enumerate(parts):
            if index:
                lines.append(CodeLine(number=len(lines) + 1, tokens=current))
                current = []
            if part:
                current.append((css, part))
        if len(lines) >= MAX_CODE_LINES:
            break
    if current:
        lines.append(CodeLine(number=len(lines) + 1, tokens=current))
    return lines[:MAX_CODE_LINES]


@dataclass(frozen=True)
class AlignedRow:
    left_number: int | None
    left: str
    right_number: int | None
    right: str
    same: bool


def aligned_lines(left: str, right: str, *, limit: int = 400) -> list[AlignedRow]:
    """Two texts side by side line by line (code lines, or a transcript's turns), equal lines
    paired and marked, inserted and deleted ones against a gap."""
    a, b = left.splitlines()[:limit], right.splitlines()[:limit]
    rows: list[AlignedRow] = []
    matcher = difflib.SequenceMatcher(
        a=[x.strip() for x in a], b=[x.strip() for x in b], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                rows.append(AlignedRow(i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k], True))
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            li, rj = i1 + k, j1 + k
            rows.append(
                AlignedRow(
                    li + 1 if li < i2 else None,
                    a[li] if li < i2 else "",
                    rj + 1 if rj < j2 else None,
                    b[rj] if rj < j2 else "",
                    False,
                )
            )
    return rows
