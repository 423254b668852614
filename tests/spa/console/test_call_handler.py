"""The call handler's console: sign in, the live queue of their localities, claim, the contact
assessment, and the case routed to a team with why."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from services.spa.audit import AuditEvent
from tests import factories
from tests.spa.console.helpers import signed_in
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}


async def _queued(stack: Stack, **overrides: Any) -> dict[str, Any]:
    body = factories.referral(
        channel="county_contact", contact={"outcome": "contact_assessment_needed"}, **overrides
    )
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)
    assert response.json()["status"] == "awaiting_assessment", response.text
    referral: dict[str, Any] = response.json()
    return referral


async def test_a_call_handler_works_a_case_from_the_queue_to_a_team(stack: Stack) -> None:
    case = await _queued(stack, urgency="urgent", needs=["fall"], practice="M91001")
    browser = await signed_in(stack, "north.handler")

    queue = await browser.get("/console/queue")
    assert queue.status_code == 200
    assert f"/console/referrals/{case['id']}" in queue.text
    page = await browser.get(f"/console/referrals/{case['id']}")
    assert "Claim this case" in page.text
    claimed = await browser.post(f"/console/referrals/{case['id']}/claim")
    assert claimed.status_code == 303
    page = await browser.get(f"/console/referrals/{case['id']}")
    assert "You hold it" in page.text

    form = await browser.get(f"/console/referrals/{case['id']}/assessment")
    assert form.status_code == 200
    refused = await browser.post(f"/console/referrals/{case['id']}/assessment", {"urgency": ""})
    assert refused.status_code == 422
    assert "There is a problem" in refused.text
    nothing_found = await browser.post(
        f"/console/referrals/{case['id']}/assessment", {"urgency": "urgent"}
    )
    assert nothing_found.status_code == 422
    assert '<a href="#needs">An assessment needs at least one need or red flag</a>' in (
        nothing_found.text
    )
    assessed = await browser.post(
        f"/console/referrals/{case['id']}/assessment",
        {"urgency": "crisis", "needs": ["fall"], "note": "Cannot get up; carer present."},
    )
    assert assessed.status_code == 303, assessed.text

    for _ in range(100):
        page = await browser.get(f"/console/referrals/{case['id']}")
        if 'id="why-this-team"' in page.text:
            break
        await asyncio.sleep(0.1)
    assert "Locality Integrated Team North" in page.text
    assert 'id="why-this-team"' in page.text
    async with stack.apps["spa"].state.sessionmaker() as session:
        actors = set(
            await session.scalars(
                select(AuditEvent.client_id).where(AuditEvent.resource_id == case["id"])
            )
        )
    assert "person:north.handler" in actors


async def test_a_handler_of_one_locality_cannot_open_another_localitys_case(
    stack: Stack,
) -> None:
    south = await _queued(stack, practice="M93002")
    browser = await signed_in(stack, "north.handler")

    queue = await browser.get("/console/queue")
    page = await browser.get(f"/console/referrals/{south['id']}")
    claim = await browser.post(f"/console/referrals/{south['id']}/claim")

    assert south["id"] not in queue.text
    assert page.status_code == 404
    assert "Testperson" not in page.text
    assert claim.status_code == 404


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    stack: Stack,
) -> None:
    case = await _queued(stack)
    browser = await signed_in(stack, "north.handler")
    forged = await browser.client.post(f"/console/referrals/{case['id']}/claim", data={})
    wrong = await browser.client.post(
        f"/console/referrals/{case['id']}/claim", data={"csrf_token": "forged"}
    )
    unusual = await browser.client.post(
        f"/console/referrals/{case['id']}/claim", data={"csrf_token": "fälschung"}
    )
    page = await browser.get(f"/console/referrals/{case['id']}")

    assert forged.status_code == 403
    assert wrong.status_code == 403
    assert unusual.status_code == 403
    assert "text/html" in forged.headers["content-type"]
    assert "Nobody holds it" in page.text


async def test_pages_need_a_signed_in_person_with_the_role(stack: Stack) -> None:
    anonymous = stack.raw("spa")
    to_sign_in = await anonymous.get("/console/queue")
    commissioner = await signed_in(stack, "commissioner")
    forbidden = await commissioner.get("/console/queue")

    assert to_sign_in.status_code == 303
    assert to_sign_in.headers["location"] == "/console/sign-in?next=/console/queue"
    assert forbidden.status_code == 403
    assert "This page is for call handler" in forbidden.text


async def test_a_session_ends_after_half_an_hour_without_a_request(stack: Stack) -> None:
    browser = await signed_in(stack, "north.handler")
    stack.clock.now += timedelta(minutes=31)
    page = await browser.get("/console/queue")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/sign-in")


async def test_the_session_cookie_is_http_only_and_same_site(stack: Stack) -> None:
    browser = stack.raw("spa")
    page = await browser.get("/console/sign-in")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def _routed_to_lit_north(stack: Stack) -> dict[str, Any]:
    case = await _queued(stack, urgency="urgent", needs=["fall"], practice="M91001")
    handler = await signed_in(stack, "north.handler")
    await handler.post(f"/console/referrals/{case['id']}/claim")
    await handler.post(
        f"/console/referrals/{case['id']}/assessment", {"urgency": "crisis", "needs": ["fall"]}
    )
    async with stack.client("spa", "county-contact") as spa:
        for _ in range(100):
            read: dict[str, Any] = (await spa.get(f"/v1/referrals/{case['id']}")).json()
            if read["status"] == "routed":
                return read
            await asyncio.sleep(0.1)
    raise AssertionError(f"not routed: {read['status']}")


async def test_a_team_member_accepts_the_case_and_records_the_first_contact(
    stack: Stack,
) -> None:
    case = await _routed_to_lit_north(stack)
    assert case["team"]["code"] == "lit-north"
    member = await signed_in(stack, "lit.north")

    caseload = await member.get("/console/teams/lit-north")
    assert caseload.status_code == 200, caseload.text
    assignment_id = case["assignments"][0]["assignment_id"]
    assert f'id="assignment-{assignment_id}"' in caseload.text
    accepted = await member.post(
        f"/console/assignments/{assignment_id}/accept",
        {"team": "lit-north", "planned_first_contact_at": "2026-11-24T11:00"},
    )
    assert accepted.status_code == 303, accepted.text
    too_soon = await member.post(
        f"/console/assignments/{assignment_id}/first-contact",
        {"team": "lit-north", "at": "2026-11-24T10:45"},
    )
    assert too_soon.status_code == 422
    assert "cannot be in the future" in too_soon.text
    stack.clock.now += timedelta(minutes=20)
    contacted = await member.post(
        f"/console/assignments/{assignment_id}/first-contact",
        {"team": "lit-north", "at": "2026-11-24T10:15"},
    )
    assert contacted.status_code == 303, contacted.text

    async with stack.client("spa", "county-contact") as spa:
        for _ in range(100):
            read = (await spa.get(f"/v1/referrals/{case['id']}")).json()
            if read["assignments"][0]["first_contact_at"]:
                break
            await asyncio.sleep(0.1)
    assert read["status"] == "accepted"
    assert read["assignments"][0]["first_contact_at"].startswith("2026-11-24T10:15")
    other_team = await member.get("/console/teams/lit-south")
    assert other_team.status_code == 404


async def test_a_team_member_reports_capacity_and_a_bad_number_is_explained(
    stack: Stack,
) -> None:
    member = await signed_in(stack, "lit.north")
    form = await member.get("/console/teams/lit-north/capacity")
    bad = await member.post(
        "/console/teams/lit-north/capacity",
        {"available": "9", "maximum": "4", "operating_status": "open"},
    )
    good = await member.post(
        "/console/teams/lit-north/capacity",
        {"available": "3", "maximum": "8", "operating_status": "pressured"},
    )
    after = await member.get("/console/teams/lit-north/capacity")

    assert form.status_code == 200
    assert bad.status_code == 422
    assert "Places free cannot be more than places in all" in bad.text
    assert good.status_code == 303
    assert "3 of 8 places free" in after.text


async def test_a_live_queue_whose_session_ended_sends_the_whole_page_to_sign_in(
    stack: Stack,
) -> None:
    browser = await signed_in(stack, "north.handler")
    live = {"HX-Request": "true", "HX-Current-URL": "http://spa.test/console/queue"}
    fresh = await browser.client.get("/console/queue/rows", headers=live)
    stack.clock.now += timedelta(minutes=31)
    ended = await browser.client.get("/console/queue/rows", headers=live)

    assert fresh.status_code == 200
    assert 'id="queue-rows"' in fresh.text
    assert ended.headers["hx-redirect"] == "/console/sign-in?next=/console/queue"
    assert ended.text == ""
