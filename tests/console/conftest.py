"""A real chromium (Debian's package) driven by Playwright against the real running server.

Playwright's own browser download cannot be reached here, so `executable_path` points at the system
chromium. Under CI a missing chromium FAILS the tests (`.ci/run` installs it); elsewhere they skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import ADMIN_KEY

CHROMIUM = os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# VIGIL_SCREENSHOTS=1 writes a screenshot of each page to docs/console/ (see the README's Console section).
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "console"



def _require_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = f"chromium not found at {CHROMIUM} (apt-get install -y chromium; .ci/run does it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


class Console:
    """One browser page on the console, recording every script error and every request's host."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, msg) -> None:
        # A failed API call the page shows as a problem (403, 409, 422) is logged by chromium as a
        # resource error: that is the page working. Script errors are anything else at level error.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            self.errors.append(f"console: {msg.text}")

    def _request(self, request) -> None:
        url = request.url
        if not (url.startswith((self.base_url, self.base_url.replace("http", "ws"), "blob:", "data:"))):
            self.foreign.append(url)

    async def login(self, key: str = ADMIN_KEY) -> None:
        await self.page.goto(f"{self.base_url}/console/")
        box = self.page.locator("input[name=api_key]")
        await box.fill(key)
        await box.press("Enter")
        await self.page.get_by_role("link", name="Alerts", exact=True).wait_for()

    async def visit(self, name: str) -> None:
        await self.page.get_by_role("link", name=name, exact=True).click()
        await self.page.get_by_role("heading", name=name, level=1).wait_for()

    async def screenshot(self, name: str) -> None:
        if os.environ.get("VIGIL_SCREENSHOTS"):
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            await self.page.evaluate("window.scrollTo(0, 0)")
            await self.page.wait_for_timeout(300)
            await self.page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)


@pytest_asyncio.fixture(loop_scope="session")
async def console(browser, server) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    c = Console(page, server.url)
    try:
        yield c
    finally:
        await context.close()
    assert not c.errors, c.errors
    assert not c.foreign, f"requests to another host: {c.foreign}"
