"""Chat transcripts and code completions of the demo, written for Synthgate.

Teams that feed model output back into training mostly have three kinds of it: prose, chat
transcripts and code. These batches show the last two: a support bot's transcripts (one clean,
one whose assistant answer copies another's, one that loops), and generated functions (clean,
a copy with new comments and layout, and a completion stuck repeating a block).
"""

from typing import Any

SUPPORT_BOT = {
    "generator_model": "helpdesk-assistant",
    "generator_version": "4.1",
    "sampling_params": {"temperature": 0.3, "top_p": 0.9},
}
CODER = {
    "generator_model": "orbit-coder",
    "generator_version": "0.9",
    "sampling_params": {"temperature": 0.2, "max_tokens": 512},
}

_SYSTEM = "You are the support assistant of a small bicycle shop. Be brief and concrete."
_REFUND = (
    "You can return an unused part within thirty days with the receipt. Bring it to the counter "
    "or post it back with the order number written on the parcel, and we refund the card you "
    "paid with within five working days. Worn parts such as brake pads and chains cannot be "
    "returned once fitted, but we will gladly check them if you think they were faulty."
)


def _chat(external_id: str, turns: list[tuple[str, str]], case: str) -> dict[str, Any]:
    return {
        "kind": "chat",
        "external_id": external_id,
        "origin": "synthetic",
        "prompt": "Answer the customer in the shop's support chat.",
        "messages": [{"role": "system", "content": _SYSTEM}]
        + [{"role": role, "content": content} for role, content in turns],
        **SUPPORT_BOT,
        "metadata": {"demo_case": case},
    }


CHAT_ITEMS = [
    _chat(
        "chat-refund",
        [("user", "Can I return a saddle I bought last week?"), ("assistant", _REFUND)],
        "chat-clean",
    ),
    _chat(
        "chat-puncture",
        [
            ("user", "My tyre keeps going flat overnight. What should I check?"),
            (
                "assistant",
                "Pump it up and listen, or dunk the tube in a bowl of water and look for bubbles. "
                "If the tube is fine, run your fingers slowly round the inside of the tyre: a "
                "thorn or a sliver of glass often stays lodged there and punctures every new "
                "tube. Check that the rim tape covers every spoke hole, too.",
            ),
            ("user", "Found a thorn, thanks!"),
            ("assistant", "Glad to hear it. A new tube and you are good to go."),
        ],
        "chat-clean",
    ),
    _chat(
        "chat-refund-copy",
        [("user", "What is your refund policy for a pump?"), ("assistant", _REFUND)],
        "chat-near-duplicate: same answer to a different question",
    ),
    _chat(
        "chat-loop",
        [
            ("user", "Do you service electric bikes?"),
            ("assistant", "Yes, we service electric bikes. " * 25),
        ],
        "chat-degenerate",
    ),
]

_CLEAN = '''def median(values):
    """The middle value of a non-empty list (the mean of the two middle ones if even)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of an empty list")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
'''

_PARSER = '''def parse_duration(text):
    """Parse durations like "1h30m" or "45s" into seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for char in text.strip():
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            raise ValueError(f"bad duration: {text!r}")
    if number:
        raise ValueError(f"missing unit at the end of {text!r}")
    return total
'''

_PARSER_COPY = "# Helper generated for the scheduling module\n" + _PARSER.replace(
    "    ", "\t"
).replace(
    '"""Parse durations like "1h30m" or "45s" into seconds."""', "# converts 1h30m style strings"
)

_LOOP = (
    "def load_all(paths):\n    results = []\n"
    + (
        "    for path in paths:\n"
        "        with open(path) as handle:\n"
        "            results.append(handle.read())\n"
    )
    * 6
    + "    return results\n"
)


def _code(external_id: str, text: str, case: str, language: str = "python") -> dict[str, Any]:
    return {
        "kind": "code",
        "external_id": external_id,
        "origin": "synthetic",
        "text": text,
        "language": language,
        "prompt": "Write a small, well-documented helper function.",
        **CODER,
        "metadata": {"demo_case": case},
    }


CODE_ITEMS = [
    _code("code-median", _CLEAN, "code-clean"),
    _code("code-parse-duration", _PARSER, "code-clean"),
    _code("code-parse-duration-copy", _PARSER_COPY, "code-near-duplicate: new comments, tabs"),
    _code("code-loop", _LOOP, "code-degenerate: repeated block"),
    _code(
        "code-sql",
        "SELECT source, count(*) AS items\nFROM corpus_item\nWHERE state = 'approved'\n"
        "GROUP BY source\nORDER BY items DESC;\n",
        "code-clean",
        language="sql",
    ),
]
