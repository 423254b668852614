"""The console in a real browser: the in-process stack's spa app served over HTTP by uvicorn,
driven by Debian's Chromium through Playwright.

One browser serves a whole test module, and a fresh context (cookies, storage) and page each
test. Playwright's objects belong to the event loop that made them, so every test here runs in
its module's loop (``pytest_collection_modifyitems`` below), and so do the stack and the server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import pytest_asyncio
import uvicorn

from tests.console.browsing import (
    AXE,
    LiveConsole,
    Looker,
    PageTroubles,
    Screenshots,
    screenshot_directory,
)
from tests.replicas import free_port
from tests.stack import Stack, running_stack

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

HERE = Path(__file__).resolve().parent
PAGE_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE) and pytest_asyncio.is_async_test(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="module"), append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each phase's report kept on the test, so that its page can be kept when it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _missing_tools() -> list[str]:
    missing = [] if shutil.which("chromium") else ["Debian's chromium"]
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not AXE.is_file():
        missing.append("axe-core from npm")
    return missing


def _require_tools() -> None:
    """Fail under CI, where a browser test must never pass by not running; skip elsewhere."""
    missing = _missing_tools()
    if not missing:
        return
    needs = f"the console's browser tests need {', '.join(missing)}"
    if os.environ.get("CI"):
        pytest.fail(f"{needs} (make install and make tools install them)")
    pytest.skip(f"{needs}: run make install and make tools")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    _require_tools()
    from playwright.async_api import async_playwright

    # Root (as in a container) cannot have Chromium's sandbox.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=args
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def stack(postgres_urls: dict[str, str], issuer_key_file: Path) -> AsyncIterator[Stack]:
    async with running_stack(postgres_urls, issuer_key_file) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def console(stack: Stack) -> AsyncIterator[LiveConsole]:
    _require_tools()
    port = free_port()
    config = uvicorn.Config(
        stack.apps["spa"], host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        ws="none", http="h11", access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _answering(server, task, base_url)
        yield LiveConsole(stack, base_url)
    finally:
        server.should_exit = True
        await task


async def _answering(server: uvicorn.Server, task: asyncio.Task[None], base_url: str) -> None:
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started serving")
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200, response.text


@pytest_asyncio.fixture(loop_scope="module")
async def page(
    browser: Browser, console: LiveConsole, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A page in a context of its own. At its end nothing went wrong on it that a person would
    not see on the page itself: no script failed, the console (the browser's) reported no error
    (a refusal by the Content Security Policy among them), every file a page used loaded, and
    nothing was fetched from anywhere but spa, which serves every file the console uses."""
    context = await browser.new_context(base_url=console.base_url)
    # Every wait is for something the page shows within moments: fail soon rather than late.
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    troubles = PageTroubles(console.base_url)
    troubles.watch(context)
    opened = await context.new_page()
    try:
        yield opened
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            # Where the test stopped, to see beside its numbered screenshots.
            path = screenshot_directory(request.node.name) / "where-it-failed.png"
            await opened.screenshot(path=path, full_page=True)
    finally:
        await context.close()
    assert troubles.seen == [], "\n".join(troubles.seen)


@pytest.fixture
def look(request: pytest.FixtureRequest) -> Looker:
    """Screenshot and accessibility check of a page: ``await look(page, "queue")``."""
    return Looker(Screenshots(request.node.name))
