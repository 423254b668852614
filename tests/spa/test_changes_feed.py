"""Catching up after an outage: GET /v1/referrals lists what changed, for each client only what
it may know, with a cursor that resumes where the last read stopped."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.shared.pagination import InvalidCursor
from services.spa.referrals import changes
from tests import factories
from tests.stack import Stack, post_referral


async def _page(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await http.get("/v1/referrals", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_a_referrer_catches_up_page_by_page_and_resumes(stack: Stack) -> None:
    since = stack.clock().isoformat()
    made = [await post_referral(stack, "gp-system", factories.referral()) for _ in range(3)]
    stack.clock.now += timedelta(seconds=10)  # past the settling time
    async with stack.client("spa", "gp-system") as gp:
        first = await _page(gp, updated_since=since, limit=2)
        second = await _page(gp, updated_since=since, limit=2, cursor=first["next_cursor"])
        await gp.post(f"/v1/referrals/{made[0]['id']}/cancellation", json={"reason": "other"})
        stack.clock.now += timedelta(seconds=10)
        resumed = await _page(gp, updated_since=since, cursor=second["next_cursor"])
    async with stack.client("spa", "other-gp-system") as other:
        theirs = await _page(other, updated_since=since)

    listed = [item["referral_id"] for item in first["items"] + second["items"]]
    assert listed == [referral["id"] for referral in made]
    assert (first["more"], second["more"]) == (True, False)
    assert [(i["referral_id"], i["status"], i["last_event"]) for i in resumed["items"]] == [
        (made[0]["id"], "cancelled", "cancelled")
    ]
    assert theirs["items"] == []
    text = str(first) + str(second)
    assert made[0]["patient"]["nhs_number"] not in text  # codes only
    assert "Testperson" not in text


async def test_a_team_and_call_handlers_see_only_what_reached_them(stack: Stack) -> None:
    since = stack.clock().isoformat()
    routed = await post_referral(
        stack, "gp-system", factories.referral(urgency="crisis", needs=["fall"])
    )
    contact = {"outcome": "contact_assessment_needed"}
    queued = await post_referral(
        stack, "county-contact", factories.referral(channel="county_contact", contact=contact)
    )
    stack.clock.now += timedelta(seconds=10)
    async with stack.client("spa", "lit-north-app") as team:
        for_team = await _page(team, updated_since=since)
    async with stack.client("spa", "north-call-handlers") as handlers:
        for_north = await _page(handlers, updated_since=since)
    async with stack.client("spa", "south-call-handlers") as handlers:
        for_south = await _page(handlers, updated_since=since)

    assert routed["team"]["code"] == "lit-north"
    assert [item["referral_id"] for item in for_team["items"]] == [routed["id"]]
    assert [item["referral_id"] for item in for_north["items"]] == [queued["id"]]
    assert for_south["items"] == []


async def test_a_change_too_fresh_to_have_settled_waits_for_the_next_read(stack: Stack) -> None:
    since = stack.clock().isoformat()
    await post_referral(stack, "gp-system", factories.referral())
    async with stack.client("spa", "gp-system") as gp:
        fresh = await _page(gp, updated_since=since)
        stack.clock.now += timedelta(seconds=10)
        settled = await _page(gp, updated_since=since)

    assert (fresh["items"], fresh["next_cursor"]) == ([], None)
    assert len(settled["items"]) == 1


async def test_a_cursor_not_given_out_here_is_refused(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as gp:
        refused = await gp.get("/v1/referrals", params={"cursor": "not-a-cursor"})

    assert refused.status_code == 400
    assert refused.json()["type"] == "urn:spa-platform:problem:invalid-cursor"


def test_a_cursor_saved_before_the_list_style_still_resumes() -> None:
    """A consumer keeps its last cursor to resume from; one of the earlier form still works."""
    saved = base64.urlsafe_b64encode(b"e42").decode().rstrip("=")

    assert changes.decode_cursor(saved) == 42
    assert changes.decode_cursor(changes.encode_cursor(42)) == 42
    with pytest.raises(InvalidCursor):
        changes.decode_cursor(base64.urlsafe_b64encode(b"e99999999999999999999").decode())
