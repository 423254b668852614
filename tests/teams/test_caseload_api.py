"""POST /v1/assignments and GET /v1/teams/{id}/caseload on the teams service."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.stack import Stack


async def _team_id(stack: Stack, code: str) -> str:
    async with stack.client("teams", "team-app") as teams:
        listed = (await teams.get("/v1/teams")).json()
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
        caseload = (await team.get(f"/v1/teams/{team_id}/caseload")).json()

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert [item["referral_id"] for item in caseload["items"]] == [body["referral_id"]]
    assert caseload["team"]["code"] == "lit-south"


async def test_caseload_filters_by_kind(stack: Stack) -> None:
    team_id = await _team_id(stack, "cru-county")
    async with stack.client("teams", "spa-service") as spa:
        await spa.post(
            "/v1/assignments", json=assignment(team_id, kind="safeguarding", pathway=None)
        )
    async with stack.client("teams", "team-app") as team:
        care = (await team.get(f"/v1/teams/{team_id}/caseload", params={"kind": "care"})).json()
        safeguarding = (
            await team.get(f"/v1/teams/{team_id}/caseload", params={"kind": "safeguarding"})
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
        unknown = await team.get(f"/v1/teams/{uuid.uuid4()}/caseload")
        malformed = await team.get("/v1/teams/not-a-uuid/caseload")

    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:spa-platform:problem:team-not-found"
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "team_id"
