"""Shared Playwright fixtures: a live Django server and a headless Chromium (Debian's, never a
downloaded one). Other browser tests reuse these.

- ``browser``: one Chromium for the session.
- ``context`` / ``page``: a fresh profile per test, base URL = the live server; ``page`` fails
  the test on JavaScript errors and Content-Security-Policy violations (``page.problems``).
- ``login_as(context, user)``: logs a user in by session cookie (fast); tests that exercise the
  login form itself fill it in.
"""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread
# with a running loop unless told that this is deliberate.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any, live_server: Any) -> Iterator[Any]:
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def watch(page: Any) -> Any:
    """Collect page errors, CSP violations and dialogs on ``page.problems`` / ``page.dialogs``."""
    page.problems = []
    page.dialogs = []
    page.on("pageerror", lambda error: page.problems.append(f"{page.url}: page error: {error}"))

    def on_console(msg: Any) -> None:
        # The browser asks for /favicon.ico on its own; its 404 says nothing about the page.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            page.problems.append(f"{page.url}: console {msg.type}: {msg.text}")

    page.on("console", on_console)

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    yield watch(context.new_page())


@pytest.fixture
def login_as(live_server: Any) -> Any:
    from django.conf import settings
    from django.test import Client

    def login(ctx: Any, user: Any) -> Any:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        ctx.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url, "httpOnly": True}]
        )
        return ctx

    return login
