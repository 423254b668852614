"""One referral through the three services, in-process, on PostgreSQL and on SQLite."""

from __future__ import annotations

from typing import Any

from tests import factories
from tests.stack import Stack


async def post_and_wait_routed(
    stack: Stack, body: dict[str, Any], client_id: str = "gp-system"
) -> dict[str, Any]:
    async with stack.client("spa", client_id) as spa:
        created = await spa.post("/v1/referrals", json=body)
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        assert created.headers["location"] == f"/v1/referrals/{referral_id}"

        async def settled() -> dict[str, Any] | None:
            current = (await spa.get(f"/v1/referrals/{referral_id}")).json()
            return current if current["status"] not in ("received", "triaged") else None

        result: dict[str, Any] = await stack.wait_for(settled)
        return result


async def test_gp_referral_is_routed_to_the_practice_plmdt_and_on_its_caseload(
    any_stack: Stack,
) -> None:
    body = factories.referral(needs=["ltc_management"], practice="M91004")
    referral = await post_and_wait_routed(any_stack, body)

    assert referral["status"] == "routed"
    assert referral["routing"]["pathway"] == "case_management"
    assert referral["routing"]["reason"]
    assert referral["team"]["code"] == "plmdt-north-2"
    async with any_stack.client("teams", "team-app") as teams:
        caseload = (await teams.get(f"/v1/teams/{referral['team']['code']}/caseload")).json()
    assert [item["referral_id"] for item in caseload["items"]] == [referral["id"]]
    assert caseload["items"][0]["pathway"] == "case_management"


async def test_ambulance_fall_in_crisis_goes_to_the_locality_team_for_rapid_response(
    stack: Stack,
) -> None:
    body = factories.referral(
        channel="ambulance", urgency="crisis", needs=["fall"], practice="M91001"
    )
    referral = await post_and_wait_routed(stack, body, client_id="ambulance-cad")

    assert referral["routing"]["pathway"] == "rapid_response"
    assert referral["routing"]["response_target"] == "PT2H"
    assert referral["team"]["code"] == "lit-north"


async def test_model_b_locality_routes_long_term_work_to_the_integrated_team(stack: Stack) -> None:
    referral = await post_and_wait_routed(
        stack, factories.referral(needs=["dementia_support"], practice="M92004")
    )

    assert referral["team"]["code"] == "int-east-2"
    assert referral["team"]["team_type"] == "integrated"


async def test_safeguarding_concern_escalates_to_the_cru_alongside_the_care_pathway(
    stack: Stack,
) -> None:
    safeguarding = {
        "concern": True,
        "categories": ["financial"],
        "adult_aware": True,
        "adult_consents": True,
    }
    body = factories.referral(
        channel="ambulance", urgency="crisis", needs=["fall"], safeguarding=safeguarding
    )
    referral = await post_and_wait_routed(stack, body, client_id="ambulance-cad")

    assert referral["status"] == "routed"
    assert referral["routing"]["pathway"] == "rapid_response"
    assert referral["routing"]["escalations"] == ["safeguarding"]
    kinds = {a["kind"]: a["team"]["code"] for a in referral["assignments"]}
    assert kinds == {"care": "lit-north", "safeguarding": "cru-county"}


async def test_red_flag_is_redirected_to_emergency_services_without_a_team(stack: Stack) -> None:
    body = factories.referral(
        channel="ambulance", urgency="crisis", needs=["fall"], red_flags=["chest_pain"]
    )
    referral = await post_and_wait_routed(stack, body, client_id="ambulance-cad")

    assert referral["status"] == "redirected_emergency"
    assert referral["routing"]["pathway"] == "redirect_emergency"
    assert referral["assignments"] == []


async def test_unknown_practice_falls_back_to_the_locality_of_the_postcode(stack: Stack) -> None:
    # Short-term work: the locality team of the postcode's locality takes it.
    body = factories.referral(
        needs=["post_discharge_support"], practice="V81999", postcode="XW7 9QQ"
    )
    referral = await post_and_wait_routed(stack, body)

    assert referral["status"] == "routed"
    assert referral["team"]["code"] == "lit-south"
    assert referral["locality_code"] == "south"


async def test_routine_work_for_an_unknown_practice_is_not_given_to_a_guessed_practice_team(
    stack: Stack,
) -> None:
    body = factories.referral(needs=["wound_care"], practice="V81999", postcode="XW7 9QQ")
    referral = await post_and_wait_routed(stack, body)
    async with stack.client("spa", "south-call-handlers") as handlers:
        queue = (await handlers.get("/v1/queue")).json()["items"]

    # South is Model A: a routine assessment belongs to the practice's PLMDT, so the locality's
    # call handlers find the practice rather than the first PLMDT by code being chosen.
    assert referral["status"] == "awaiting_assessment"
    assert referral["team"] is None
    assert [(item["referral_id"], item["queue_reason"]) for item in queue] == [
        (referral["id"], "practice_unknown")
    ]


async def test_timeline_records_each_step_with_its_actor(stack: Stack) -> None:
    referral = await post_and_wait_routed(stack, factories.referral(needs=["ltc_management"]))
    async with stack.client("spa", "gp-system") as spa:
        timeline = (await spa.get(f"/v1/referrals/{referral['id']}/timeline")).json()

    steps = [(event["event_type"], event["actor"]) for event in timeline["events"]]
    assert steps == [("received", "gp-system"), ("triaged", "spa-router"), ("routed", "spa-router")]


async def test_a_refused_read_is_answered_at_once_and_audited_on_both_databases(
    any_stack: Stack,
) -> None:
    async with any_stack.client("spa", "gp-system") as gp:
        referral_id = (await gp.post("/v1/referrals", json=factories.referral())).json()["id"]
    async with any_stack.client("spa", "other-gp-system") as other:
        refused = await other.get(f"/v1/referrals/{referral_id}")

    assert refused.status_code == 404
    from services.spa.audit import AuditEvent

    assert await any_stack.count_rows("spa", AuditEvent) == 2  # the create, and the refused read
