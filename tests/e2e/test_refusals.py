"""A locality may have its rules refuse a case (a child, say) rather than hold it for a call
handler: the referrer is told why, no team is asked, and a safeguarding concern still reaches
the CRU."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from services.teams.caseloads.models import Assignment
from tests import factories
from tests.e2e.test_caseload_lifecycle import timeline
from tests.routing.test_rule_sets_api import refuse_children, upload, variant
from tests.stack import MORNING, Stack, post_referral

SOUTH_PRACTICE = "M93001"
SIXTEEN: date = (MORNING - timedelta(days=16 * 365 + 30)).date()
SAFEGUARDING = {
    "concern": True,
    "categories": ["neglect"],
    "adult_aware": True,
    "adult_consents": True,
}


async def south_refuses_children(stack: Stack) -> None:
    """The south locality's own rules: the county's, refusing under-18s instead of holding them."""
    async with stack.client("routing", "clinical-lead") as lead:
        south = await upload(lead, variant("south-1", refuse_children), scope="south")
        assert south.status_code == 201, south.text
        activated = await lead.post(f"/v1/rule-sets/{south.json()['id']}/activate")
        assert activated.status_code == 200, activated.text


def child_in_south(**overrides: Any) -> dict[str, Any]:
    return factories.referral(
        needs=["mobility_assessment"],
        practice=SOUTH_PRACTICE,
        postcode="XW6 1AA",
        born=SIXTEEN,
        **overrides,
    )


async def teams_assignments(stack: Stack, referral_id: str) -> list[str]:
    """The kinds of assignment teams holds for the referral, read from its own database."""
    engine = stack.apps["teams"].state.engine
    query = select(Assignment.kind).where(Assignment.referral_id == uuid.UUID(referral_id))
    async with engine.connect() as connection:
        return sorted((await connection.scalars(query)).all())


async def test_a_child_from_a_locality_that_refuses_children_is_closed_with_the_reason(
    stack: Stack,
) -> None:
    await south_refuses_children(stack)

    referral = await post_referral(stack, "gp-system", child_in_south())
    events = await timeline(stack, referral["id"])

    assert referral["status"] == "closed"
    assert referral["refusal"] == {
        "type": "urn:spa-platform:problem:referral-refused",
        "title": "The triage rules refuse this referral",
        "detail": referral["routing"]["reason"],
        "code": "under_18",
    }
    assert "under 18" in referral["refusal"]["detail"]
    assert (referral["team"], referral["assignments"]) == (None, [])
    assert await teams_assignments(stack, referral["id"]) == []
    assert [(e["event_type"], e["to_status"]) for e in events][-2:] == [
        ("triaged", "triaged"),
        ("closed", "closed"),
    ]
    assert events[-1]["detail"] == {
        "reason": "refused_by_rules",
        "refusal": "under_18",
        "decision_id": str(referral["routing"]["decision_id"]),
        "rule_id": "child-held-for-call-handler",
    }


async def test_a_refused_child_with_a_safeguarding_concern_still_goes_to_the_cru(
    stack: Stack,
) -> None:
    await south_refuses_children(stack)

    referral = await post_referral(stack, "gp-system", child_in_south(safeguarding=SAFEGUARDING))

    async def escalated() -> list[dict[str, Any]]:
        async with stack.client("spa", "gp-system") as spa:
            read = (await spa.get(f"/v1/referrals/{referral['id']}")).json()
        found: list[dict[str, Any]] = read["assignments"]
        return found

    assignments = await stack.wait_for(escalated)
    assert referral["status"] == "closed"
    assert referral["refusal"]["code"] == "under_18"
    assert [(a["kind"], a["team"]["code"]) for a in assignments] == [("safeguarding", "cru-county")]
    assert await teams_assignments(stack, referral["id"]) == ["safeguarding"]


async def test_the_county_still_holds_a_child_when_only_another_locality_refuses(
    stack: Stack,
) -> None:
    await south_refuses_children(stack)

    body = factories.referral(needs=["mobility_assessment"], born=SIXTEEN)  # a north practice
    referral = await post_referral(stack, "gp-system", body)

    assert referral["status"] == "awaiting_assessment"
    assert referral["refusal"] is None


async def test_a_refused_case_is_not_a_missed_response_target(stack: Stack) -> None:
    await south_refuses_children(stack)
    start = stack.clock()
    referral = await post_referral(stack, "gp-system", child_in_south())
    stack.clock.now = start + timedelta(days=29)  # past the 28 days of routine assessment
    query = {
        "from": (start - timedelta(hours=1)).isoformat(),
        "to": (start + timedelta(days=1)).isoformat(),
        "pathway": "routine_assessment",
    }
    async with stack.client("spa", "county-reports") as reports:
        summary = (await reports.get("/v1/reports/response-times", params=query)).json()
        rows = await reports.get("/v1/reports/response-times", params={**query, "format": "csv"})

    assert referral["status"] == "closed"
    assert (summary["referrals"], summary["outcome_known"]) == (1, 0)
    assert summary["share_within_target"] is None
    header, line = rows.text.strip().splitlines()
    assert dict(zip(header.split(","), line.split(","), strict=True))["within_target"] == ""
