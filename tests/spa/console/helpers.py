"""Signing in to the console as a demo person, over the in-process stack, as a browser would:
cookies kept, forms posted with the page's CSRF token."""

from __future__ import annotations

import re

import httpx

from tests.stack import DEMO_PASSWORD, Stack

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


class Browser:
    """A cookie-keeping client of spa's console, and the last page's CSRF token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str) -> httpx.Response:
        page = await self.client.get(path)
        found = CSRF.search(page.text)
        if found:
            self.csrf = found.group(1)
        return page

    async def post(self, path: str, data: dict[str, object] | None = None) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.csrf, **(data or {})})


async def signed_in(stack: Stack, username: str) -> Browser:
    client = stack.raw("spa")
    browser = Browser(client)
    await browser.get("/console/sign-in")
    answer = await browser.post(
        "/console/sign-in", {"username": username, "password": DEMO_PASSWORD, "next": "/console"}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console"
    await browser.get("/console")
    return browser
