"""Take the README tour's screenshots again: Chromium over the demo.

By default it starts its own Synthgate (``bin/run.py``: migrate, seed the demo, Redis, a worker
and the web server) in a temporary var directory on a free port, waits until the worker has
scored the demo, logs in as the demo users, saves one PNG per page under ``docs/tour/`` and stops
everything it started. ``--url`` uses a server that already runs (``make run``) instead.

    .venv/bin/python bin/screenshots.py               # docs/tour/*.png
    .venv/bin/python bin/screenshots.py --url http://127.0.0.1:8000 --out /tmp/tour

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``) and the Playwright
package from requirements-dev.txt; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# The flags tests/browser/conftest.py launches Chromium with.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 860}
SLUG = "demo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/accounts/login/", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"screenshots: no answer from {url} within {timeout:.0f} s")


@contextlib.contextmanager
def own_server(timeout: float, password: str) -> Iterator[str]:
    """bin/run.py in a temporary var directory, SQLite and embedded Redis, on a free port."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="synthgate-tour-") as var:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(PORT=str(port), SYNTHGATE_VAR_DIR=var, SYNTHGATE_DEMO_PASSWORD=password)
        log = open(Path(var) / "run.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bin" / "run.py")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url, timeout)
            yield url
        except BaseException:
            log.flush()
            sys.stderr.write((Path(var) / "run.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            process.send_signal(signal.SIGTERM)  # bin/run.py stops all it started
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


def _login(browser: Any, url: str, username: str, password: str) -> Any:
    context = browser.new_context(base_url=url, viewport=VIEWPORT, timezone_id="UTC")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/accounts/login/" in page.url:
        raise SystemExit(f"screenshots: could not log in as {username}")
    return page


def _wait_scored(page: Any, timeout: float) -> None:
    """Until the worker has scored the demo (nothing left waiting), so triage shows evidence."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(f"/review/{SLUG}/progress")
        if "nothing waiting to be scored" in page.content():
            return
        time.sleep(2)
    raise SystemExit(f"screenshots: the demo was not scored within {timeout:.0f} s")


def _shot(page: Any, out: Path, name: str, path: str, *, scroll_to: str | None = None) -> bool:
    response = page.goto(path)
    if response is None or response.status != 200:
        print(f"skipped {name}: {path} answered {response.status if response else 'nothing'}")
        return False
    page.wait_for_load_state("networkidle")
    if scroll_to:
        page.locator(scroll_to).scroll_into_view_if_needed()
    target = out / f"{name}.png"
    page.screenshot(path=str(target))
    print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return True


def take(url: str, out: Path, password: str, wait: float) -> int:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            admin = _login(browser, url, "admin", password)
            _wait_scored(admin, wait)
            # The dashboard reads a periodic rollup; ask for one now, as its button does.
            admin.goto(f"/datasets/{SLUG}/")
            refresh = admin.locator("button", has_text="Refresh now")
            if refresh.count():
                refresh.first.click()
                admin.wait_for_load_state("networkidle")
            taken = [
                _shot(admin, out, "dashboard", f"/datasets/{SLUG}/"),
                _shot(admin, out, "settings", f"/datasets/{SLUG}/settings/"),
                _shot(
                    admin,
                    out,
                    "settings-scoring",
                    f"/datasets/{SLUG}/settings/",
                    scroll_to="#scoring-rules",
                ),
            ]
            reviewer = _login(browser, url, "reviewer1", password)
            taken.append(_shot(reviewer, out, "triage", f"/review/{SLUG}/"))
            taken.append(_shot(reviewer, out, "list", f"/review/{SLUG}/items/"))
        finally:
            browser.close()
    return 0 if all(taken[1:]) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running Synthgate (default: start one, then stop it)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "tour"), help="folder for the PNGs")
    parser.add_argument(
        "--password",
        default=os.environ.get("SYNTHGATE_DEMO_PASSWORD", "demo"),
        help="the demo users' password (SYNTHGATE_DEMO_PASSWORD)",
    )
    parser.add_argument(
        "--wait", type=float, default=180.0, help="seconds to wait for start-up and scoring"
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    if args.url:
        return take(args.url.rstrip("/"), out, args.password, args.wait)
    with own_server(args.wait, args.password) as url:
        return take(url, out, args.password, args.wait)


if __name__ == "__main__":
    raise SystemExit(main())
