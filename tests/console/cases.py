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
