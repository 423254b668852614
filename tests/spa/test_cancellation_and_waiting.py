"""The referrer can cancel its referral (teams holding it are told), and an ambulance crew can
wait for the routing outcome in the answer to its POST."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.spa.referrals.models import OutboxJob
from tests import factories
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}


async def _caseload(stack: Stack, team_code: str) -> list[dict[str, Any]]:
    async with stack.client("teams", "team-app") as teams:
        items: list[dict[str, Any]] = (await teams.get(f"/v1/teams/{team_code}/caseload")).json()[
            "items"
        ]
    return items


async def test_a_cancelled_referral_leaves_the_team_caseload_but_not_the_cru(
    stack: Stack,
) -> None:
    safeguarding = {"concern": True, "categories": ["neglect"], "adult_consents": True}
    body = factories.referral(needs=["ltc_management"], safeguarding=safeguarding)
    async with stack.client("spa", "gp-system") as gp:
        routed = (await gp.post("/v1/referrals", json=body, headers=WAIT)).json()
        cancelled = await gp.post(
            f"/v1/referrals/{routed['id']}/cancellation",
            json={"reason": "patient_admitted", "note": "Admitted overnight."},
        )
        care = next(a for a in routed["assignments"] if a["kind"] == "care")
        cru = next(a for a in routed["assignments"] if a["kind"] == "safeguarding")

        async def withdrawn() -> bool:
            # teams withdraws the case first; spa records it once teams has answered
            caseload = await _caseload(stack, care["team"]["code"])
            ours = (await gp.get(f"/v1/referrals/{routed['id']}")).json()
            return all(item["status"] == "withdrawn" for item in caseload) and any(
                a["kind"] == "care" and a["status"] == "withdrawn" for a in ours["assignments"]
            )

        await stack.wait_for(withdrawn)
        final = (await gp.get(f"/v1/referrals/{routed['id']}")).json()
        timeline = (await gp.get(f"/v1/referrals/{routed['id']}/timeline")).json()

    assert routed["status"] == "routed"
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert {a["kind"]: a["status"] for a in final["assignments"]} == {
        "care": "withdrawn",
        "safeguarding": "assigned",
    }
    cru_caseload = await _caseload(stack, cru["team"]["code"])
    assert [(i["referral_id"], i["status"]) for i in cru_caseload] == [(routed["id"], "assigned")]
    events = [(event["event_type"], event["detail"]) for event in timeline["events"]]
    assert ("cancelled", {"reason": "patient_admitted"}) in events
    assert events[-1] == (
        "assignment_withdrawn",
        {
            "assignment_id": care["assignment_id"],
            "team_id": care["team"]["id"],
            "reason": "referrer_cancelled",
        },
    )


async def test_only_the_referrer_can_cancel_and_the_others_learn_nothing(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as gp:
        referral = (await gp.post("/v1/referrals", json=factories.referral())).json()
    async with stack.client("spa", "other-gp-system") as other:
        theirs = await other.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "other"}
        )
        missing = await other.post(
            "/v1/referrals/00000000-0000-4000-8000-000000000000/cancellation",
            json={"reason": "other"},
        )

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["type"] == missing.json()["type"]


async def test_an_accepted_or_cancelled_referral_cannot_be_cancelled(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as gp:
        referral = (await gp.post("/v1/referrals", json=factories.referral())).json()
        first = await gp.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "duplicate"}
        )
        second = await gp.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "duplicate"}
        )
        bad_reason = await gp.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "bored"}
        )

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["type"] == "urn:spa-platform:problem:illegal-transition"
    assert bad_reason.status_code == 422


async def test_a_referral_cancelled_before_routing_is_never_routed(stack: Stack) -> None:
    stack.transports["routing"].down = True
    async with stack.client("spa", "gp-system") as gp:
        referral = (await gp.post("/v1/referrals", json=factories.referral())).json()
        await gp.post(f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "other"})
        stack.transports["routing"].down = False

        async def jobs_done() -> bool:
            async with stack.apps["spa"].state.sessionmaker() as session:
                statuses = set(await session.scalars(select(OutboxJob.status)))
            return statuses == {"done"}

        await stack.wait_for(jobs_done, within=10)
        final = (await gp.get(f"/v1/referrals/{referral['id']}")).json()

    assert final["status"] == "cancelled"
    assert final["routing"] is None
    assert final["assignments"] == []


async def test_a_concern_cancelled_before_routing_still_reaches_the_cru(stack: Stack) -> None:
    concern = {"concern": True, "categories": ["physical"], "adult_consents": True}
    stack.transports["routing"].down = True
    async with stack.client("spa", "gp-system") as gp:
        referral = (
            await gp.post("/v1/referrals", json=factories.referral(safeguarding=concern))
        ).json()
        await gp.post(f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "other"})
        stack.transports["routing"].down = False

        async def escalated() -> dict[str, Any] | None:
            read: dict[str, Any] = (await gp.get(f"/v1/referrals/{referral['id']}")).json()
            return read if read["assignments"] else None

        final = await stack.wait_for(escalated, within=10)

    assert final["status"] == "cancelled"
    assert [(a["kind"], a["team"]["code"]) for a in final["assignments"]] == [
        ("safeguarding", "cru-county")
    ]


async def test_waiting_returns_the_routed_outcome(stack: Stack) -> None:
    body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    async with stack.client("spa", "ambulance-cad") as cad:
        response = await cad.post("/v1/referrals", json=body, headers=WAIT)

    assert response.status_code == 201
    assert response.json()["status"] == "routed"
    assert response.json()["team"]["code"] == "lit-north"
    assert response.headers["location"] == f"/v1/referrals/{response.json()['id']}"
    assert response.headers["preference-applied"] == "wait=10"


async def test_a_wait_longer_than_the_limit_is_applied_as_the_limit(stack: Stack) -> None:
    body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    async with stack.client("spa", "ambulance-cad") as cad:
        response = await cad.post("/v1/referrals", json=body, headers={"Prefer": "wait=600"})

    assert response.status_code == 201
    assert response.headers["preference-applied"] == "wait=30"


@pytest.mark.parametrize("prefer", ["wait=1", "respond-async, wait=1", "wait=1; foo=bar"])
async def test_an_outcome_not_reached_in_time_is_answered_202_with_a_location(
    stack: Stack, prefer: str
) -> None:
    stack.transports["routing"].down = True
    body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    async with stack.client("spa", "ambulance-cad") as cad:
        response = await cad.post("/v1/referrals", json=body, headers={"Prefer": prefer})
        polled = await cad.get(response.headers["location"])

    assert response.status_code == 202
    assert response.json()["status"] == "received"
    assert response.headers["preference-applied"] == "wait=1"
    assert polled.json()["id"] == response.json()["id"]


async def test_a_retry_after_waiting_gets_the_outcome_the_first_answer_gave(stack: Stack) -> None:
    body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    headers = {**WAIT, "Idempotency-Key": "cad-incident-7781"}
    async with stack.client("spa", "ambulance-cad") as cad:
        first = await cad.post("/v1/referrals", json=body, headers=headers)
        again = await cad.post("/v1/referrals", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json()["status"] == "routed"
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert first.headers["preference-applied"] == "wait=10"
    assert "preference-applied" not in again.headers


@pytest.mark.parametrize("prefer", ["wait=soon", "wait=-1", "handling=lenient"])
async def test_a_malformed_or_other_preference_is_ignored(stack: Stack, prefer: str) -> None:
    async with stack.client("spa", "gp-system") as gp:
        response = await gp.post(
            "/v1/referrals", json=factories.referral(), headers={"Prefer": prefer}
        )

    assert response.status_code == 201
    assert response.json()["status"] == "received"
    assert "preference-applied" not in response.headers
