"""POST /v1/decisions and GET /v1/decisions/{id} on the routing service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.routing.decisions.models import Decision
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


async def _decisions_of(stack: Stack, referral_id: str) -> list[Decision]:
    async with stack.apps["routing"].state.sessionmaker() as session:
        query = select(Decision).where(Decision.referral_id == uuid.UUID(referral_id))
        return list(await session.scalars(query))


async def test_a_request_asked_again_gets_the_decision_recorded_and_records_nothing(
    any_stack: Stack,
) -> None:
    body = facts()
    async with any_stack.client("routing", "spa-service") as routing:
        first = await routing.post("/v1/decisions", json=body)
        # Needs and red flags are sets: their order does not make another request.
        again = await routing.post("/v1/decisions", json={**body, "needs": body["needs"][::-1]})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert [str(row.id) for row in await _decisions_of(any_stack, body["referral_id"])] == [
        first.json()["id"]
    ]


async def test_requests_for_one_triage_at_the_same_time_end_with_one_decision(
    any_stack: Stack,
) -> None:
    body = facts()
    async with any_stack.client("routing", "spa-service") as routing:
        answers = await asyncio.gather(
            *(routing.post("/v1/decisions", json=body) for _ in range(6))
        )

    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [201]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert len(await _decisions_of(any_stack, body["referral_id"])) == 1


async def test_a_triage_after_an_assessment_or_on_other_facts_is_a_new_decision(
    stack: Stack,
) -> None:
    body = facts(needs=["fall"], urgency="routine", safeguarding_concern=False)
    assessed = {**body, "assessed_at": "2026-11-24T10:30:00Z"}
    async with stack.client("routing", "spa-service") as routing:
        at_intake = await routing.post("/v1/decisions", json=body)
        after_assessment = await routing.post("/v1/decisions", json=assessed)
        on_other_facts = await routing.post(
            "/v1/decisions", json={**assessed, "needs": ["ltc_management"]}
        )

    assert [at_intake.status_code, after_assessment.status_code, on_other_facts.status_code] == [
        201,
        201,
        201,
    ]
    assert len(await _decisions_of(stack, body["referral_id"])) == 3
    assert on_other_facts.json()["pathway"] != at_intake.json()["pathway"]


async def test_a_batch_answers_each_item_as_the_single_endpoint_would(stack: Stack) -> None:
    repeated = facts()
    async with stack.client("routing", "spa-service") as routing:
        first = (await routing.post("/v1/decisions", json=repeated)).json()
        batch = await routing.post(
            "/v1/decisions/batch",
            json={"items": [facts(), {**facts(), "urgency": "whenever"}, repeated]},
        )
        page = batch.json()["items"]
    async with stack.client("routing", "team-app") as reader:
        made = await reader.get(f"/v1/decisions/{page[0]['result']['id']}")

    assert batch.status_code == 200
    assert [item["status"] for item in page] == [201, 422, 200]
    assert page[0]["result"]["pathway"] == "rapid_response"
    assert made.json() == page[0]["result"]  # kept, as a single decision is
    # One bad item is its own problem, naming the field, and fails no other.
    assert page[1]["problem"]["type"] == "urn:spa-platform:problem:validation-failed"
    assert [error["field"] for error in page[1]["problem"]["errors"]] == ["urgency"]
    assert page[2]["result"] == first  # asked again: the decision recorded the first time
    assert len(await _decisions_of(stack, repeated["referral_id"])) == 1


async def test_a_batch_with_the_directory_down_is_each_items_503_and_keeps_nothing(
    stack: Stack,
) -> None:
    stack.transports["teams"].down = True
    async with stack.client("routing", "spa-service") as routing:
        batch = await routing.post("/v1/decisions/batch", json={"items": [facts(), facts()]})

    assert batch.status_code == 200
    assert [item["status"] for item in batch.json()["items"]] == [503, 503]
    problem = batch.json()["items"][0]["problem"]
    assert problem["type"] == "urn:spa-platform:problem:directory-unavailable"
    assert await stack.count_rows("routing", Decision) == 0


@pytest.mark.parametrize(
    "body", [{"items": []}, {"items": [{}] * 201}, {"item": [{}]}, {"items": "all"}]
)
async def test_a_batch_that_is_not_a_list_of_up_to_200_items_is_refused(
    stack: Stack, body: dict[str, Any]
) -> None:
    async with stack.client("routing", "spa-service") as routing:
        response = await routing.post("/v1/decisions/batch", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
