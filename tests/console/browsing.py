"""What the console's browser tests do on every page they visit: a full-page screenshot (kept
under test-output/console/<test>/ for a person to look through) and an axe-core check against
WCAG 2.2 AA, failing on any serious or critical violation."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.stack import Stack

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, ConsoleMessage, Page, Request, Response

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-output" / "console"

# The rule sets the console is held to: WCAG 2.0, 2.1 and 2.2, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = {"serious", "critical"}

_RUN_AXE = """
async (tags) => {
    const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
    return results.violations.map((violation) => ({
        id: violation.id,
        impact: violation.impact,
        help: violation.help,
        targets: violation.nodes.map((node) => node.target.join(" ")),
    }));
}
"""


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """The page's serious and critical WCAG violations as axe-core finds them."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated from the test rather than added as a script tag, which the console's Content
        # Security Policy rightly refuses; relaxing the policy in the tests would hide a page
        # that breaks it.
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = await page.evaluate(_RUN_AXE, WCAG_TAGS)
    return [item for item in violations if item["impact"] in FAILING_IMPACTS]


async def assert_accessible(page: Page) -> None:
    violations = await accessibility_violations(page)
    listed = "\n".join(
        f"  {item['id']} ({item['impact']}): {item['help']} at {', '.join(item['targets'])}"
        for item in violations
    )
    assert not violations, f"{page.url} fails WCAG 2.2 AA:\n{listed}"


@dataclass(frozen=True)
class LiveConsole:
    """The stack, with spa (and its console) listening at ``base_url``."""

    stack: Stack
    base_url: str


def screenshot_directory(test_name: str) -> Path:
    return SCREENSHOTS / re.sub(r"[^\w.-]+", "_", test_name).strip("_")


class Screenshots:
    """Numbered full-page screenshots of one test, in the order its pages were seen."""

    def __init__(self, test_name: str) -> None:
        self.directory = screenshot_directory(test_name)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.taken = 0

    async def take(self, page: Page, name: str) -> Path:
        self.taken += 1
        path = self.directory / f"{self.taken:02d}-{name}.png"
        await page.screenshot(path=path, full_page=True)
        return path


class Looker:
    """``await look(page, "queue")``: the screenshot first (so that a failing page is seen),
    then the accessibility check."""

    def __init__(self, screenshots: Screenshots) -> None:
        self.screenshots = screenshots

    async def __call__(self, page: Page, name: str) -> None:
        await self.screenshots.take(page, name)
        await assert_accessible(page)


class PageTroubles:
    """What went wrong on a browser context's pages out of a person's sight."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.seen: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        context.on("weberror", lambda error: self.seen.append(f"script failed: {error.error}"))
        context.on("console", self._console)
        context.on("request", self._request)
        context.on("response", self._response)
        context.on("requestfailed", lambda request: self.seen.append(f"failed: {request.url}"))

    def _console(self, message: ConsoleMessage) -> None:
        # A page answered 403 or 404 on purpose is reported as a failed load too; the files it
        # uses are checked by their responses instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.seen.append(f"console error: {message.text}")

    def _request(self, request: Request) -> None:
        if not request.url.startswith((f"{self.base_url}/", "data:", "about:")):
            self.seen.append(f"fetched from elsewhere: {request.url}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.seen.append(
                f"{response.status} for {response.request.resource_type} {response.url}"
            )
