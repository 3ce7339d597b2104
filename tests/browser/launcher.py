"""Headless Debian Chromium for the browser tests, driven by Playwright (no download)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from tests.browser.harness import CHROMIUM, CHROMIUM_FLAGS

__all__ = ["headless_chromium"]


@contextlib.asynccontextmanager
async def headless_chromium(*flags: str, executable: Path = CHROMIUM) -> AsyncIterator[Browser]:
    """Chromium with the tests' flags and `flags`; closed after."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=[*CHROMIUM_FLAGS, *flags]
        )
        try:
            yield browser
        finally:
            await browser.close()
