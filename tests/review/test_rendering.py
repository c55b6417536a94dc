"""Per-kind rendering data: turns, numbered code tokens, line alignment."""

from review import rendering


def test_chat_turns_mark_the_assistant_turns_under_review():
    turns = rendering.chat_turns(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "name": "b"}]
    )
    assert [(t.role, t.under_review) for t in turns] == [("user", False), ("assistant", True)]
    assert turns[1].name == "b"


def test_code_lines_are_numbered_and_classed_without_any_markup():
    lines = rendering.code_lines("def f():\n    return '<b>'\n", "python")
    assert [line.number for line in lines] == [1, 2]
    assert ("k", "def") in lines[0].tokens
    assert any(css.startswith("s") and "<b>" in text for css, text in lines[1].tokens)


def test_code_in_an_unknown_language_is_shown_as_plain_lines():
    lines = rendering.code_lines("a\nb", "no-such-language")
    assert [[text for _, text in line.tokens] for line in lines] == [["a"], ["b"]]


def test_aligned_lines_pair_equal_lines_and_leave_gaps():
    rows = rendering.aligned_lines("a\nb\nc", "a\nx\nc\nd")
    assert [(r.left, r.right, r.same) for r in rows] == [
        ("a", "a", True),
        ("b", "x", False),
        ("c", "c", True),
        ("", "d", False),
    ]
