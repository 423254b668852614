"""Cases the console's journeys work on, made the way they arrive in production: through spa's
API, as the referrer's system posts them."""

from __future__ import annotations

from typing import Any

from tests import factories
from tests.stack import Stack

# Practices of the demo directory, one in each locality.
NORTH_PRACTICE, SOUTH_PRACTICE = "M91001", "M93002"


async def county_case(stack: Stack, **overrides: Any) -> dict[str, Any]:
    """A county contact that needs a contact assessment, waiting in its locality's queue."""
    body = factories.referral(
        channel="county_contact", contact={"outcome": "contact_assessment_needed"}, **overrides
    )
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body, headers={"Prefer": "wait=10"})
    assert response.status_code == 201, response.text
    referral: dict[str, Any] = response.json()
    assert referral["status"] == "awaiting_assessment", referral
    return referral


async def read_referral(stack: Stack, referral_id: str) -> dict[str, Any]:
    """The referral as spa holds it, read through the API by a county-wide desk."""
    async with stack.client("spa", "county-call-handlers") as spa:
        response = await spa.get(f"/v1/referrals/{referral_id}")
    assert response.status_code == 200, response.text
    referral: dict[str, Any] = response.json()
    return referral


async def assessed_county_case(stack: Stack, practice: str = NORTH_PRACTICE) -> dict[str, Any]:
    """A county contact a call handler of its locality has assessed through the API as a crisis
    after a fall: routed to the locality's team for a two-hour response."""
    case = await county_case(stack, practice=practice)
    desk = "north-call-handlers" if practice == NORTH_PRACTICE else "south-call-handlers"
    async with stack.client("spa", desk) as handlers:
        claimed = await handlers.post(f"/v1/queue/{case['id']}/claim", json={"handler": "h-7"})
        assert claimed.status_code == 200, claimed.text
        assessed = await handlers.post(
            f"/v1/queue/{case['id']}/assessment",
            json={
                "claim_id": claimed.json()["claim_id"],
                "urgency": "crisis",
                "needs": ["fall", "reduced_function"],
            },
        )
        assert assessed.status_code == 200, assessed.text
    return await referral_reaching(stack, case["id"], "routed")


async def referral_reaching(stack: Stack, referral_id: str, status: str) -> dict[str, Any]:
    """The referral once it has reached ``status`` (the services move it on in the background)."""

    async def reached() -> dict[str, Any] | None:
        referral = await read_referral(stack, referral_id)
        return referral if referral["status"] == status else None

    result: dict[str, Any] = await stack.wait_for(reached, within=10)
    return result


async def safeguarding_referral(stack: Stack) -> dict[str, Any]:
    """A crew's referral after a fall that raises a safeguarding concern: routed for care and
    escalated to the Central Referral Unit."""
    body = factories.referral(
        channel="ambulance",
        urgency="crisis",
        needs=["fall"],
        safeguarding={
            "concern": True,
            "categories": ["financial"],
            "adult_aware": True,
            "adult_consents": True,
        },
    )
    async with stack.client("spa", "ambulance-cad") as spa:
        response = await spa.post("/v1/referrals", json=body, headers={"Prefer": "wait=10"})
    assert response.status_code == 201, response.text
    referral: dict[str, Any] = response.json()
    assert referral["routing"]["escalations"] == ["safeguarding"], referral
    return referral
