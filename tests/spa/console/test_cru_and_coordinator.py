"""The Central Referral Unit's console (safeguarding escalations, acknowledged by accepting them
in teams) and the locality coordinator's (breached and at-risk cases, re-routed to the next
team now)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.spa.audit import AuditEvent
from services.spa.referrals.models import ReferralTimer
from tests import factories
from tests.e2e.test_caseload_lifecycle import timeline
from tests.spa.console.helpers import signed_in
from tests.stack import Stack, post_referral, running_stack

CONCERN = {
    "concern": True,
    "categories": ["financial", "psychological"],
    "care_and_support_needs": True,
    "adult_aware": True,
    "adult_consents": True,
    "immediate_actions": "Neighbour asked to hold the bank card until the visit.",
}


async def _safeguarding_case(stack: Stack) -> tuple[dict[str, Any], str]:
    body = factories.referral(
        channel="ambulance", urgency="crisis", needs=["fall"], safeguarding=CONCERN
    )
    referral = await post_referral(stack, "ambulance-cad", body)
    assert referral["status"] == "routed", referral
    escalation = next(a for a in referral["assignments"] if a["kind"] == "safeguarding")
    assert escalation["team"]["code"] == "cru-county"
    return referral, str(escalation["assignment_id"])


async def _assignment_status(
    stack: Stack, referral_id: str, kind: str, referrer: str = "gp-system"
) -> list[tuple[str, str]]:
    async with stack.client("spa", referrer) as spa:
        read = (await spa.get(f"/v1/referrals/{referral_id}")).json()
    return [(a["team"]["code"], a["status"]) for a in read["assignments"] if a["kind"] == kind]


async def _actions_of(stack: Stack, client_id: str) -> set[str]:
    async with stack.apps["spa"].state.sessionmaker() as session:
        found = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.client_id == client_id)
        )
        return set(found)


async def test_the_cru_sees_a_concern_with_its_s42_details_and_acknowledges_it(
    stack: Stack,
) -> None:
    referral, assignment_id = await _safeguarding_case(stack)
    browser = await signed_in(stack, "cru.officer")

    page = await browser.get("/console/cru")
    assert page.status_code == 200, page.text
    assert f"/console/referrals/{referral['id']}" in page.text
    assert "Financial, Psychological" in page.text
    assert "Neighbour asked to hold the bank card" in page.text
    assert "Does the adult have needs for care and support?" in page.text
    assert "Not acknowledged" in page.text
    assert " left (due " in page.text
    acknowledged = await browser.post(
        f"/console/cru/{assignment_id}/acknowledge", {"first_contact": "hour"}
    )
    assert acknowledged.status_code == 303, acknowledged.text

    async def accepted() -> bool:
        found = await _assignment_status(stack, referral["id"], "safeguarding", "ambulance-cad")
        return found == [("cru-county", "accepted")]

    await stack.wait_for(accepted)
    async with stack.client("spa", "ambulance-cad") as spa:
        read = (await spa.get(f"/v1/referrals/{referral['id']}/timeline")).json()
    assert "safeguarding_accepted" in [event["event_type"] for event in read["events"]]
    case_page = await browser.get(f"/console/referrals/{referral['id']}")
    assert "Safeguarding accepted" in case_page.text
    after = await browser.get("/console/cru")
    assert "Acknowledged" in after.text
    assert "Not acknowledged" not in after.text
    async with stack.apps["spa"].state.sessionmaker() as session:
        clock = await session.scalar(
            select(ReferralTimer.status).where(ReferralTimer.kind == "safeguarding_ack")
        )
    assert clock == "cancelled"
    assert "console.cru" in await _actions_of(stack, "person:cru.officer")


@pytest.mark.parametrize("username", ["lit.north", "north.handler"])
async def test_the_cru_page_is_for_the_cru_only(stack: Stack, username: str) -> None:
    browser = await signed_in(stack, username)
    page = await browser.get("/console/cru")
    assert page.status_code == 403
    assert "This page is for central referral unit" in page.text


async def test_an_acknowledgement_without_its_csrf_token_is_refused(stack: Stack) -> None:
    referral, assignment_id = await _safeguarding_case(stack)
    browser = await signed_in(stack, "cru.officer")
    forged = await browser.client.post(
        f"/console/cru/{assignment_id}/acknowledge", data={"first_contact": "hour"}
    )

    assert forged.status_code == 403
    assert await _assignment_status(stack, referral["id"], "safeguarding", "ambulance-cad") == [
        ("cru-county", "assigned")
    ]


# Routine work waits 28 days; the teams' windows here outlast it, so the case is still with its
# first team when the deadline passes.
LONG_WINDOWS = "at_risk_fraction: 0.75\nacceptance_windows:\n  routine_assessment: P14D\n"


@pytest.fixture
async def patient_stack(
    postgres_urls: dict[str, str], issuer_key_file: Path, tmp_path: Path
) -> AsyncIterator[Stack]:
    policy = tmp_path / "clock_policy.yaml"
    policy.write_text(LONG_WINDOWS, encoding="utf-8")
    overrides = {"spa": {"clock_policy_file": policy}}
    async with running_stack(postgres_urls, issuer_key_file, overrides=overrides) as running:
        yield running


async def _past_deadline(stack: Stack) -> None:
    stack.clock.now += timedelta(days=28, minutes=5)
    await stack.apps["spa"].state.timers.run_once()


async def test_a_breached_case_is_listed_with_its_team_and_rerouted_to_the_next(
    patient_stack: Stack,
) -> None:
    stack = patient_stack
    north = await post_referral(stack, "gp-system", factories.referral(practice="M91001"))
    south = await post_referral(stack, "gp-system", factories.referral(practice="M93002"))
    assert north["team"]["code"] == "plmdt-north-1", north
    await _past_deadline(stack)
    browser = await signed_in(stack, "north.coordinator")

    page = await browser.get("/console/escalations")
    assert page.status_code == 200, page.text
    assert f"/console/referrals/{north['id']}/reroute" in page.text
    assert f"/console/referrals/{south['id']}" not in page.text
    assert f"{north['team']['name']} (assigned)" in page.text
    assert "Overdue" in page.text
    unexplained = await browser.post(f"/console/referrals/{north['id']}/reroute", {"reason": ""})
    assert unexplained.status_code == 422
    assert "There is a problem" in unexplained.text
    rerouted = await browser.post(
        f"/console/referrals/{north['id']}/reroute", {"reason": "team_unable_to_respond"}
    )
    assert rerouted.status_code == 303, rerouted.text
    await stack.apps["spa"].state.timers.run_once()

    async def moved() -> list[tuple[str, str]] | None:
        found = await _assignment_status(stack, north["id"], "care")
        return found if len(found) > 1 else None

    care = await stack.wait_for(moved)
    assert care[0] == ("plmdt-north-1", "withdrawn")
    assert care[-1][0] != "plmdt-north-1"
    assert care[-1][1] == "assigned"
    events = await timeline(stack, north["id"])
    requested = next(e for e in events if e["event_type"] == "reroute_requested")
    assert requested["actor"] == "person:north.coordinator"
    assert requested["detail"]["reason"] == "team_unable_to_respond"
    assert "rerouted" in [e["event_type"] for e in events]
    actions = await _actions_of(stack, "person:north.coordinator")
    assert {"console.escalations", "referral.reroute"} <= actions


async def test_a_coordinator_cannot_reroute_a_case_of_another_locality(
    patient_stack: Stack,
) -> None:
    stack = patient_stack
    south = await post_referral(stack, "gp-system", factories.referral(practice="M93002"))
    await _past_deadline(stack)
    browser = await signed_in(stack, "north.coordinator")
    await browser.get("/console/escalations")
    refused = await browser.post(
        f"/console/referrals/{south['id']}/reroute", {"reason": "wrong_team"}
    )

    assert refused.status_code == 404
    assert await _assignment_status(stack, south["id"], "care") == [
        (south["team"]["code"], "assigned")
    ]


async def test_a_case_past_its_at_risk_point_is_listed_as_at_risk_with_the_time_left(
    patient_stack: Stack,
) -> None:
    stack = patient_stack
    north = await post_referral(stack, "gp-system", factories.referral(practice="M91001"))
    stack.clock.now += timedelta(days=22)  # three quarters of 28 days is 21
    await stack.apps["spa"].state.timers.run_once()
    browser = await signed_in(stack, "north.coordinator")

    page = await browser.get("/console/escalations")
    breached, at_risk = page.text.split("At risk</caption>")
    assert f"/console/referrals/{north['id']}/reroute" in at_risk
    assert f"/console/referrals/{north['id']}/reroute" not in breached
    assert "days left (due 22 Dec 2026 10:00)" in at_risk
    assert "PLMDT North 1 (assigned)" in at_risk


async def test_a_case_its_team_accepted_is_not_rerouted(patient_stack: Stack) -> None:
    stack = patient_stack
    north = await post_referral(stack, "gp-system", factories.referral(practice="M91001"))
    assignment = next(a for a in north["assignments"] if a["kind"] == "care")["assignment_id"]
    planned = (stack.clock() + timedelta(days=30)).isoformat()
    async with stack.client("teams", "team-app") as team:
        accepted = await team.post(
            f"/v1/assignments/{assignment}/accept", json={"planned_first_contact_at": planned}
        )
    assert accepted.status_code == 200, accepted.text

    async def in_spa() -> bool:
        return await _assignment_status(stack, north["id"], "care") == [
            ("plmdt-north-1", "accepted")
        ]

    await stack.wait_for(in_spa)
    await _past_deadline(stack)
    browser = await signed_in(stack, "north.coordinator")
    page = await browser.get("/console/escalations")
    refused = await browser.post(
        f"/console/referrals/{north['id']}/reroute", {"reason": "wrong_team"}
    )

    assert "Not while accepted by its team" in page.text
    assert refused.status_code == 409
    assert "This case cannot be sent to another team now" in refused.text
    assert await _assignment_status(stack, north["id"], "care") == [("plmdt-north-1", "accepted")]
