"""Every list of the three services pages the same way: ``limit`` and ``cursor`` in,
``{items, next_cursor}`` out, each item once across the pages in the list's own order, and a
cursor this list did not give out refused with ``400 invalid-cursor``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.shared import pagination
from tests import factories
from tests.stack import Stack

PROBLEM = "urn:spa-platform:problem:"


async def _walk(client: httpx.AsyncClient, path: str, limit: int) -> list[list[Any]]:
    """Every page of a list, following ``next_cursor`` until it is null."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        answer = await client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) >= {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "a list that never ends"


def test_a_cursor_holds_its_list_and_key_and_nothing_else_is_taken() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    key = (2, at, uuid.UUID(int=7))
    cursor = pagination.encode("queue", key)

    assert pagination.decode(cursor, "queue", (int, datetime, uuid.UUID)) == key
    assert pagination.decode(None, "queue", (int,)) is None
    for wrong in (
        "not base64 at all!",
        cursor[:-3],  # cut short
        pagination.encode("escalations", key),  # another list's
        pagination.encode("queue", (2, at)),  # another shape
        pagination.encode("queue", (2, "yesterday", uuid.UUID(int=7))),
        pagination.encode("queue", (2**70, at, uuid.UUID(int=7))),
        pagination.encode("queue", (2, "0001-01-01T00:00:00+05:00", uuid.UUID(int=7))),
    ):
        with pytest.raises(pagination.InvalidCursor):
            pagination.decode(wrong, "queue", (int, datetime, uuid.UUID))


async def test_teams_page_by_code_each_once(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        whole = (await teams.get("/v1/teams", params={"limit": 200})).json()
        pages = await _walk(teams, "/v1/teams", limit=4)

    codes = [team["code"] for team in whole["items"]]
    assert whole["next_cursor"] is None
    assert len(codes) > 4
    assert [len(page) for page in pages][:-1] == [4] * (len(pages) - 1)
    assert [team["code"] for page in pages for team in page] == codes == sorted(codes)


async def test_the_queue_pages_in_its_order_urgency_then_age(stack: Stack) -> None:
    ids = []
    async with stack.client("spa", "county-contact") as spa:
        for urgency in ("routine", "urgent", "crisis", "urgent", "routine"):
            body = factories.referral(
                channel="county_contact",
                urgency=urgency,
                contact={"outcome": "contact_assessment_needed"},
            )
            answer = await spa.post("/v1/referrals", json=body, headers={"Prefer": "wait=10"})
            assert answer.json()["status"] == "awaiting_assessment", answer.text
            ids.append(answer.json()["id"])
            stack.clock.now += timedelta(seconds=1)
    async with stack.client("spa", "north-call-handlers") as handlers:
        pages = await _walk(handlers, "/v1/queue", limit=2)

    routine_1, urgent_1, crisis, urgent_2, routine_2 = ids
    assert [[item["referral_id"] for item in page] for page in pages] == [
        [crisis, urgent_1],
        [urgent_2, routine_1],
        [routine_2],
    ]


async def test_the_audit_trail_pages_oldest_first(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as gp:
        for _ in range(3):
            await gp.post("/v1/referrals", json=factories.referral())
    async with stack.client("spa", "ig-auditor") as auditor:
        pages = await _walk(auditor, "/v1/audit", limit=2)

    ids = [record["id"] for page in pages for record in page]
    assert len(ids) >= 3
    assert ids == sorted(set(ids))


@pytest.mark.parametrize(
    ("service", "client_id", "path"),
    [
        ("spa", "north-call-handlers", "/v1/queue"),
        ("spa", "ig-auditor", "/v1/audit"),
        ("routing", "clinical-lead", "/v1/rule-sets"),
        ("teams", "team-app", "/v1/teams"),
    ],
)
async def test_a_cursor_not_of_the_list_is_a_problem(
    stack: Stack, service: str, client_id: str, path: str
) -> None:
    foreign = pagination.encode("somewhere-else", (1,))
    async with stack.client(service, client_id) as client:
        for cursor in ("%%%", foreign):
            answer = await client.get(path, params={"cursor": cursor})

            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["type"] == PROBLEM + "invalid-cursor"
