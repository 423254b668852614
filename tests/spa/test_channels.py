"""Each channel hands a case to the SPA the way that channel works: locality and national
referrals are routed to a team, the county resolves advice itself and passes contacts that need
an assessment to the locality's call handlers."""

from __future__ import annotations

from typing import Any

import pytest

from services.spa.referrals.models import OutboxJob
from tests import factories
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}
LOCALITY_CHANNELS = [
    ("gp", "gp-system"),
    ("ambulance", "ambulance-cad"),
    ("hospital_discharge", "locality-partners"),
    ("care_home", "locality-partners"),
    ("community_team", "locality-partners"),
    ("social_care", "locality-partners"),
    ("lspa", "locality-partners"),
]
COUNTY_CHANNELS = ["county_contact", "self", "carer"]


@pytest.mark.parametrize(("channel", "client_id"), LOCALITY_CHANNELS)
async def test_a_locality_referral_is_routed_to_a_team(
    stack: Stack, channel: str, client_id: str
) -> None:
    body = factories.referral(channel=channel, urgency="crisis", needs=["fall"])
    async with stack.client("spa", client_id) as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)

    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["channel"] == channel
    assert referral["status"] == "routed"
    assert referral["routing"]["pathway"] == "rapid_response"
    assert referral["team"]["code"] == "lit-north"


async def test_nhs111_passes_on_its_disposition_and_directory_entry(stack: Stack) -> None:
    nhs111 = {"dx_code": "Dx05", "dos_service_id": "2000123456", "case_reference": "111-CASE-42"}
    body = factories.referral(channel="nhs111", urgency="crisis", needs=["fall"], nhs111=nhs111)
    async with stack.client("spa", "nhs111-system") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)
        timeline = (await spa.get(f"/v1/referrals/{response.json()['id']}/timeline")).json()

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "routed"
    assert response.json()["nhs111"] == nhs111
    received = timeline["events"][0]
    assert received["event_type"] == "received"
    assert received["detail"]["dx_code"] == "Dx05"


@pytest.mark.parametrize("channel", COUNTY_CHANNELS)
async def test_advice_given_by_the_county_is_recorded_and_resolved(
    stack: Stack, channel: str
) -> None:
    advice = {"topics": ["voluntary_sector", "carer_support"], "note": "Carers' centre number."}
    contact = {"outcome": "advice_given", "advice": advice}
    body = factories.referral(channel=channel, needs=["carer_support"], contact=contact)
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body)
        timeline = (await spa.get(f"/v1/referrals/{response.json()['id']}/timeline")).json()

    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["status"] == "resolved_with_advice"
    assert referral["contact"] == contact
    assert referral["advice"] == advice
    assert referral["assignments"] == []
    assert [e["to_status"] for e in timeline["events"]] == ["received", "resolved_with_advice"]
    # Nothing is sent on to routing or teams.
    assert await stack.count_rows("spa", OutboxJob) == 0


@pytest.mark.parametrize("channel", COUNTY_CHANNELS)
async def test_a_contact_needing_assessment_waits_in_the_locality_queue(
    stack: Stack, channel: str
) -> None:
    contact = {"outcome": "contact_assessment_needed"}
    body = factories.referral(channel=channel, needs=["mobility_assessment"], contact=contact)
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)
    async with stack.client("spa", "north-call-handlers") as handlers:
        queue = (await handlers.get("/v1/queue")).json()["items"]

    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["status"] == "awaiting_assessment"
    assert queue[0]["queue_reason"] == "contact_assessment"
    assert referral["locality_code"] == "north"
    assert referral["assignments"] == []
    assert [item["referral_id"] for item in queue] == [referral["id"]]


async def test_a_safeguarding_concern_from_the_county_goes_to_the_cru_while_it_waits(
    stack: Stack,
) -> None:
    safeguarding = {"concern": True, "categories": ["financial"], "adult_consents": True}
    contact = {"outcome": "contact_assessment_needed"}
    body = factories.referral(
        channel="county_contact", safeguarding=safeguarding, contact=contact, practice="M93002"
    )
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)

    referral = response.json()
    async with stack.client("spa", "county-contact") as spa:

        async def escalated() -> dict[str, Any] | None:
            read: dict[str, Any] = (await spa.get(f"/v1/referrals/{referral['id']}")).json()
            return read if read["assignments"] else None

        final = await stack.wait_for(escalated)

    assert referral["status"] == "awaiting_assessment"
    assert referral["locality_code"] == "south"
    assert final["status"] == "awaiting_assessment"
    assert [(a["kind"], a["team"]["code"]) for a in final["assignments"]] == [
        ("safeguarding", "cru-county")
    ]


@pytest.mark.parametrize(
    ("client_id", "channel"),
    [("gp-system", "ambulance"), ("county-contact", "gp"), ("ambulance-cad", "nhs111")],
)
async def test_a_client_may_use_only_its_own_channels(
    stack: Stack, client_id: str, channel: str
) -> None:
    extra: dict[str, Any] = {"nhs111": {"dx_code": "Dx05"}} if channel == "nhs111" else {}
    async with stack.client("spa", client_id) as spa:
        response = await spa.post(
            "/v1/referrals", json=factories.referral(channel=channel, **extra)
        )

    assert response.status_code == 403
    assert response.json()["type"] == "urn:spa-platform:problem:channel-not-permitted"
