"""Untrusted item texts stay inert in a real browser: every payload is shown as the text it is,
and none of them runs. Each payload, if it ever ran, would set window.__pwned, change the title
or open a dialog; the tests look for all three on every review page that shows item text."""

from typing import Any

import pytest

from corpus.models import Item
from review.models import Decision
from tests.review.conftest import add_to_group, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUN = "window.__pwned=1;document.title='pwned';alert('pwned')"

PAYLOADS = [
    f"<script>{RUN}</script>",
    f'<img src=x onerror="{RUN}">',
    f'<svg onload="{RUN}"><circle r=9></circle></svg>',
    f"<svg><script>{RUN}</script></svg>",
    f'<a href="javascript:{RUN}">click me</a>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    f'<body onload="{RUN}">',
    f'"><script>{RUN}</script>',
    f"'><svg/onload={RUN}>",
    f"</textarea></title></style><script>{RUN}</script>",
    f'<details open ontoggle="{RUN}">x</details>',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{RUN}">',
    f'<meta http-equiv="refresh" content="0;url=javascript:{RUN}">',
    f'<object data="javascript:{RUN}"></object>',
    f'<form action="javascript:{RUN}"><button>go</button></form>',
    "<style>body{display:none}</style>",
    f'<div hx-get="/review/" hx-trigger="load" hx-on:htmx:load="{RUN}">htmx</div>',
    f"[click me](javascript:{RUN})",
    f'![x](https://x.invalid/x.png" onerror="{RUN})',
    f'<a href="data:text/html,<script>{RUN}</script>">data link</a>',
    "{{ 7|add:7 }} {% debug %} ${7*7} #{7*7}",
    "&lt;script&gt;already escaped&lt;/script&gt; &amp;amp;",
    f"javascript:{RUN}",
    f'<noscript><p title="</noscript><img src=x onerror={RUN}>">',
    f'<base href="javascript:{RUN}//">',
    f'<link rel=stylesheet href="javascript:{RUN}">',
]


def assert_inert(page: Any, title: str) -> None:
    state = page.evaluate("() => [window.__pwned === undefined, document.title]")
    assert state == [True, title], page.url
    assert page.dialogs == [], page.url
    assert page.locator("a[href^='javascript:'], [onerror], [onload], iframe, object").count() == 0
    assert page.locator("body").is_visible()


@pytest.fixture
def hostile(dataset, reviewer, admin_user):
    """One queued item per payload, with the payload in every field the pages show; each is the
    near-duplicate of a previous one so the side-by-side marks go through payloads too."""
    add_to_group(reviewer, "reviewer")
    items = []
    previous = None
    for index, payload in enumerate(PAYLOADS):
        score = {
            "detector_name": payload[:60],
            "detector_probability": 0.9,
            "degenerate": True,
            "degenerate_reason": payload[:200],
        }
        if previous is not None:
            score.update(near_duplicate_of=previous, near_duplicate_jaccard=0.9)
        item = make_item(
            dataset,
            priority=float(len(PAYLOADS) - index),
            text=f"{payload}\nshared words in every text here {index}",
            generator_model=payload[:200],
            generator_version=payload[:100],
            prompt=payload,
            sampling_params={payload[:40]: payload},
            score=score,
        )
        items.append(item)
        previous = item
    return items


def test_payloads_stay_inert_while_triaging(page, login_as, context, hostile, reviewer):
    login_as(context, reviewer)
    page.goto("/review/demo/")
    title = page.title()

    for item, payload in zip(hostile, PAYLOADS, strict=True):
        assert page.evaluate("() => document.querySelector('#triage').dataset.item") == str(item.pk)
        assert page.locator("#item-text").inner_text().startswith(payload)
        assert_inert(page, title)
        page.keyboard.press("s")  # skip: the next payload arrives through an htmx swap
        page.wait_for_function(
            """id => document.querySelector('#triage').dataset.item !== id
                    && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')""",
            arg=str(item.pk),
        )
    assert_inert(page, title)
    assert page.problems == []


def test_payloads_stay_inert_on_item_list_and_admin_pages(
    page, login_as, context, hostile, reviewer, admin_user
):
    # A rejection note is shown on the item page once the item is decided.
    decided = hostile[0]
    Item.objects.filter(pk=decided.pk).update(state="rejected")
    Decision.objects.create(
        item=decided,
        dataset=decided.dataset,
        reviewer=reviewer,
        verdict="reject",
        reason="unsafe",
        note=PAYLOADS[1],
    )
    login_as(context, admin_user)
    page.goto("/review/demo/items/")
    title = page.title()
    assert_inert(page, title)
    assert page.locator("td.preview").count() == len(PAYLOADS) - 1

    for item in hostile:
        page.goto(f"/review/demo/items/{item.pk}/")
        assert_inert(page, page.title())
        assert page.locator("#item-text").inner_text().startswith(PAYLOADS[hostile.index(item)])
    page.goto("/review/demo/reviewers/")
    assert_inert(page, page.title())
    assert page.problems == []
