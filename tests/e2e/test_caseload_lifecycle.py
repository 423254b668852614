"""A team works its caseload (accept, first contact, close, decline) and the referral in spa
follows, in order, even across an outage; capacity and MDT worklists belong to the team."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from tests import factories
from tests.stack import Stack


async def routed_referral(stack: Stack, **overrides: Any) -> dict[str, Any]:
    body = factories.referral(**{"needs": ["ltc_management"], "practice": "M91001", **overrides})
    async with stack.client("spa", "gp-system") as spa:
        referral_id = (await spa.post("/v1/referrals", json=body)).json()["id"]

        async def routed() -> dict[str, Any] | None:
            current: dict[str, Any] = (await spa.get(f"/v1/referrals/{referral_id}")).json()
            return current if current["status"] == "routed" else None

        result: dict[str, Any] = await stack.wait_for(routed)
        return result


async def wait_for_status(stack: Stack, referral_id: str, status: str) -> dict[str, Any]:
    async with stack.client("spa", "gp-system") as spa:

        async def reached() -> dict[str, Any] | None:
            current: dict[str, Any] = (await spa.get(f"/v1/referrals/{referral_id}")).json()
            return current if current["status"] == status else None

        result: dict[str, Any] = await stack.wait_for(reached)
        return result


async def timeline(stack: Stack, referral_id: str) -> list[dict[str, Any]]:
    async with stack.client("spa", "gp-system") as spa:
        events: list[dict[str, Any]] = (
            await spa.get(f"/v1/referrals/{referral_id}/timeline")
        ).json()["events"]
        return events


def care_assignment(referral: dict[str, Any]) -> str:
    return str(next(a["assignment_id"] for a in referral["assignments"] if a["kind"] == "care"))


async def test_accept_first_contact_and_close_move_the_referral(stack: Stack) -> None:
    referral = await routed_referral(stack)
    assignment = care_assignment(referral)
    planned = (stack.clock() + timedelta(hours=3)).isoformat()
    async with stack.client("teams", "team-app") as team:
        too_soon = await team.post(
            f"/v1/assignments/{assignment}/first-contact", json={"at": stack.clock().isoformat()}
        )
        accepted = await team.post(
            f"/v1/assignments/{assignment}/accept", json={"planned_first_contact_at": planned}
        )
        accepted_in_spa = await wait_for_status(stack, referral["id"], "accepted")
        stack.clock.now += timedelta(hours=2)
        contact = await team.post(
            f"/v1/assignments/{assignment}/first-contact", json={"at": stack.clock().isoformat()}
        )
        closed = await team.post(
            f"/v1/assignments/{assignment}/close", json={"outcome": "completed"}
        )
    await wait_for_status(stack, referral["id"], "closed")

    assert too_soon.status_code == 409
    assert too_soon.json()["type"] == "urn:spa-platform:problem:assignment-state-conflict"
    assert (accepted.status_code, contact.status_code, closed.status_code) == (200, 200, 200)
    spa_assignment = accepted_in_spa["assignments"][0]
    assert spa_assignment["status"] == "accepted"
    assert spa_assignment["planned_first_contact_at"].startswith(planned[:16])
    events = [event["event_type"] for event in await timeline(stack, referral["id"])]
    assert events == ["received", "triaged", "routed", "accepted", "team_first_contact", "closed"]


async def test_a_decline_reaches_spa_with_its_reason_code_but_not_its_note(stack: Stack) -> None:
    referral = await routed_referral(stack)
    body = {"reason": "capacity_full", "note": "Two staff off sick this week."}
    async with stack.client("teams", "team-app") as team:
        declined = await team.post(
            f"/v1/assignments/{care_assignment(referral)}/decline", json=body
        )
        again = await team.post(f"/v1/assignments/{care_assignment(referral)}/decline", json=body)
    await wait_for_status(stack, referral["id"], "declined")

    assert declined.json()["decline_reason"] == "capacity_full"
    assert again.status_code == 409
    declined_event = next(
        e for e in await timeline(stack, referral["id"]) if e["event_type"] == "declined"
    )
    assert declined_event["detail"]["decline_reason"] == "capacity_full"
    assert "sick" not in str(declined_event)


async def test_bad_times_are_refused(stack: Stack) -> None:
    referral = await routed_referral(stack)
    assignment = care_assignment(referral)
    async with stack.client("teams", "team-app") as team:
        past = await team.post(
            f"/v1/assignments/{assignment}/accept",
            json={"planned_first_contact_at": (stack.clock() - timedelta(days=1)).isoformat()},
        )
        naive = await team.post(
            f"/v1/assignments/{assignment}/accept",
            json={"planned_first_contact_at": "2026-11-24T12:00:00"},
        )
        await team.post(
            f"/v1/assignments/{assignment}/accept",
            json={"planned_first_contact_at": stack.clock().isoformat()},
        )
        future = await team.post(
            f"/v1/assignments/{assignment}/first-contact",
            json={"at": (stack.clock() + timedelta(hours=1)).isoformat()},
        )

    assert past.status_code == 422
    assert past.json()["type"] == "urn:spa-platform:problem:invalid-time"
    assert naive.status_code == 422
    assert future.status_code == 422


async def test_a_team_client_acts_only_for_its_own_teams(stack: Stack) -> None:
    referral = await routed_referral(stack)  # on PLMDT North 1's caseload
    team_code = referral["team"]["code"]
    async with stack.client("teams", "lit-north-app") as other:
        accept = await other.post(
            f"/v1/assignments/{care_assignment(referral)}/accept",
            json={"planned_first_contact_at": stack.clock().isoformat()},
        )
        caseload = await other.get(f"/v1/teams/{team_code}/caseload")
        capacity = await other.put(
            f"/v1/teams/{team_code}/capacity", json={"available": 1, "maximum": 2, "unit": "cases"}
        )

    # Another team's case is answered as one that does not exist; the team itself is in the
    # directory for all to see, so managing it is refused openly.
    assert accept.status_code == 404
    assert accept.json()["type"] == "urn:spa-platform:problem:assignment-not-found"
    for response in (caseload, capacity):
        assert response.status_code == 403
        assert response.json()["type"] == "urn:spa-platform:problem:team-not-permitted"


async def test_changes_made_while_spa_is_down_arrive_in_order_when_it_returns(stack: Stack) -> None:
    referral = await routed_referral(stack)
    assignment = care_assignment(referral)
    stack.transports["spa"].down = True
    async with stack.client("teams", "team-app") as team:
        await team.post(
            f"/v1/assignments/{assignment}/accept",
            json={"planned_first_contact_at": stack.clock().isoformat()},
        )
        await team.post(
            f"/v1/assignments/{assignment}/first-contact", json={"at": stack.clock().isoformat()}
        )
        await team.post(f"/v1/assignments/{assignment}/close", json={})
    await asyncio.sleep(0.3)
    stack.transports["spa"].down = False
    # Past the reporter's backoff, however many tries it made while spa was down.
    stack.clock.now += timedelta(minutes=6)
    await wait_for_status(stack, referral["id"], "closed")

    events = [event["event_type"] for event in await timeline(stack, referral["id"])]
    assert events[-3:] == ["accepted", "team_first_contact", "closed"]


async def test_the_cru_acknowledging_a_concern_leaves_the_care_status_alone(stack: Stack) -> None:
    safeguarding = {
        "concern": True,
        "categories": ["neglect"],
        "adult_aware": True,
        "adult_consents": True,
    }
    referral = await routed_referral(stack, safeguarding=safeguarding)
    cru = next(a["assignment_id"] for a in referral["assignments"] if a["kind"] == "safeguarding")
    async with stack.client("teams", "team-app") as team:
        await team.post(
            f"/v1/assignments/{cru}/accept",
            json={"planned_first_contact_at": stack.clock().isoformat()},
        )

    async def acknowledged() -> bool:
        return any(
            e["event_type"] == "safeguarding_accepted"
            for e in await timeline(stack, referral["id"])
        )

    await stack.wait_for(acknowledged)
    async with stack.client("spa", "gp-system") as spa:
        assert (await spa.get(f"/v1/referrals/{referral['id']}")).json()["status"] == "routed"


async def test_capacity_is_reported_by_the_team_and_goes_stale(stack: Stack) -> None:
    before = stack.clock()
    async with stack.client("teams", "lit-north-app") as team:
        lit_north = next(
            t for t in (await team.get("/v1/teams")).json()["items"] if t["code"] == "lit-north"
        )
        reported = await team.put(
            f"/v1/teams/{lit_north['code']}/capacity",
            json={"available": 3, "maximum": 10, "unit": "visits", "operating_status": "pressured"},
        )
        after = stack.clock()
        too_many = await team.put(
            f"/v1/teams/{lit_north['code']}/capacity",
            json={"available": 11, "maximum": 10, "unit": "visits"},
        )
        stack.clock.now += timedelta(hours=5)
        later = (await team.get(f"/v1/teams/{lit_north['code']}")).json()["capacity"]

    assert reported.status_code == 200
    capacity = reported.json()
    assert before <= datetime.fromisoformat(capacity.pop("updated")) <= after
    assert capacity == {
        "available": 3,
        "maximum": 10,
        "unit": "visits",
        "known": True,
        "operating_status": "pressured",
    }
    assert too_many.status_code == 422
    assert (later["known"], later["available"], later["maximum"]) == (False, None, 10)


async def test_high_risk_cases_are_on_the_mdt_worklist(stack: Stack) -> None:
    frail = await routed_referral(
        stack, risk={"clinical_frailty_scale": 7, "long_term_conditions": 2}
    )
    await routed_referral(stack, risk={"clinical_frailty_scale": 3})
    end_of_life = await routed_referral(
        stack, risk={"end_of_life": True, "long_term_conditions": 6}
    )
    async with stack.client("teams", "team-app") as team:
        worklist = (await team.get(f"/v1/teams/{frail['team']['code']}/worklist")).json()

    reasons = {item["referral_id"]: item["reasons"] for item in worklist["items"]}
    assert reasons == {
        frail["id"]: ["clinical frailty scale 7"],
        end_of_life["id"]: ["6 long-term conditions", "end of life"],
    }


async def test_a_team_reads_the_referrals_on_its_caseload_and_no_others(stack: Stack) -> None:
    referral = await routed_referral(stack)  # on PLMDT North 1's caseload
    async with stack.client("spa", "team-app") as holder:
        held = await holder.get(f"/v1/referrals/{referral['id']}")
    async with stack.client("spa", "lit-north-app") as other:
        not_held = await other.get(f"/v1/referrals/{referral['id']}")

    assert held.status_code == 200
    assert held.json()["patient"]["family_name"] == "Testperson"
    assert not_held.status_code == 404
