"""POST /v1/assignments and GET /v1/teams/{code}/caseload on the teams service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.stack import Stack

FRIDAY_7PM = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)


async def _team_id(stack: Stack, code: str) -> str:
    async with stack.client("teams", "team-app") as teams:
        listed = (await teams.get("/v1/teams")).json()["items"]
    return str(next(team["id"] for team in listed if team["code"] == code))


def assignment(team_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referral_id": str(uuid.uuid4()),
        "team_id": team_id,
        "kind": "care",
        "pathway": "reablement",
        "urgency": "urgent",
    }
    body.update(overrides)
    return body


async def test_assigning_twice_keeps_one_case_on_the_caseload(stack: Stack) -> None:
    team_id = await _team_id(stack, "lit-south")
    body = assignment(team_id)
    async with stack.client("teams", "spa-service") as spa:
        first = await spa.post("/v1/assignments", json=body)
        again = await spa.post("/v1/assignments", json=body)
    async with stack.client("teams", "team-app") as team:
        caseload = (await team.get("/v1/teams/lit-south/caseload")).json()

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert [item["referral_id"] for item in caseload["items"]] == [body["referral_id"]]
    assert caseload["team"]["code"] == "lit-south"


async def test_a_window_for_work_that_can_wait_counts_only_the_teams_hours(
    stack: Stack,
) -> None:
    stack.clock.now = FRIDAY_7PM
    team_id = await _team_id(stack, "plmdt-north-1")  # open 08:30-17:00 on weekdays
    body = assignment(team_id, pathway="routine_assessment", acceptance_window="PT8H")
    async with stack.client("teams", "spa-service") as spa:
        first = await spa.post("/v1/assignments", json=body)
        stack.clock.now += timedelta(hours=1)
        again = await spa.post("/v1/assignments", json=body)

    assert first.status_code == 201, first.text
    # Monday's eight open hours, not Saturday evening.
    assert first.json()["acceptance_due_at"] == "2026-11-30T16:30:00Z"
    assert again.json()["acceptance_due_at"] == first.json()["acceptance_due_at"]


async def test_a_window_for_work_that_cannot_wait_runs_from_now(stack: Stack) -> None:
    five_to_eight = datetime(2026, 11, 27, 19, 55, tzinfo=UTC)  # lit-north closes at 20:00
    stack.clock.now = five_to_eight
    team_id = await _team_id(stack, "lit-north")
    crisis = assignment(team_id, pathway="rapid_response", acceptance_window="PT15M")
    unwindowed = assignment(team_id, pathway="rapid_response")
    async with stack.client("teams", "spa-service") as spa:
        timed = (await spa.post("/v1/assignments", json=crisis)).json()
        untimed = (await spa.post("/v1/assignments", json=unwindowed)).json()

    due = datetime.fromisoformat(timed["acceptance_due_at"])
    assert five_to_eight + timedelta(minutes=15) <= due < five_to_eight + timedelta(minutes=16)
    assert untimed["acceptance_due_at"] is None


async def test_caseload_filters_by_kind(stack: Stack) -> None:
    team_id = await _team_id(stack, "cru-county")
    async with stack.client("teams", "spa-service") as spa:
        await spa.post(
            "/v1/assignments", json=assignment(team_id, kind="safeguarding", pathway=None)
        )
    async with stack.client("teams", "team-app") as team:
        care = (await team.get("/v1/teams/cru-county/caseload", params={"kind": "care"})).json()
        safeguarding = (
            await team.get("/v1/teams/cru-county/caseload", params={"kind": "safeguarding"})
        ).json()

    assert care["items"] == []
    assert len(safeguarding["items"]) == 1


async def test_an_unknown_team_cannot_be_assigned(stack: Stack) -> None:
    async with stack.client("teams", "spa-service") as spa:
        response = await spa.post("/v1/assignments", json=assignment(str(uuid.uuid4())))

    assert response.status_code == 422
    assert response.json()["type"] == "urn:spa-platform:problem:unknown-team"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("team_id", "lit-south"),
        ("kind", "gossip"),
        ("pathway", "scenic_route"),
        ("urgency", "yesterday"),
        ("acceptance_window", "PT0S"),
        ("acceptance_window", "P30D"),
    ],
)
async def test_bad_assignment_fields_are_refused(stack: Stack, field: str, value: str) -> None:
    body = assignment(await _team_id(stack, "lit-south"))
    body[field] = value
    async with stack.client("teams", "spa-service") as spa:
        response = await spa.post("/v1/assignments", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_caseload_of_an_unknown_team_is_a_404_problem(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as team:
        unknown = await team.get("/v1/teams/no-such-team/caseload")
        malformed = await team.get("/v1/teams/Not_A_Code/caseload")

    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:spa-platform:problem:team-not-found"
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "team_code"


async def test_a_batch_of_assignments_answers_each_item_on_its_own(stack: Stack) -> None:
    team_id = await _team_id(stack, "lit-south")
    repeated, fresh = assignment(team_id), assignment(team_id)
    async with stack.client("teams", "spa-service") as spa:
        first = (await spa.post("/v1/assignments", json=repeated)).json()
        batch = await spa.post(
            "/v1/assignments/batch",
            json={
                "items": [
                    fresh,
                    assignment(str(uuid.uuid4())),  # no such team
                    {**assignment(team_id), "kind": "gossip"},
                    repeated,
                ]
            },
        )
    async with stack.client("teams", "team-app") as team:
        caseload = (await team.get("/v1/teams/lit-south/caseload")).json()
    page = batch.json()["items"]

    assert batch.status_code == 200
    assert [item["status"] for item in page] == [201, 422, 422, 200]
    assert page[0]["result"]["referral_id"] == fresh["referral_id"]
    assert page[1]["problem"]["type"] == "urn:spa-platform:problem:unknown-team"
    assert page[2]["problem"]["errors"][0]["field"] == "kind"
    assert page[3]["result"]["id"] == first["id"]  # a retry: the assignment made first
    assert sorted(item["referral_id"] for item in caseload["items"]) == sorted(
        [repeated["referral_id"], fresh["referral_id"]]
    )


async def test_a_batch_of_resolutions_answers_each_query_in_order(stack: Stack) -> None:
    async with stack.client("teams", "spa-service") as spa:
        single = (
            await spa.get("/v1/resolve", params={"practice": "M93002", "pathway": "reablement"})
        ).json()
        located = (await spa.get("/v1/locate", params={"district": "XW4"})).json()
        batch = await spa.post(
            "/v1/resolutions",
            json={
                "queries": [
                    {"practice": "M93002", "pathway": "reablement"},
                    {"district": "XW4"},
                ]
            },
        )
        both = await spa.post(
            "/v1/resolutions",
            json={"queries": [{"pathway": "reablement", "escalation": "safeguarding"}]},
        )

    assert batch.status_code == 200
    team, place = batch.json()["items"]
    assert team == single
    assert (place["outcome"], place["team"]) == ("no_assignment", None)
    assert place["locality_code"] == located["locality_code"]
    assert both.status_code == 422
