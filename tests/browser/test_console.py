"""Every form shows its errors in place and a notice on success, in a real Chromium, through
the one mechanism (static/js/synthgate.js swaps 400 answers; templates/_form_errors.html draws
them); and the daily-use details: the help overlay in the viewport, local times with UTC on
hover, the favicon, and no Content-Security-Policy violation anywhere."""

from typing import Any

import pytest

from corpus.models import AuditEvent, ExportPolicy, Item, ScoringRules
from review.models import ReviewPolicy
from tests.review.conftest import add_to_group, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SETTINGS = "/datasets/demo/settings/"


@pytest.fixture(autouse=True)
def _patient(context):  # type: ignore[no-untyped-def]
    """A busy two-core CI runner can take more than the default 10 s to serve a first page."""
    context.set_default_timeout(30_000)
    context.set_default_navigation_timeout(30_000)


@pytest.fixture
def admin_page(page, login_as, context, dataset, admin_user):  # type: ignore[no-untyped-def]
    login_as(context, admin_user)
    not_found: list[str] = []
    page.on("response", lambda r: not_found.append(r.url) if r.status == 404 else None)
    page.not_found = not_found
    return page


def unexpected(page: Any, *statuses: int) -> list[str]:
    """The page's problems, less the log lines of a refusal the test asked for (Chromium's, and
    htmx's for an answer it does not swap)."""
    expected = [f"the server responded with a status of {status}" for status in statuses]
    expected += [f"Response Status Error Code {status} " for status in statuses]
    return [p for p in page.problems if not any(e in p for e in expected)]


def _submit(page: Any, form: str, button: str = "button.primary") -> None:
    page.locator(f"{form} {button}").click()


def _error_in(page: Any, section: str) -> str:
    box = page.locator(f"{section} .form-errors")
    box.wait_for(state="visible")
    return box.inner_text()


# (section, form, what to type, the message that must show)
SETTINGS_FORMS = [
    (
        "#review-policy",
        "#policy-form",
        [("input[name=consensus_approvals]", "12")],
        "less than or equal to 9",
    ),
    ("#reasons", "#reasons-form", [("textarea[name=reasons]", "dup")], "Line 1: write it as"),
    ("#quotas", "#quota-form", [("input[name=daily_limit]", "0")], "greater than or equal to 1"),
    (
        "#scoring-rules",
        "#scoring-rules-form",
        [("input[name=near_duplicate_threshold]", "0.2")],
        "must not be above the near-duplicate threshold",
    ),
    (
        "#export-policy",
        "#export-policy-form",
        [("textarea[name=source_caps]", "web 30")],
        "Line 1: write 'name: 30%'",
    ),
    (
        "#export-policy",
        "#export-policy-json-form",
        [("textarea[name=policy]", '{"max_depth": 2}')],
        "max_depth",
    ),
]


@pytest.mark.parametrize(("section", "form", "fills", "message"), SETTINGS_FORMS)
def test_every_settings_form_shows_its_error_in_place(admin_page, section, form, fills, message):
    page = admin_page
    page.goto(SETTINGS)
    for selector, value in fills:
        page.fill(f"{form} {selector}", value)
    button = "button[type=submit]:not([formaction])"

    _submit(page, form, button)

    text = _error_in(page, section)
    assert message in text, text
    assert page.url.endswith(SETTINGS)  # swapped in place, no page load
    # what was typed is still there to fix
    assert page.locator(f"{form} {fills[0][0]}").input_value() == fills[0][1]
    assert not ScoringRules.objects.exists() and not ExportPolicy.objects.exists()
    assert not ReviewPolicy.objects.exists()
    assert unexpected(page, 400) == []


def test_a_saved_setting_shows_a_notice_and_is_audited(admin_page):
    page = admin_page
    page.goto(SETTINGS)
    page.uncheck("#scoring-rules-form input[name=reject_degenerate]")

    _submit(page, "#scoring-rules-form")

    notice = page.locator("#scoring-rules .notice")
    notice.wait_for(state="visible")
    assert "Scoring rules saved" in notice.inner_text()
    assert ScoringRules.objects.get().reject_degenerate is False
    assert AuditEvent.objects.filter(action="scoring_rules.updated").count() == 1
    assert page.problems == []


def test_previews_show_their_effect_without_saving(admin_page, dataset):
    page = admin_page
    make_item(dataset, state=Item.State.APPROVED, origin="synthetic")
    page.goto(SETTINGS)

    page.locator("#scoring-rules-form button[formaction]").click()
    page.locator("#scoring-rules-preview").wait_for(state="visible")

    page.fill("#export-policy-form input[name=max_synthetic_share]", "0")
    page.locator("#export-policy-form button[formaction]").click()
    preview = page.locator("#export-policy-preview")
    preview.wait_for(state="visible")
    assert "would hold 0 of 1 approved items" in preview.inner_text()
    assert not ExportPolicy.objects.exists() and not ScoringRules.objects.exists()
    assert page.problems == []


def test_the_exports_page_policy_box_and_retraction_show_their_errors(admin_page):
    page = admin_page
    page.goto("/datasets/demo/exports/")

    page.fill("#policy-text", "{not json")
    page.locator("#policy button[type=submit]").click()
    error = page.locator("#policy [role=alert]")
    error.wait_for(state="visible")
    assert "not valid JSON" in error.inner_text()

    page.fill("#retract input[name=item_id]", "abc")
    page.fill("#retract input[name=reason]", "leaked data")
    page.locator("#retract button[type=submit]").click()
    error = page.locator("#retract [role=alert]")
    error.wait_for(state="visible")
    assert "an item id (a number)" in error.inner_text()
    assert unexpected(page, 400) == []


def test_a_bulk_reject_without_a_reason_shows_why_and_keeps_the_selection(
    page, login_as, context, dataset, reviewer
):
    add_to_group(reviewer, "reviewer")
    items = [make_item(dataset, priority=float(i)) for i in range(3)]
    login_as(context, reviewer)
    page.goto("/review/demo/items/")
    page.check("input[data-select-all=items]")  # select-all ticks every row
    assert page.locator("input[name=items]:checked").count() == 3

    page.click("button[name=verdict][value=reject]")

    assert "Choose a reason" in page.locator(".form-errors").inner_text()
    assert page.locator("#bulk-retry input[name=items]:checked").count() == 3
    page.select_option("#bulk-retry select[name=reason]", "low_quality")
    page.click("#bulk-retry button[value=reject]")
    page.click("form.confirm button[type=submit]")
    assert page.locator("#bulk-result").inner_text() == "Rejected 3 of 3 items."
    assert {i.state for i in Item.objects.filter(pk__in=[i.pk for i in items])} == {"rejected"}
    assert unexpected(page, 400) == []


def test_a_refused_request_with_no_form_shows_a_notice(admin_page, dataset):
    from django.contrib.auth import get_user_model

    page = admin_page
    admin = get_user_model().objects.get(is_superuser=True)
    dataset.reviewers.add(admin)
    add_to_group(admin, "reviewer")
    page.goto(SETTINGS)
    # the admin loses the role while the page is open: the next save is refused (403)
    get_user_model().objects.filter(pk=admin.pk).update(is_superuser=False)
    _submit(page, "#scoring-rules-form")
    flash = page.locator("#flash")
    flash.wait_for(state="visible")
    assert "HTTP 403" in flash.inner_text()
    assert unexpected(page, 403) == []


def test_help_overlay_is_in_the_viewport(page, login_as, context, dataset, reviewer):
    add_to_group(reviewer, "reviewer")
    for i in range(3):
        make_item(dataset, priority=float(i), text=f"A long enough text {i}. " * 200)
    login_as(context, reviewer)
    page.goto("/review/demo/")

    page.keyboard.press("?")

    box = page.locator("#shortcut-help").bounding_box()
    viewport = page.viewport_size
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    assert page.locator("#shortcut-help dl.keys").is_visible()
    assert page.problems == []


def test_times_read_in_the_browsers_zone_with_utc_on_hover(
    browser, live_server, login_as, dataset, admin_user
):
    from corpus.models import Export
    from tests.browser.conftest import watch

    Export.objects.create(dataset=dataset)
    ctx = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    try:
        login_as(ctx, admin_user)
        page = watch(ctx.new_page())
        page.goto("/datasets/demo/exports/")
        time = page.locator("#exports-table time").first
        page.wait_for_function("() => document.querySelector('#exports-table time[data-local]')")
        assert time.get_attribute("title").endswith(" UTC")
        shown = time.inner_text()
        assert "UTC" not in shown and ("GMT+9" in shown or "JST" in shown), shown
        assert page.problems == []
    finally:
        ctx.close()


def test_pages_have_a_favicon_and_no_404(admin_page, dataset):
    page = admin_page
    for path in (SETTINGS, "/review/", "/datasets/demo/exports/", "/accounts/login/"):
        page.goto(path)
        href = page.locator("link[rel=icon]").get_attribute("href")
        assert href == "/static/favicon.svg"
        assert page.request.get(href).status == 200
    assert page.not_found == []
    assert page.problems == []


def test_login_lands_a_reviewer_in_triage(page, dataset, reviewer):
    add_to_group(reviewer, "reviewer")
    make_item(dataset)
    reviewer.set_password("pw")
    reviewer.save()
    page.goto("/accounts/login/")
    assert page.locator(".login-card").is_visible()
    page.fill("input[name=username]", reviewer.username)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/review/demo/")
    page.locator("#queue-progress strong").first.wait_for()
    assert "in the queue" in page.locator("#queue-progress").inner_text()
    assert page.problems == []


def test_the_csp_still_forbids_inline_script_and_no_page_breaks_it(admin_page, dataset, reviewer):
    from corpus.models import Export

    page = admin_page
    dataset.reviewers.add(reviewer)
    make_item(dataset)
    export = Export.objects.create(dataset=dataset)
    pages = [
        SETTINGS,
        "/review/",
        "/review/demo/",
        "/review/demo/items/",
        "/review/demo/reviewers/",
        "/datasets/demo/exports/",
        f"/datasets/demo/exports/{export.pk}/",
    ]
    for path in pages:
        response = page.goto(path)
        assert response.status == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.wait_for_load_state("networkidle")
    assert page.problems == []  # no violation, no error, on any of them

    directive = page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective));
            const script = document.createElement('script');
            script.textContent = 'window.__inlineRan = true';
            document.body.appendChild(script);
            setTimeout(() => resolve(null), 3000);
        })"""
    )
    assert directive is not None and directive.startswith("script-src")
    assert page.evaluate("() => window.__inlineRan === true") is False
