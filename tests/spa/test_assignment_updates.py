"""POST /v1/referrals/{id}/assignment-updates: only teams may report, once each, in order."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests import factories
from tests.stack import Stack


async def routed(stack: Stack) -> dict[str, Any]:
    async with stack.client("spa", "gp-system") as spa:
        referral_id = (
            await spa.post("/v1/referrals", json=factories.referral(needs=["ltc_management"]))
        ).json()["id"]

        async def done() -> dict[str, Any] | None:
            current: dict[str, Any] = (await spa.get(f"/v1/referrals/{referral_id}")).json()
            return current if current["status"] == "routed" else None

        result: dict[str, Any] = await stack.wait_for(done)
        return result


def update(
    referral: dict[str, Any], seq: int, change: str = "accepted", **extra: Any
) -> dict[str, Any]:
    assignment = referral["assignments"][0]
    return {
        "assignment_id": assignment["assignment_id"],
        "team_id": assignment["team"]["id"],
        "kind": "care",
        "change": change,
        "at": "2026-11-24T10:05:00Z",
        "seq": seq,
        **extra,
    }


async def test_a_repeated_report_is_acknowledged_without_effect(stack: Stack) -> None:
    referral = await routed(stack)
    path = f"/v1/referrals/{referral['id']}/assignment-updates"
    body = update(referral, 1, planned_first_contact_at="2026-11-24T12:00:00Z")
    async with stack.client("spa", "teams-service") as teams:
        first = await teams.post(path, json=body)
        again = await teams.post(path, json=body)

    assert first.json() == {"referral_id": referral["id"], "status": "accepted", "applied": True}
    assert again.json() == {"referral_id": referral["id"], "status": "accepted", "applied": False}


async def test_a_report_that_skips_one_is_refused_and_changes_nothing(stack: Stack) -> None:
    referral = await routed(stack)
    async with stack.client("spa", "teams-service") as teams:
        response = await teams.post(
            f"/v1/referrals/{referral['id']}/assignment-updates", json=update(referral, 2, "closed")
        )

    assert response.status_code == 409
    assert response.json()["type"] == "urn:spa-platform:problem:assignment-update-out-of-order"
    async with stack.client("spa", "gp-system") as spa:
        assert (await spa.get(f"/v1/referrals/{referral['id']}")).json()["status"] == "routed"


async def test_unknown_referral_or_assignment_is_a_404_problem(stack: Stack) -> None:
    referral = await routed(stack)
    body = update(referral, 1)
    async with stack.client("spa", "teams-service") as teams:
        no_referral = await teams.post(
            f"/v1/referrals/{uuid.uuid4()}/assignment-updates", json=body
        )
        no_assignment = await teams.post(
            f"/v1/referrals/{referral['id']}/assignment-updates",
            json={**body, "assignment_id": str(uuid.uuid4())},
        )

    assert no_referral.status_code == no_assignment.status_code == 404
    assert no_assignment.json()["type"] == "urn:spa-platform:problem:assignment-unknown"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("change", "vanished"),
        ("seq", 0),
        ("at", "yesterday"),
        ("at", "2026-11-24T10:05:00"),
        ("decline_reason", "bored"),
    ],
)
async def test_malformed_reports_are_refused(stack: Stack, field: str, value: Any) -> None:
    referral = await routed(stack)
    async with stack.client("spa", "teams-service") as teams:
        response = await teams.post(
            f"/v1/referrals/{referral['id']}/assignment-updates",
            json={**update(referral, 1), field: value},
        )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_only_the_teams_service_may_report(stack: Stack) -> None:
    referral = await routed(stack)
    async with stack.client("spa", "gp-system") as gp:
        response = await gp.post(
            f"/v1/referrals/{referral['id']}/assignment-updates", json=update(referral, 1)
        )

    assert response.status_code == 403
