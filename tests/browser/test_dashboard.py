"""The dataset dashboard in a real Chromium: every chart drawn, no CSP violation, no script
error; the alert form saves and shows its notice through htmx."""

from typing import Any

import pytest

from dashboard.services.rollup import dashboard_rollup
from tests.dashboard.conftest import NOW, _all_grams, alice, board, bob  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_loads_without_csp_violations(page: Any, login_as, context, board, admin_user):  # noqa: F811
    dashboard_rollup(dataset=board["dataset"], now=NOW)
    login_as(context, admin_user)
    page.goto("/datasets/demo/")
    assert page.locator("section.chart").count() == 13
    assert page.locator("section.chart svg.plot").count() >= 12
    # The charts are drawn and styled from the stylesheet: a line has a colour, a bar a width.
    dot = page.eval_on_selector("#chart-tail_coverage circle", "el => getComputedStyle(el).fill")
    line = page.eval_on_selector("#chart-flow polyline", "el => getComputedStyle(el).stroke")
    for colour in (dot, line):
        assert colour.startswith("rgb(") and colour != "rgb(0, 0, 0)"
    box = page.locator("#chart-depth_mix svg.plot").bounding_box()
    assert box is not None and box["width"] > 300
    # Check the policy is the strict one, then that nothing was blocked or failed.
    policy = page.evaluate("() => document.querySelector('meta[http-equiv]')")
    assert policy is None  # the CSP comes as a header, not a meta tag
    assert page.problems == []


def test_reviewer_dashboard_and_alert_form(page: Any, login_as, context, board, alice, admin_user):  # noqa: F811
    dashboard_rollup(dataset=board["dataset"], now=NOW)
    login_as(context, alice)
    page.goto("/datasets/demo/")
    assert page.locator("section.chart").count() == 3
    assert page.problems == []
    context.clear_cookies()
    login_as(context, admin_user)
    page.goto("/datasets/demo/settings/alerts/")
    page.fill("#id_max_synthetic_share", "0.5")
    page.click("#alerts-form button[type=submit]")
    page.wait_for_selector("#alerts-form .notice")
    assert "Saved: alert rules version 1." in page.inner_text("#alerts-form")
    page.goto("/datasets/demo/")
    assert "synthetic share of the approved set is 66.7%" in page.inner_text(".dash-alerts")
    assert page.problems == []
