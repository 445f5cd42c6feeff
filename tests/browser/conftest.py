"""One headless Chromium (Debian's, never a downloaded one) for every browser test, driven by Playwright;
each test gets a fresh browser context (its own cookies) on it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = (
    os.environ.get("TRELLIS_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)

# Skipped, like the wrk and promtool tests, on a machine without it; `.ci/run` installs it.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A desktop-sized page in a context of its own."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    yield opened
    await context.close()
