"""Cases that fall between the rules still reach someone who can act: a patient no locality
claims, a child, a crisis that looks like a duplicate, a practice the directory does not know."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests import factories
from tests.spa.test_queue import _linked_to
from tests.stack import MORNING, Stack, post_referral

# Tuesday 24 November 2026, 18:16 in the UK: the county contact centre closed at 18:00.
TUESDAY_EVENING = MORNING.replace(hour=18, minute=16)


async def _queue(stack: Stack, client_id: str) -> list[dict[str, Any]]:
    async with stack.client("spa", client_id) as handlers:
        items: list[dict[str, Any]] = (await handlers.get("/v1/queue")).json()["items"]
    return items


async def test_a_crisis_no_locality_claims_goes_to_county_handlers_at_once(stack: Stack) -> None:
    stack.clock.now = TUESDAY_EVENING
    body = factories.referral(
        channel="nhs111",
        urgency="crisis",
        needs=["fall"],
        practice="V81999",  # practice unknown
        postcode="ZZ99 3VZ",  # no fixed abode
        nhs111={"dx_code": "Dx05"},
    )

    referral = await post_referral(stack, "nhs111-system", body)
    county = await _queue(stack, "county-call-handlers")
    north = await _queue(stack, "north-call-handlers")

    assert referral["status"] == "awaiting_assessment"
    assert referral["team"] is None
    assert referral["assignments"] == []  # not on the (closed) contact centre's caseload
    assert [(item["referral_id"], item["queue_reason"], item["urgency"]) for item in county] == [
        (referral["id"], "no_locality", "crisis")
    ]
    assert north == []


async def test_a_crisis_nobody_claims_is_escalated_by_its_clock(stack: Stack) -> None:
    body = factories.referral(
        urgency="crisis", needs=["fall"], practice="V81999", postcode="ZZ99 3VZ"
    )
    referral = await post_referral(stack, "gp-system", body)
    timers = stack.apps["spa"].state.timers

    stack.clock.now += timedelta(hours=2, minutes=1)
    await timers.run_once()
    await timers.run_once()
    async with stack.client("spa", "county-call-handlers") as handlers:
        escalations = (await handlers.get("/v1/queue/escalations")).json()["items"]

    assert [item["referral_id"] for item in escalations] == [referral["id"]]


async def test_a_crew_waiting_with_a_crisis_hears_where_it_went_though_it_may_be_a_duplicate(
    stack: Stack,
) -> None:
    first_body = factories.referral(needs=["fall"])
    second_body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    second_body["patient"] = first_body["patient"]
    first = await post_referral(stack, "gp-system", first_body)
    second = await post_referral(stack, "ambulance-cad", second_body)

    assert second["status"] == "routed"
    assert second["team"]["code"] == "lit-north"
    assert await _linked_to(stack, second["id"]) == first["id"]  # the link is kept


async def test_model_b_names_the_practices_linked_worker_to_referrer_team_and_subscriber(
    stack: Stack,
) -> None:
    body = factories.referral(needs=["ltc_management"], practice="M92001")
    referral = await post_referral(stack, "gp-system", body)
    async with stack.client("teams", "team-app") as team:
        caseload = (await team.get(f"/v1/teams/{referral['team']['code']}/caseload")).json()
    async with stack.client("spa", "gp-system") as spa:
        events = (await spa.get(f"/v1/referrals/{referral['id']}/timeline")).json()["events"]

    worker = "Linked worker for Eastgate (community matron)"
    assert referral["team"]["team_type"] == "integrated"
    assert referral["routing"]["linked_worker"] == worker
    held = [item for item in caseload["items"] if item["referral_id"] == referral["id"]]
    assert [item["linked_worker"] for item in held] == [worker]
    routed = next(event for event in events if event["event_type"] == "routed")
    assert routed["detail"]["linked_worker"] == worker


async def test_the_referrer_is_told_in_plain_words_why_a_backup_team_has_the_case(
    stack: Stack,
) -> None:
    async with stack.client("teams", "team-app") as team:
        teams = (await team.get("/v1/teams")).json()["items"]
        plmdt = next(t for t in teams if t["code"] == "plmdt-north-1")
        full = await team.put(
            f"/v1/teams/{plmdt['code']}/capacity",
            json={"available": 0, "maximum": 10, "unit": "visits"},
        )
    assert full.status_code == 200, full.text
    body = factories.referral(needs=["ltc_management"], practice="M91001")
    referral = await post_referral(stack, "gp-system", body)
    async with stack.client("spa", "gp-system") as spa:
        events = (await spa.get(f"/v1/referrals/{referral['id']}/timeline")).json()["events"]

    why = referral["routing"]["why_this_team"]
    assert referral["team"]["code"] == "lit-north"
    assert any("PLMDT North 1 has no capacity" in line for line in why), why
    routed = next(event for event in events if event["event_type"] == "routed")
    assert routed["detail"]["why"] == why


async def test_long_term_work_for_an_unknown_practice_goes_to_the_localitys_handlers(
    stack: Stack,
) -> None:
    # V81999 is "practice unknown"; the postcode district places the patient in the north.
    body = factories.referral(needs=["ltc_management"], practice="V81999", postcode="XW1 2ZZ")
    referral = await post_referral(stack, "gp-system", body)
    north = await _queue(stack, "north-call-handlers")

    assert referral["status"] == "awaiting_assessment"
    assert referral["assignments"] == []  # not the first PLMDT by code
    assert [(item["referral_id"], item["queue_reason"]) for item in north] == [
        (referral["id"], "practice_unknown")
    ]


async def test_a_child_in_crisis_is_held_for_a_call_handler_not_given_an_adult_pathway(
    stack: Stack,
) -> None:
    born = (MORNING - timedelta(days=16 * 365 + 30)).date()
    body = factories.referral(urgency="crisis", needs=["fall"], born=born)
    referral = await post_referral(stack, "gp-system", body)
    north = await _queue(stack, "north-call-handlers")

    assert referral["status"] == "awaiting_assessment"
    assert referral["routing"] is None
    assert referral["assignments"] == []
    assert [(item["referral_id"], item["queue_reason"], item["age_years"]) for item in north] == [
        (referral["id"], "under_18", 16)
    ]


async def test_a_child_with_a_red_flag_is_still_sent_to_emergency_services(stack: Stack) -> None:
    born = (MORNING - timedelta(days=12 * 365)).date()
    body = factories.referral(
        urgency="crisis", needs=["fall"], red_flags=["head_injury"], born=born
    )

    referral = await post_referral(stack, "gp-system", body)

    assert referral["status"] == "redirected_emergency"
