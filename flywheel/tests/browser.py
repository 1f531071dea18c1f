"""Real-browser test plumbing shared by every app's UI tests.

Launches Debian's Chromium through Playwright's sync API, logs in through the real form and
saves screenshots that CI keeps as artifacts. An app's conftest re-exports the fixtures:

    from flywheel.tests.browser import browser_page  # noqa: F401
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Page, sync_playwright
from pytest_django.live_server_helper import LiveServer

# Debian's package, not a Playwright download: CI and developer machines install it with apt,
# and `playwright install` is never run.
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The smallest screen the annotator UI promises to work on: a 1280-px laptop.
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 10_000


def browser_required() -> bool:
    """CI sets FLYWHEEL_REQUIRE_BROWSER so a runner without Chromium fails instead of skipping."""
    return os.environ.get("FLYWHEEL_REQUIRE_BROWSER", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if browser_required():
        pytest.fail(f"{CHROMIUM} is missing and FLYWHEEL_REQUIRE_BROWSER is set: install Debian's chromium")
    pytest.skip(
        f"{CHROMIUM} is missing; `apt-get install chromium` to run the browser tests "
        "(set FLYWHEEL_REQUIRE_BROWSER=1 to make this a failure)"
    )


@pytest.fixture
def browser_page(
    transactional_db: None, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A fresh 1280x800 page (own cookies) whose relative URLs resolve against the live server.

    Function-scoped on purpose: while Playwright's sync API is started, its asyncio loop is
    visible as "running" in the main thread, so Django's ORM would raise
    SynchronousOnlyOperation in the test body. DJANGO_ALLOW_ASYNC_UNSAFE lifts that check for
    this test only, and Playwright stops before transactional_db flushes the tables, so no
    other test runs with the check off or with a loop running. The live server answers in
    its own thread and is unaffected.

    Uncaught JavaScript errors on any page fail the test: a broken app.js otherwise shows up
    only as keys that silently do nothing.
    """
    require_chromium()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    js_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.on("pageerror", lambda exc: js_errors.append(str(exc)))
            yield page
        finally:
            browser.close()
            # While that loop runs, asgiref files Django's connections under a context
            # variable instead of the thread, so the test body got a connection of its own.
            # Only now, loop still running, can it be reached to close it; left open it
            # would keep the test database from being dropped at the end of the run.
            connections.close_all()
    _wait_for_requests_to_finish()
    assert not js_errors, f"uncaught JavaScript errors: {js_errors}"


def _wait_for_requests_to_finish(timeout: float = 5.0) -> None:
    """The live server answers each browser connection in its own thread, which holds a
    database connection until the socket closes. Closing the browser closes the sockets, but
    the threads wind down on their own time: wait for them, so no request writes rows after
    transactional_db has flushed, and no session is left to block dropping the test database."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(max(0.0, deadline - time.monotonic()))


def log_in(page: Page, *, username: str, password: str) -> None:
    """Log in through the form by typing, as a keyboard-only user would, and wait for the
    page it lands on. The caller asserts where that is (a wrong password stays on /login/)."""
    page.goto("/login/")
    page.get_by_label("Username").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def log_out(page: Page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save what the user sees (the viewport, unless full_page) as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
