"""Browser fixtures: Debian's Chromium driven by Playwright, a page that fails the test on any console error."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Offline and quiet: no first-run, no background traffic, no QUIC (the machine has no network).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots for people to look at; gitignored


# Module scope, not session: Playwright's sync API keeps an event loop running while it lives, and
# pytest-asyncio cannot start its own loops for the async tests of other modules until it has stopped.
@pytest.fixture(scope="module")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


PageFactory = Callable[..., Page]


@pytest.fixture()
def open_page(browser: Browser) -> Iterator[PageFactory]:
    """New pages (each in its own context: sessionStorage is per tab); any console error or page error fails the test."""
    errors: list[str] = []
    contexts = []

    def factory(width: int = 1280, height: int = 900, allow: tuple[str, ...] = ()) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not any(a in message.text for a in allow):
                errors.append(f"console: {message.text} ({message.location.get('url', '')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        # Which call failed, since the console only says "Failed to load resource".
        page.on("response", lambda response: print(f"HTTP {response.status} {response.request.method} {response.url}")
                if response.status >= 400 else None)
        return page

    yield factory
    for context in contexts:
        context.close()
    assert errors == [], "the dashboard logged errors:\n" + "\n".join(errors)


def sign_in(page: Page, edge_url: str, key: str) -> None:
    page.goto(f"{edge_url}/")
    page.fill("#api-key", key)
    page.keyboard.press("Enter")
    page.wait_for_selector(".session:not([hidden])")
    page.wait_for_selector(".live[data-state='live']", timeout=20_000)
