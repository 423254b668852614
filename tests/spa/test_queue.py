"""The call-handler queue: cases wait by urgency then age, one handler works a case at a time,
and an assessment, advice, a duplicate closure or a CRU transfer moves the case on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.spa.referrals.models import Referral
from tests import factories
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}
ASSESS = {"outcome": "contact_assessment_needed"}


async def _queued(stack: Stack, **overrides: Any) -> dict[str, Any]:
    """A county contact that needs an assessment, now waiting in its locality's queue."""
    body = factories.referral(channel="county_contact", contact=ASSESS, **overrides)
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)
    assert response.json()["status"] == "awaiting_assessment", response.text
    referral: dict[str, Any] = response.json()
    return referral


async def _claim(handlers: httpx.AsyncClient, referral_id: str, handler: str = "h-101") -> str:
    response = await handlers.post(f"/v1/queue/{referral_id}/claim", json={"handler": handler})
    assert response.status_code == 200, response.text
    claim_id: str = response.json()["claim_id"]
    return claim_id


async def test_the_queue_is_ordered_by_urgency_then_age_and_shows_no_identifiers(
    stack: Stack,
) -> None:
    routine = await _queued(stack, urgency="routine")
    urgent_first = await _queued(stack, urgency="urgent")
    crisis = await _queued(stack, urgency="crisis", needs=["fall"])
    urgent_second = await _queued(stack, urgency="urgent")
    async with stack.client("spa", "north-call-handlers") as handlers:
        response = await handlers.get("/v1/queue")

    assert response.status_code == 200
    order = [item["referral_id"] for item in response.json()["items"]]
    assert order == [crisis["id"], urgent_first["id"], urgent_second["id"], routine["id"]]
    assert "Testperson" not in response.text
    assert crisis["patient"]["nhs_number"].replace(" ", "") not in response.text.replace(" ", "")


async def test_handlers_see_only_their_own_localities(stack: Stack) -> None:
    north = await _queued(stack, practice="M91001")
    south = await _queued(stack, practice="M93002")
    async with (
        stack.client("spa", "north-call-handlers") as north_handlers,
        stack.client("spa", "county-call-handlers") as county_handlers,
    ):
        seen_north = (await north_handlers.get("/v1/queue")).json()["items"]
        seen_county = (await county_handlers.get("/v1/queue")).json()["items"]
        filtered = (await county_handlers.get("/v1/queue", params={"locality": "south"})).json()
        claim_elsewhere = await north_handlers.post(
            f"/v1/queue/{south['id']}/claim", json={"handler": "h-1"}
        )
        read_elsewhere = await north_handlers.get(f"/v1/referrals/{south['id']}")
        read_own = await north_handlers.get(f"/v1/referrals/{north['id']}")

    assert [item["referral_id"] for item in seen_north] == [north["id"]]
    assert {item["referral_id"] for item in seen_county} == {north["id"], south["id"]}
    assert [item["referral_id"] for item in filtered["items"]] == [south["id"]]
    assert claim_elsewhere.status_code == 404
    assert read_elsewhere.status_code == 404
    assert read_own.status_code == 200


async def test_a_county_desk_cannot_read_referrals_that_never_came_to_a_queue(
    stack: Stack,
) -> None:
    async with stack.client("spa", "gp-system") as gp:
        routed = (await gp.post("/v1/referrals", json=factories.referral(), headers=WAIT)).json()
    async with stack.client("spa", "county-call-handlers") as handlers:
        read = await handlers.get(f"/v1/referrals/{routed['id']}")
        claim = await handlers.post(f"/v1/queue/{routed['id']}/claim", json={"handler": "h-1"})

    assert routed["status"] == "routed"
    assert read.status_code == 404
    assert claim.status_code == 404


async def test_only_call_handler_systems_work_the_queue(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as gp:
        response = await gp.get("/v1/queue")

    assert response.status_code == 403


async def test_concurrent_claims_give_the_case_to_exactly_one_handler(any_stack: Stack) -> None:
    referral = await _queued(any_stack)
    async with any_stack.client("spa", "county-call-handlers") as handlers:
        responses = await asyncio.gather(
            *(
                handlers.post(f"/v1/queue/{referral['id']}/claim", json={"handler": f"h-{n}"})
                for n in range(10)
            )
        )
        queue = (await handlers.get("/v1/queue")).json()["items"]

    codes = sorted(response.status_code for response in responses)
    assert codes == [200] + [409] * 9, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert queue[0]["claim"]["handler"] == winner["handler"]
    refused = next(r.json() for r in responses if r.status_code == 409)
    assert refused["type"] == "urn:spa-platform:problem:case-claimed"


async def test_a_lapsed_claim_lets_another_handler_take_the_case(stack: Stack) -> None:
    referral = await _queued(stack)
    async with stack.client("spa", "north-call-handlers") as handlers:
        first = await _claim(handlers, referral["id"], "h-1")
        refused = await handlers.post(f"/v1/queue/{referral['id']}/claim", json={"handler": "h-2"})
        renewed = await _claim(handlers, referral["id"], "h-1")
        stack.clock.now += timedelta(seconds=stack.apps["spa"].state.settings.queue_claim_seconds)
        second = await _claim(handlers, referral["id"], "h-2")
        stale = await handlers.post(f"/v1/queue/{referral['id']}/release", json={"claim_id": first})

    assert refused.status_code == 409
    assert renewed == first
    assert second != first
    assert stale.status_code == 409
    assert stale.json()["type"] == "urn:spa-platform:problem:claim-not-held"


async def test_an_assessment_feeds_triage_and_the_case_is_routed(stack: Stack) -> None:
    referral = await _queued(stack, needs=["mobility_assessment"])
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim_id = await _claim(handlers, referral["id"])
        assessed = await handlers.post(
            f"/v1/queue/{referral['id']}/assessment",
            json={
                "claim_id": claim_id,
                "urgency": "crisis",
                "needs": ["fall", "reduced_function"],
                "note": "Fell twice today; lives alone.",
            },
        )

        async def routed() -> dict[str, Any] | None:
            read = (await handlers.get(f"/v1/referrals/{referral['id']}")).json()
            return read if read["status"] == "routed" else None

        final = await stack.wait_for(routed)
        queue = (await handlers.get("/v1/queue")).json()["items"]
        timeline = (await handlers.get(f"/v1/referrals/{referral['id']}/timeline")).json()

    assert assessed.status_code == 200, assessed.text
    assert final["urgency"] == "crisis"
    assert final["routing"]["pathway"] == "rapid_response"
    assert final["team"]["code"] == "lit-north"
    assert queue == []
    events = [event["event_type"] for event in timeline["events"]]
    assert events[-3:] == ["contact_assessment_completed", "triaged", "routed"]
    # The note stays with the referral; the timeline holds codes only.
    assert "lives alone" not in str(timeline)


async def test_an_action_needs_the_current_claim(stack: Stack) -> None:
    referral = await _queued(stack)
    advice = {"topics": ["self_care"]}
    async with stack.client("spa", "north-call-handlers") as handlers:
        unclaimed = await handlers.post(
            f"/v1/queue/{referral['id']}/advice",
            json={"claim_id": "00000000-0000-4000-8000-000000000000", "advice": advice},
        )
        claim_id = await _claim(handlers, referral["id"])
        resolved = await handlers.post(
            f"/v1/queue/{referral['id']}/advice", json={"claim_id": claim_id, "advice": advice}
        )
        again = await handlers.post(
            f"/v1/queue/{referral['id']}/advice", json={"claim_id": claim_id, "advice": advice}
        )

    assert unclaimed.status_code == 409
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved_with_advice"
    assert again.status_code == 404


async def _linked_to(stack: Stack, referral_id: str) -> str | None:
    """The referral this one is recorded as possibly duplicating, read from spa's database."""
    async with stack.apps["spa"].state.sessionmaker() as session:
        referral = await session.get(Referral, uuid.UUID(referral_id))
    assert referral is not None
    return str(referral.possible_duplicate_of) if referral.possible_duplicate_of else None


async def test_a_second_referral_for_the_same_need_is_linked_and_held(stack: Stack) -> None:
    first_body = factories.referral(needs=["mobility_assessment", "equipment"])
    second_body = factories.referral(channel="ambulance", needs=["equipment"])
    second_body["patient"] = first_body["patient"]
    async with stack.client("spa", "gp-system") as gp:
        first = (await gp.post("/v1/referrals", json=first_body, headers=WAIT)).json()
    async with stack.client("spa", "ambulance-cad") as cad:
        second = (await cad.post("/v1/referrals", json=second_body, headers=WAIT)).json()
    async with stack.client("spa", "gp-system") as gp:
        first_timeline = (await gp.get(f"/v1/referrals/{first['id']}/timeline")).json()
    async with stack.client("spa", "north-call-handlers") as handlers:
        queue = (await handlers.get("/v1/queue")).json()["items"]
        as_handler = (await handlers.get(f"/v1/referrals/{second['id']}")).json()
        handler_timeline = (await handlers.get(f"/v1/referrals/{second['id']}/timeline")).json()
        claim_id = await _claim(handlers, second["id"])
        closed = await handlers.post(
            f"/v1/queue/{second['id']}/duplicate", json={"claim_id": claim_id}
        )

    assert first["status"] == "routed"
    assert second["status"] == "awaiting_assessment"
    # Neither referrer learns of the other's referral.
    assert second["possible_duplicate_of"] is None
    assert second["queue_reason"] is None
    assert first["id"] not in str(second)
    assert second["id"] not in str(first_timeline)
    # The call handler sees the link and why the case waits.
    assert [(i["referral_id"], i["possible_duplicate_of"]) for i in queue] == [
        (second["id"], first["id"])
    ]
    assert as_handler["possible_duplicate_of"] == first["id"]
    assert as_handler["queue_reason"] == "possible_duplicate"
    linked = [
        e for e in handler_timeline["events"] if e["event_type"] == "possible_duplicate_linked"
    ]
    assert linked[0]["detail"]["other_referral_id"] == first["id"]
    assert linked[0]["actor"] == "spa"
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"


async def test_a_duplicate_of_a_referral_no_longer_open_cannot_be_closed_as_one(
    stack: Stack,
) -> None:
    first_body = factories.referral(needs=["equipment"])
    second_body = factories.referral(needs=["equipment"])
    second_body["patient"] = first_body["patient"]
    async with stack.client("spa", "gp-system") as gp:
        first = (await gp.post("/v1/referrals", json=first_body, headers=WAIT)).json()
        second = (await gp.post("/v1/referrals", json=second_body, headers=WAIT)).json()
        await gp.post(f"/v1/referrals/{first['id']}/cancellation", json={"reason": "other"})
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim_id = await _claim(handlers, second["id"])
        refused = await handlers.post(
            f"/v1/queue/{second['id']}/duplicate", json={"claim_id": claim_id}
        )

    assert second["status"] == "awaiting_assessment"
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:spa-platform:problem:no-duplicate-linked"


async def test_a_possible_duplicate_with_red_flags_is_not_held(stack: Stack) -> None:
    first_body = factories.referral(needs=["fall"])
    second_body = factories.referral(needs=["fall"], red_flags=["head_injury"], urgency="crisis")
    second_body["patient"] = first_body["patient"]
    async with stack.client("spa", "gp-system") as gp:
        first = (await gp.post("/v1/referrals", json=first_body, headers=WAIT)).json()
        second = (await gp.post("/v1/referrals", json=second_body, headers=WAIT)).json()

    assert await _linked_to(stack, second["id"]) == first["id"]
    assert second["status"] == "redirected_emergency"


@pytest.mark.parametrize(
    "change",
    [{"needs": ["equipment"]}, {"patient": {"nhs_number": None, "nhs_number_verification": "03"}}],
    ids=["another-need", "unknown-number"],
)
async def test_a_different_need_or_an_unmatched_person_is_not_a_duplicate(
    stack: Stack, change: dict[str, Any]
) -> None:
    first_body = factories.referral(needs=["fall"])
    second_body = factories.referral(needs=["fall"])
    second_body["patient"] = {**first_body["patient"], "family_name": "Otherperson"}
    if "needs" in change:
        second_body["patient"] = first_body["patient"]
        second_body["needs"] = change["needs"]
    else:
        second_body["patient"].update(change["patient"])
    async with stack.client("spa", "gp-system") as gp:
        await gp.post("/v1/referrals", json=first_body, headers=WAIT)
        second = (await gp.post("/v1/referrals", json=second_body, headers=WAIT)).json()

    assert await _linked_to(stack, second["id"]) is None
    assert second["status"] == "routed"


async def test_a_handler_transfers_a_concern_to_the_cru_and_keeps_the_case(stack: Stack) -> None:
    referral = await _queued(stack)
    concern = {"concern": True, "categories": ["neglect"], "adult_consents": True}
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim_id = await _claim(handlers, referral["id"])
        transferred = await handlers.post(
            f"/v1/queue/{referral['id']}/cru-transfer",
            json={"claim_id": claim_id, "safeguarding": concern},
        )

        async def escalated() -> dict[str, Any] | None:
            read = (await handlers.get(f"/v1/referrals/{referral['id']}")).json()
            return read if read["assignments"] else None

        final = await stack.wait_for(escalated)
        queue = (await handlers.get("/v1/queue")).json()["items"]

    assert transferred.status_code == 200, transferred.text
    assert [(a["kind"], a["team"]["code"]) for a in final["assignments"]] == [
        ("safeguarding", "cru-county")
    ]
    assert final["status"] == "awaiting_assessment"
    assert queue[0]["claim"]["claim_id"] == claim_id
    assert queue[0]["safeguarding_concern"] is True


async def test_a_transfer_without_a_concern_is_refused(stack: Stack) -> None:
    referral = await _queued(stack)
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim_id = await _claim(handlers, referral["id"])
        response = await handlers.post(
            f"/v1/queue/{referral['id']}/cru-transfer",
            json={"claim_id": claim_id, "safeguarding": {"concern": False}},
        )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "safeguarding"


async def test_an_assessment_cannot_withdraw_a_concern_and_advice_cannot_close_one(
    stack: Stack,
) -> None:
    concern = {"concern": True, "categories": ["neglect"], "adult_consents": True}
    referral = await _queued(stack, safeguarding=concern)
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim_id = await _claim(handlers, referral["id"])
        assessed = await handlers.post(
            f"/v1/queue/{referral['id']}/assessment",
            json={
                "claim_id": claim_id,
                "urgency": "routine",
                "needs": ["mobility_assessment"],
                "safeguarding": {"concern": False},
            },
        )
        advised = await handlers.post(
            f"/v1/queue/{referral['id']}/advice",
            json={"claim_id": claim_id, "advice": {"topics": ["self_care"]}},
        )
        still = (await handlers.get(f"/v1/referrals/{referral['id']}")).json()

    assert assessed.status_code == 409
    assert assessed.json()["type"] == "urn:spa-platform:problem:safeguarding-concern-stays"
    assert advised.status_code == 409
    assert advised.json()["type"] == "urn:spa-platform:problem:advice-not-enough"
    assert still["status"] == "awaiting_assessment"
    assert still["safeguarding"]["concern"] is True


async def test_a_county_contact_with_red_flags_is_not_held_for_assessment(stack: Stack) -> None:
    body = factories.referral(
        channel="self", red_flags=["chest_pain"], urgency="crisis", contact=ASSESS
    )
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)

    assert response.json()["status"] == "redirected_emergency"
