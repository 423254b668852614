"""An accepted referral survives a downstream outage and is routed exactly once afterwards, and
decided once though routing's answer is lost; one request id follows a referral through all
three services' logs."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import select

from services.routing.decisions.models import Decision
from services.spa.referrals.models import OutboxJob
from tests import factories
from tests.e2e.test_flow import post_and_wait_routed
from tests.stack import Stack


async def test_referrals_accepted_while_routing_is_down_are_routed_once_it_returns(
    stack: Stack,
) -> None:
    stack.transports["routing"].down = True
    async with stack.client("spa", "ambulance-cad") as spa:
        ids = []
        for _ in range(3):
            body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
            created = await spa.post("/v1/referrals", json=body)
            assert created.status_code == 201
            ids.append(created.json()["id"])
        await asyncio.sleep(0.3)
        for referral_id in ids:
            assert (await spa.get(f"/v1/referrals/{referral_id}")).json()["status"] == "received"

        stack.transports["routing"].down = False

        async def all_routed() -> bool:
            statuses = [(await spa.get(f"/v1/referrals/{i}")).json()["status"] for i in ids]
            return all(status == "routed" for status in statuses)

        await stack.wait_for(all_routed, within=15)
        team_code = (await spa.get(f"/v1/referrals/{ids[0]}")).json()["team"]["code"]
    async with stack.client("teams", "team-app") as teams:
        caseload = (await teams.get(f"/v1/teams/{team_code}/caseload")).json()["items"]
    assert sorted(item["referral_id"] for item in caseload) == sorted(ids)


async def test_a_referral_triaged_before_teams_went_down_is_assigned_once_teams_returns(
    stack: Stack,
) -> None:
    stack.transports["teams"].down = True
    async with stack.client("spa", "gp-system") as spa:
        referral_id = (
            await spa.post("/v1/referrals", json=factories.referral(needs=["ltc_management"]))
        ).json()["id"]
        await asyncio.sleep(0.5)
        # Routing itself needs the directory, so nothing moves while teams is away.
        assert (await spa.get(f"/v1/referrals/{referral_id}")).json()["status"] == "received"
        stack.transports["teams"].down = False

        async def routed() -> bool:
            return bool(
                (await spa.get(f"/v1/referrals/{referral_id}")).json()["status"] == "routed"
            )

        await stack.wait_for(routed, within=15)
        timeline = (await spa.get(f"/v1/referrals/{referral_id}/timeline")).json()["events"]
    assert [event["event_type"] for event in timeline] == ["received", "triaged", "routed"]
    assert await stack.count_rows("spa", OutboxJob) == 1


async def test_one_request_id_follows_a_referral_through_three_services(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    async with stack.client("spa", "gp-system") as spa:
        created = await spa.post(
            "/v1/referrals",
            json=factories.referral(needs=["ltc_management"]),
            headers={"X-Request-ID": "gp-trace-0001"},
        )
        referral_id = created.json()["id"]

        async def routed() -> bool:
            return bool(
                (await spa.get(f"/v1/referrals/{referral_id}")).json()["status"] == "routed"
            )

        await stack.wait_for(routed)

    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    traced = {
        (line["service"], line.get("path"))
        for line in lines
        if line.get("request_id") == "gp-trace-0001"
    }
    # One referral in flight: its batches to routing and teams carry its own request id.
    assert ("spa", "/v1/referrals") in traced
    assert ("routing", "/v1/decisions/batch") in traced
    assert ("teams", "/v1/resolutions") in traced
    assert ("teams", "/v1/assignments/batch") in traced


async def test_a_decision_whose_answer_was_lost_is_not_made_twice_when_spa_asks_again(
    stack: Stack,
) -> None:
    stack.transports["routing"].answers_to_lose = 1
    referral = await post_and_wait_routed(stack, factories.referral(needs=["ltc_management"]))

    async with stack.apps["routing"].state.sessionmaker() as session:
        decisions = list(
            await session.scalars(
                select(Decision).where(Decision.referral_id == uuid.UUID(referral["id"]))
            )
        )
    assert stack.transports["routing"].answers_to_lose == 0
    assert referral["status"] == "routed"
    assert [str(decision.id) for decision in decisions] == [referral["routing"]["decision_id"]]
