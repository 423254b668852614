"""``prune``: what is past its retention goes, what is still needed stays, and the numbering of
each referral's webhook events carries on across it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from services.shared.outbox import JobStatus
from services.shared.retention import prune
from services.spa import retention as spa_retention
from services.spa.heartbeats import WorkerHeartbeat
from services.spa.referrals.models import IdempotencyRecord, OutboxJob
from services.spa.webhooks.models import WebhookAttempt, WebhookMessage
from services.teams import retention as teams_retention
from services.teams.caseloads.models import OutboxJob as TeamsOutboxJob
from tests import factories
from tests.databases import create_sqlite_databases
from tests.e2e.test_caseload_lifecycle import care_assignment
from tests.receiver import Receiver, running_receiver, verify
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def _delivered_referral(stack: Stack, receiver: Receiver) -> tuple[dict[str, Any], str]:
    """A routed referral whose three events reached a subscriber; its id and the secret."""
    async with stack.client("spa", "gp-engine") as engine:
        subscription = (
            await engine.post("/v1/subscriptions", json={"url": f"{receiver.base_url}/hook"})
        ).json()
    body = factories.referral(urgency="crisis", needs=["fall"])
    async with stack.client("spa", "gp-engine") as spa:
        referral: dict[str, Any] = (await spa.post("/v1/referrals", json=body, headers=WAIT)).json()

    async def delivered() -> bool:
        return len(receiver.at("/hook")) >= 3 and await _pending(stack, WebhookMessage) == 0

    await stack.wait_for(delivered, within=20)
    return referral, subscription["secret"]


async def _pending(stack: Stack, model: Any) -> int:
    async with stack.apps["spa"].state.sessionmaker() as session:
        rows = await session.scalars(select(model.id).where(model.status == JobStatus.PENDING))
        return len(list(rows))


async def _prune_spa(stack: Stack, *, days_on: int = 0, dry_run: bool = False) -> dict[str, int]:
    """Prune as if ``days_on`` days had passed (the services' own clock stays put, so that
    their timers do not fire meanwhile)."""
    app = stack.apps["spa"]
    rules = spa_retention.rules(app.state.settings)
    at = stack.clock() + timedelta(days=days_on)
    return await prune(app.state.sessionmaker, rules, at, dry_run=dry_run)


async def test_nothing_recent_is_removed(stack: Stack, receiver: Receiver) -> None:
    await _delivered_referral(stack, receiver)
    assert set((await _prune_spa(stack)).values()) == {0}
    assert await stack.count_rows("spa", WebhookMessage) == 3


async def test_a_month_on_delivered_messages_finished_jobs_and_expired_keys_go(
    stack: Stack, receiver: Receiver
) -> None:
    referral, secret = await _delivered_referral(stack, receiver)
    attempts = await stack.count_rows("spa", WebhookAttempt)
    jobs = await stack.count_rows("spa", OutboxJob)
    # One delivery that failed for good is kept, to be replayed.
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        first = await session.scalar(select(WebhookMessage.id).order_by(WebhookMessage.id))
        await session.execute(
            update(WebhookMessage)
            .where(WebhookMessage.id == first)
            .values(status=JobStatus.FAILED, delivered_at=None)
        )
    counted = await _prune_spa(stack, days_on=31, dry_run=True)
    removed = await _prune_spa(stack, days_on=31)
    assert removed == counted

    assert removed["idempotency_records"] == 1
    assert removed["webhook_messages"] == 2
    assert removed["webhook_attempts"] == attempts - 1
    assert removed["outbox_jobs"] == jobs >= 1
    assert await stack.count_rows("spa", IdempotencyRecord) == 0
    assert await stack.count_rows("spa", WebhookMessage) == 1
    async with stack.client("spa", "gp-engine") as spa:
        assert (await spa.get(f"/v1/referrals/{referral['id']}")).status_code == 200
        timeline = (await spa.get(f"/v1/referrals/{referral['id']}/timeline")).json()
        assert len(timeline["events"]) >= 3
        # The next event of this referral is numbered after those pruned.
        cancelled = await spa.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "other"}
        )
    assert cancelled.status_code in (200, 202), cancelled.text

    async def fourth() -> list[Any] | None:
        got = [verify(secret, item, stack.clock()) for item in receiver.at("/hook")]
        later = [body for body in got if body["data"]["seq"] > 3]
        return later or None

    later = await stack.wait_for(fourth, within=20)
    assert later[0]["data"]["seq"] == 4


async def test_a_dry_run_removes_nothing(stack: Stack, receiver: Receiver) -> None:
    await _delivered_referral(stack, receiver)
    counted = await _prune_spa(stack, days_on=31, dry_run=True)
    assert counted["webhook_messages"] == 3
    assert await stack.count_rows("spa", WebhookMessage) == 3


async def test_teams_prunes_the_changes_it_reported_a_week_ago(stack: Stack) -> None:
    body = factories.referral(needs=["ltc_management"], practice="M91001")
    async with stack.client("spa", "gp-system") as gp:
        referral = (await gp.post("/v1/referrals", json=body, headers=WAIT)).json()
    assert referral["status"] == "routed", referral["status"]
    planned = (stack.clock() + timedelta(hours=3)).isoformat()
    async with stack.client("teams", "team-app") as team:
        accepted = await team.post(
            f"/v1/assignments/{care_assignment(referral)}/accept",
            json={"planned_first_contact_at": planned},
        )
    assert accepted.status_code == 200, accepted.text
    teams = stack.apps["teams"]
    rules = teams_retention.rules(teams.state.settings)

    async def reported() -> bool:
        async with teams.state.sessionmaker() as session:
            rows = list(await session.scalars(select(TeamsOutboxJob.status)))
        return bool(rows) and set(rows) == {JobStatus.DONE}

    await stack.wait_for(reported, within=20)
    kept = await prune(teams.state.sessionmaker, rules, stack.clock() + timedelta(days=6))
    assert kept["outbox_jobs"] == 0
    removed = await prune(teams.state.sessionmaker, rules, stack.clock() + timedelta(days=8))
    assert removed["outbox_jobs"] >= 1
    assert await stack.count_rows("teams", TeamsOutboxJob) == 0


def test_the_prune_command_prints_what_it_removed(tmp_path: Path) -> None:
    urls = create_sqlite_databases(tmp_path)
    for service in ("spa", "teams"):
        env = {**os.environ, f"{service.upper()}_DATABASE_URL": urls[service]}
        command = [sys.executable, "-m", f"services.{service}", "prune"]
        dry = subprocess.run([*command, "--dry-run"], env=env, capture_output=True, check=True)
        done = subprocess.run(command, env=env, capture_output=True, check=True)
        assert set(json.loads(dry.stdout)["would_remove"].values()) == {0}
        assert "outbox_jobs" in json.loads(done.stdout)["removed"]


async def test_small_batches_remove_everything_past_keeping(stack: Stack) -> None:
    for _ in range(5):
        body = factories.referral(urgency="crisis", needs=["fall"])
        async with stack.client("spa", "gp-engine") as spa:
            response = await spa.post("/v1/referrals", json=body)
        assert response.status_code == 201, response.text
    app = stack.apps["spa"]
    rules = spa_retention.rules(app.state.settings)
    later = stack.clock() + timedelta(days=31)
    removed = await prune(app.state.sessionmaker, rules, later, batch_size=2)
    assert removed["idempotency_records"] == 5
    assert await stack.count_rows("spa", IdempotencyRecord) == 0


async def test_heartbeats_of_processes_long_gone_go_and_the_live_ones_stay(stack: Stack) -> None:
    app = stack.apps["spa"]

    async def live_rows() -> int:
        async with app.state.sessionmaker() as session:
            rows = await session.scalars(
                select(WorkerHeartbeat.id).where(WorkerHeartbeat.host != "gone-host")
            )
            return len(list(rows))

    await stack.wait_for(live_rows)
    two_days_ago = stack.clock() - timedelta(days=2)
    async with app.state.sessionmaker() as session, session.begin():
        session.add(
            WorkerHeartbeat(
                kind="routing",
                host="gone-host",
                pid=1,
                started_at=two_days_ago,
                beat_at=two_days_ago,
            )
        )
    live = await live_rows()
    removed = await _prune_spa(stack)

    assert removed["worker_heartbeats"] == 1
    assert await live_rows() == live == 4
