"""POST /v1/decisions and GET /v1/decisions/{id} on the routing service."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.routing.models import Decision
from tests.stack import Stack


def facts(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referral_id": str(uuid.uuid4()),
        "channel": "ambulance",
        "urgency": "crisis",
        "needs": ["fall"],
        "red_flags": [],
        "age_years": 84,
        "practice": "M92003",
        "postcode_district": "XW4",
        "safeguarding_concern": True,
    }
    body.update(overrides)
    return body


async def test_a_decision_is_returned_with_its_team_trace_and_escalation_and_kept(
    stack: Stack,
) -> None:
    async with stack.client("routing", "spa-service") as routing:
        created = await routing.post("/v1/decisions", json=facts())
    assert created.status_code == 201
    decision = created.json()
    assert decision["pathway"] == "rapid_response"
    assert decision["rule_id"] == "ucr-crisis-adult"
    assert decision["rule_set_version"] == "county-default-1"
    assert decision["team"]["code"] == "int-east-1"
    assert decision["linked_worker"]
    assert [step["code"] for step in decision["team_explanation"]][-1] == "team_found"
    assert decision["trace"][-1] == {"rule": "ucr-crisis-adult", "matched": True, "why_not": None}
    assert decision["escalations"][0]["escalation"] == "safeguarding"
    assert decision["escalations"][0]["team"]["code"] == "cru-county"

    async with stack.client("routing", "team-app") as reader:
        kept = await reader.get(f"/v1/decisions/{decision['id']}")
    assert kept.status_code == 200
    assert kept.json() == decision


async def test_an_unknown_decision_is_a_404_problem(stack: Stack) -> None:
    async with stack.client("routing", "team-app") as reader:
        response = await reader.get(f"/v1/decisions/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["type"] == "urn:spa-platform:problem:decision-not-found"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", "fax"),
        ("needs", ["teleportation"]),
        ("red_flags", ["sneezing"]),
        ("age_years", -1),
        ("age_years", 200),
        ("practice", "not-an-ods!"),
        ("postcode_district", "XW4 1AA"),
        ("nhs_number", "9990001235"),
    ],
)
async def test_facts_outside_the_vocabulary_are_refused(
    stack: Stack, field: str, value: Any
) -> None:
    async with stack.client("routing", "spa-service") as routing:
        response = await routing.post("/v1/decisions", json=facts(**{field: value}))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {error["field"].split(".")[0] for error in response.json()["errors"]}


async def test_the_directory_being_down_is_a_503_problem_and_nothing_is_kept(stack: Stack) -> None:
    stack.transports["teams"].down = True
    async with stack.client("routing", "spa-service") as routing:
        response = await routing.post("/v1/decisions", json=facts())

    assert response.status_code == 503
    assert response.json()["type"] == "urn:spa-platform:problem:directory-unavailable"
    assert await stack.count_rows("routing", Decision) == 0
