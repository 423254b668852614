"""The browser tests' own machinery, on what spa serves without the console's pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.console.browsing import LiveConsole, Looker, accessibility_violations, assert_accessible

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page


async def test_chromium_loads_a_page_spa_serves_over_http(page: Page, console: LiveConsole) -> None:
    response = await page.goto("/healthz")

    assert response is not None
    assert response.status == 200
    assert page.url == f"{console.base_url}/healthz"
    assert '"status"' in await page.inner_text("body")


async def test_the_accessibility_check_finds_what_wcag_forbids(browser: Browser) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.set_content(
            '<html><body><main><img src="data:,"><a href="/x"></a></main></body></html>'
        )
        found = {item["id"] for item in await accessibility_violations(page)}
        assert {"image-alt", "html-has-lang", "link-name"} <= found
        with pytest.raises(AssertionError, match="image-alt"):
            await assert_accessible(page)
    finally:
        await context.close()


async def test_an_accessible_page_passes_and_is_screenshotted(
    browser: Browser, look: Looker
) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.set_content(
            '<html lang="en"><head><title>A page</title></head>'
            "<body><main><h1>A page</h1><p>Words.</p></main></body></html>"
        )
        await look(page, "plain")
        assert (look.screenshots.directory / "01-plain.png").is_file()
    finally:
        await context.close()
