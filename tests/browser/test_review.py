"""Triage in a real Chromium: log in, decide by keyboard, undo, bulk reject, the quota
message, and two reviewers side by side who never receive the same item."""

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from corpus.models import Item
from review.models import Decision, ReviewerQuota
from tests.review.conftest import add_to_group, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFERENCE = (
    "The river rose through the night and by morning the low fields were under water. "
    "Neighbours brought boats from the lake and ferried the older people to the school on "
    "the hill, where someone had already lit the stove."
)


def current_item(page: Any) -> str | None:
    return page.evaluate("() => document.querySelector('#triage')?.dataset.item ?? null")


def press_and_wait(page: Any, *keys: str) -> str | None:
    """Press keys; wait for htmx to swap in a different item (or none)."""
    before = current_item(page)
    for key in keys:
        page.keyboard.press(key)
    # A new item, settled: keys are ignored until htmx has bound the new forms (review.js).
    page.wait_for_function(
        """before => (document.querySelector('#triage')?.dataset.item ?? null) !== before
                     && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')""",
        arg=before,
    )
    return current_item(page)


@pytest.fixture
def people(dataset, reviewer, reviewer2):
    add_to_group(reviewer, "reviewer")
    add_to_group(reviewer2, "reviewer")
    return reviewer, reviewer2


@pytest.fixture
def rich_queue(dataset, people):
    """Six queued items; the first has full evidence, including a near-duplicate."""
    reference = make_item(
        dataset,
        text=REFERENCE,
        origin="human",
        state=Item.State.APPROVED,
        is_reference=True,
        generation=0,
        score={
            "lexical": {
                "distinct_1": 0.81,
                "distinct_2": 0.97,
                "distinct_3": 1.0,
                "compression_ratio": 1.6,
                "repeated_ngram_share": 0.0,
            }
        },
    )
    first = make_item(
        dataset,
        priority=10,
        text=REFERENCE.replace("The river rose", "Overnight the river rose")
        + "\n\nIn the end, it is important to note that community matters.",
        generator_model="acme-writer",
        generator_version="2.1",
        prompt="Rewrite the flood story in your own words.",
        sampling_params={"temperature": 0.9, "top_p": 0.95},
        generation=1,
        score={
            "detector_name": "logreg",
            "detector_version": "3",
            "detector_probability": 0.87,
            "near_duplicate_of": reference,
            "near_duplicate_jaccard": 0.62,
            "lexical": {
                "distinct_1": 0.74,
                "distinct_2": 0.95,
                "distinct_3": 0.99,
                "compression_ratio": 1.7,
                "repeated_ngram_share": 0.02,
            },
        },
    )
    from corpus.models import ItemParent

    ItemParent.objects.create(child=first, parent=reference)
    others = [make_item(dataset, priority=float(5 - i)) for i in range(5)]
    return [first, *others]


def test_login_triage_five_by_keyboard_and_undo(page, rich_queue, people):
    alice, _ = people
    page.goto("/accounts/login/?next=/review/demo/")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/review/demo/")
    assert current_item(page) == str(rich_queue[0].pk)
    assert page.locator("mark").count() >= 2  # shared spans, on both sides

    shot = Path(settings.VAR_DIR) / "review-triage.png"
    page.screenshot(path=str(shot), full_page=True)

    press_and_wait(page, "a")  # approve
    press_and_wait(page, "r", "5")  # reject: machine-written
    press_and_wait(page, "a")
    press_and_wait(page, "r", "1")  # reject: duplicate
    last = current_item(page)
    press_and_wait(page, "a")

    decisions = list(Decision.objects.order_by("created_at").values_list("verdict", "reason"))
    assert decisions == [
        ("approve", ""),
        ("reject", "machine_written"),
        ("approve", ""),
        ("reject", "duplicate"),
        ("approve", ""),
    ]
    notice = page.locator("#triage [role=status], #triage [role=alert]").first.inner_text()
    assert notice.startswith("Approved item"), notice

    assert press_and_wait(page, "u") == last  # undo brings the last item back on screen
    assert "Undone: your approval" in page.locator("#triage .notice").inner_text()
    assert Item.objects.get(pk=int(last)).state == Item.State.QUEUED
    assert page.problems == []


def test_help_opens_with_question_mark(page, login_as, context, rich_queue, people):
    login_as(context, people[0])
    page.goto("/review/demo/")
    assert not page.locator("#shortcut-help").evaluate("d => d.open")

    page.keyboard.press("?")

    assert page.locator("#shortcut-help").evaluate("d => d.open")
    assert page.locator("#shortcut-help").is_visible()


def test_bulk_reject_from_the_list(page, login_as, context, rich_queue, people):
    login_as(context, people[0])
    page.goto("/review/demo/items/")
    targets = rich_queue[1:4]
    for item in targets:
        page.check(f"input[name=items][value='{item.pk}']")
    page.select_option("select[name=reason]", "low_quality")

    page.click("button[name=verdict][value=reject]")
    assert page.locator("#bulk-confirm").inner_text() == "Reject 3 items as “Low quality”?"
    page.click("form.confirm button[type=submit]")

    assert page.locator("#bulk-result").inner_text() == "Rejected 3 of 3 items."
    states = set(
        Item.objects.filter(pk__in=[t.pk for t in targets]).values_list("state", "state_reason")
    )
    assert states == {("rejected", "low_quality")}
    assert page.problems == []


def test_the_quota_message(page, login_as, context, dataset, rich_queue, people):
    ReviewerQuota.objects.create(dataset=dataset, daily_limit=2)
    login_as(context, people[0])
    page.goto("/review/demo/")

    press_and_wait(page, "a")
    press_and_wait(page, "a")

    assert page.locator("#quota-reached").is_visible()
    assert "daily limit is 2" in page.locator("#quota-reached").inner_text()
    page.reload()
    assert page.locator("#quota-reached").is_visible()
    assert page.problems == []


def test_two_reviewers_never_receive_the_same_item(
    browser, live_server, login_as, rich_queue, people
):
    from tests.browser.conftest import watch

    pages = []
    for user in people:
        ctx = browser.new_context(base_url=live_server.url)
        login_as(ctx, user)
        page = watch(ctx.new_page())
        page.goto("/review/demo/")
        pages.append(page)
    seen: list[list[str]] = [[], []]
    try:
        for turn in range(3):
            on_screen = [current_item(p) for p in pages]
            assert on_screen[0] != on_screen[1]
            for who, page in enumerate(pages):
                if current_item(page) is not None:
                    seen[who].append(current_item(page))
            press_and_wait(pages[turn % 2], "a")
    finally:
        for page in pages:
            assert page.problems == []
            page.context.close()
    assert not set(seen[0]) & set(seen[1]) - {None}
    assert len({i for s in seen for i in s}) >= 4
