"""The payload list applied to chat message contents and to code: turns, highlighted code
lines and the line-aligned near-duplicate view stay inert in a real Chromium."""

import pytest

from corpus.scoring.kinds import transcript_text
from tests.browser.test_xss import PAYLOADS, assert_inert
from tests.review.conftest import add_to_group, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hostile_kinds(dataset, reviewer):
    add_to_group(reviewer, "reviewer")
    messages = [
        {"role": "system", "content": PAYLOADS[0]},
        {"role": "user", "content": "\n".join(PAYLOADS[:12]), "name": PAYLOADS[4][:200]},
        {"role": "assistant", "content": "\n".join(PAYLOADS[12:])},
    ]
    chat = make_item(
        dataset, priority=3.0, kind="chat", messages=messages, text=transcript_text(messages)
    )
    code_text = "\n".join(f"x = '{p}'  # {p}" for p in PAYLOADS)
    code = make_item(dataset, priority=2.0, kind="code", language="python", text=code_text)
    copy = make_item(
        dataset,
        priority=1.0,
        kind="code",
        language="html",
        text="\n".join(PAYLOADS),
        score={"near_duplicate_of": code, "near_duplicate_jaccard": 0.9},
    )
    return [chat, code, copy]


def test_payloads_in_transcripts_and_code_stay_inert(
    page, login_as, context, hostile_kinds, reviewer
):
    login_as(context, reviewer)
    for item in hostile_kinds:
        page.goto(f"/review/demo/items/{item.pk}/")
        title = page.title()
        assert_inert(page, title)
    chat, code, copy = hostile_kinds
    page.goto(f"/review/demo/items/{chat.pk}/")
    assert page.locator(".turn").count() == 3
    assert page.locator(".turn.under-review").count() == 1
    assert PAYLOADS[12] in page.locator(".turn.under-review .text").inner_text()
    page.goto(f"/review/demo/items/{code.pk}/")
    assert page.locator("table.code tr").count() == len(PAYLOADS)
    assert page.locator("table.code .s1, table.code .s2").count() > 0  # highlighted strings
    page.goto(f"/review/demo/items/{copy.pk}/")
    assert page.locator("table.aligned tr").count() > 0
    assert_inert(page, page.title())
    assert page.problems == []
