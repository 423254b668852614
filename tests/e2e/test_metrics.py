"""Each service's Prometheus metrics, scraped as Prometheus would with a token that holds
``metrics:read``: what they count moves by exactly what happened, and what they read from the
database at scrape time says what is there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.spa.referrals.models import OutboxJob
from tests import factories
from tests.receiver import Receiver, running_receiver
from tests.spa.test_clocks import _accept, _crisis, _tick
from tests.stack import Stack, post_referral, running_stack

SERVICES = ("spa", "routing", "teams")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def beating_stack(
    postgres_urls: dict[str, str], issuer_key_file: Path
) -> AsyncIterator[Stack]:
    """The stack, its workers beating several times a second."""
    quick = {"heartbeat_interval_seconds": 0.1}
    async with running_stack(
        postgres_urls, issuer_key_file, overrides={"spa": quick, "teams": quick}
    ) as running:
        yield running


async def scrape(stack: Stack, service: str) -> Samples:
    async with stack.client(service, "prometheus") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def expire_readings(stack: Stack) -> None:
    """Move the clock past the readings' cache, so the next scrape reads the database."""
    stack.clock.now += timedelta(seconds=6)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_scrape_needs_a_token_with_the_metrics_scope(stack: Stack, service: str) -> None:
    async with stack.raw(service) as http:
        anonymous = await http.get("/metrics")
        token = await stack.token("no-scopes")
        unscoped = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})

    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert unscoped.status_code == 403
    assert unscoped.json()["required_scopes"] == ["metrics:read"]
    assert "db_pool_size" in {name for name, _ in await scrape(stack, service)}


async def test_a_routed_referral_moves_each_counter_by_exactly_what_happened(
    stack: Stack,
) -> None:
    before = await scrape(stack, "spa")
    body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    referral = await post_referral(stack, "ambulance-cad", body)
    after = await scrape(stack, "spa")

    assert referral["status"] == "routed"
    pathway = referral["routing"]["pathway"]
    team_type = referral["team"]["team_type"]
    received = "spa_referrals_received_total"
    routed = "spa_referrals_routed_total"
    assert (
        value(after, received, channel="ambulance") - value(before, received, channel="ambulance")
        == 1
    )
    assert value(after, received, channel="gp") == value(before, received, channel="gp")
    routed_now = value(after, routed, pathway=pathway, team_type=team_type)
    assert routed_now - value(before, routed, pathway=pathway, team_type=team_type) == 1
    assert (
        sum(v for (name, _), v in after.items() if name == routed)
        - sum(v for (name, _), v in before.items() if name == routed)
        == 1
    )
    assert value(after, "spa_referrals_queued_total", queue_reason="no_team") == 0
    posted = {"route": "/v1/referrals", "method": "POST", "status": "201"}
    assert (
        value(after, "http_requests_total", **posted)
        - value(before, "http_requests_total", **posted)
        == 1
    )
    # The route's template, never the referral's own path: no identifier is a label.
    assert not any(referral["id"] in dict(labels).get("route", "") for _, labels in after)
    timed = {"route": "/v1/referrals", "method": "POST"}
    assert value(after, "http_request_duration_seconds_count", **timed) >= 1


async def test_a_refused_request_counts_no_referral(stack: Stack) -> None:
    body = factories.referral(channel="ambulance")
    async with stack.client("spa", "gp-system") as spa:
        refused = await spa.post("/v1/referrals", json=body)
    samples = await scrape(stack, "spa")

    assert refused.status_code == 403
    assert value(samples, "spa_referrals_received_total", channel="ambulance") == 0
    refusal = {"route": "/v1/referrals", "method": "POST", "status": "403"}
    assert value(samples, "http_requests_total", **refusal) == 1


async def test_outbox_depth_and_age_show_a_job_no_worker_has_taken(stack: Stack) -> None:
    stack.worker.stop()
    await stack.worker.stopped()
    async with stack.client("spa", "gp-system") as spa:
        created = await spa.post("/v1/referrals", json=factories.referral())
    assert created.status_code == 201, created.text
    assert await stack.count_rows("spa", OutboxJob) == 1

    expire_readings(stack)
    waiting = await scrape(stack, "spa")
    stack.clock.now += timedelta(minutes=10)
    later = await scrape(stack, "spa")

    assert value(waiting, "outbox_due_jobs", queue="outbox_jobs") == 1
    assert value(waiting, "outbox_due_jobs", queue="webhook_messages") == 0
    assert value(later, "outbox_oldest_due_age_seconds", queue="outbox_jobs") >= 600
    teams = await scrape(stack, "teams")
    assert value(teams, "outbox_due_jobs", queue="outbox_jobs") == 0


async def test_the_readings_are_cached_between_scrapes(stack: Stack) -> None:
    stack.worker.stop()
    await stack.worker.stopped()
    expire_readings(stack)
    first = await scrape(stack, "spa")
    async with stack.client("spa", "gp-system") as spa:
        created = await spa.post("/v1/referrals", json=factories.referral())
    assert created.status_code == 201, created.text
    cached = await scrape(stack, "spa")
    expire_readings(stack)
    read_again = await scrape(stack, "spa")

    assert value(first, "outbox_due_jobs", queue="outbox_jobs") == 0
    assert value(cached, "outbox_due_jobs", queue="outbox_jobs") == 0
    assert value(read_again, "outbox_due_jobs", queue="outbox_jobs") == 1


async def test_readiness_with_workers_fails_on_a_stale_heartbeat_and_recovers(
    beating_stack: Stack,
) -> None:
    stack = beating_stack
    async with stack.raw("spa") as spa:

        async def readiness() -> httpx.Response:
            return await spa.get("/readyz", params={"workers": "1"})

        async def ready() -> bool:
            return (await readiness()).status_code == 200

        async def unready() -> bool:
            return (await readiness()).status_code == 503

        await stack.wait_for(ready)
        # Every beat so far is a minute old on the services' clock.
        stack.clock.now += timedelta(minutes=1)
        stale = await readiness()
        plain = await spa.get("/readyz")
        await stack.wait_for(ready)

        # A worker whose loop has ended beats no more, so its kind goes stale and stays so.
        stack.worker.stop()
        await stack.worker.stopped()
        stack.clock.now += timedelta(minutes=1)
        await stack.wait_for(unready)
        await asyncio.sleep(0.5)  # several beats of the workers still running
        without_router = await readiness()

    assert stale.status_code == 503
    assert stale.headers["content-type"] == "application/problem+json"
    assert "routing" in stale.json()["detail"]
    # The plain probe, behind which API processes serve, knows nothing of the workers.
    assert plain.status_code == 200
    assert without_router.json()["detail"] == "No worker has beaten recently for: routing."
    expire_readings(stack)
    samples = await scrape(stack, "spa")
    assert value(samples, "worker_heartbeat_age_seconds", kind="routing") >= 60
    assert value(samples, "worker_heartbeat_age_seconds", kind="timers") < 60


async def test_readiness_with_workers_fails_while_work_waits_too_long(
    postgres_urls: dict[str, str], issuer_key_file: Path
) -> None:
    # The routing worker is stopped below, so readiness here expects only the others to beat.
    spa_settings = {"heartbeat_interval_seconds": 0.1, "readiness_worker_kinds": ("timers",)}
    overrides: dict[str, dict[str, Any]] = {
        "spa": spa_settings,
        "teams": {"heartbeat_interval_seconds": 0.1},
    }
    async with running_stack(postgres_urls, issuer_key_file, overrides=overrides) as stack:
        stack.worker.stop()
        await stack.worker.stopped()
        async with stack.client("spa", "gp-system") as spa:
            created = await spa.post("/v1/referrals", json=factories.referral())
        assert created.status_code == 201, created.text
        async with stack.raw("spa") as spa, stack.raw("teams") as teams:

            async def readiness() -> httpx.Response:
                return await spa.get("/readyz", params={"workers": "1"})

            async def ready() -> bool:
                return (await readiness()).status_code == 200

            await stack.wait_for(ready)
            stack.clock.now += timedelta(minutes=4)
            await stack.wait_for(ready)  # four minutes due: within the default five
            stack.clock.now += timedelta(minutes=2)
            await asyncio.sleep(0.3)  # the timers' worker beats at the new time
            behind = await readiness()
            teams_ready = await teams.get("/readyz", params={"workers": "1"})

    assert behind.status_code == 503
    assert behind.json()["detail"] == "Work has waited too long in: outbox_jobs."
    assert teams_ready.status_code == 200


def total(samples: Samples, name: str) -> float:
    return sum(v for (sample, _), v in samples.items() if sample == name)


async def test_a_redirect_and_a_possible_duplicate_are_counted_as_such(stack: Stack) -> None:
    red_flag = factories.referral(
        channel="ambulance", urgency="crisis", needs=["fall"], red_flags=["chest_pain"]
    )
    redirected = await post_referral(stack, "ambulance-cad", red_flag)
    first_body = factories.referral(needs=["ltc_management"], practice="M91004")
    first = await post_referral(stack, "gp-system", first_body)
    second = await post_referral(stack, "gp-system", first_body)
    samples = await scrape(stack, "spa")

    assert redirected["status"] == "redirected_emergency"
    assert (first["status"], second["status"]) == ("routed", "awaiting_assessment")
    assert value(samples, "spa_referrals_redirected_total") == 1
    assert value(samples, "spa_referrals_queued_total", queue_reason="possible_duplicate") == 1
    assert total(samples, "spa_referrals_queued_total") == 1
    assert total(samples, "spa_referrals_routed_total") == 1
    assert total(samples, "spa_referrals_received_total") == 3


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def test_deliveries_are_counted_by_their_outcome(stack: Stack, receiver: Receiver) -> None:
    async with stack.client("spa", "gp-engine") as engine:
        subscribed = await engine.post("/v1/subscriptions", json={"url": f"{receiver.base_url}/h"})
    assert subscribed.status_code == 201, subscribed.text
    # The first message is refused once (and retried later); the rest are taken.
    receiver.answer(500)
    body = factories.referral(urgency="crisis", needs=["fall"])
    async with stack.client("spa", "gp-engine") as spa:
        created = await spa.post("/v1/referrals", json=body, headers={"Prefer": "wait=10"})
    assert created.status_code == 201, created.text

    async def counted() -> Samples | None:
        samples = await scrape(stack, "spa")
        delivered = value(samples, "spa_deliveries_total", kind="webhook", outcome="delivered")
        return samples if delivered >= len(receiver.at("/h")) - 1 >= 2 else None

    samples = await stack.wait_for(counted, within=20)
    tries = len(receiver.at("/h"))

    assert value(samples, "spa_deliveries_total", kind="webhook", outcome="failed") == 1
    assert value(samples, "spa_deliveries_total", kind="webhook", outcome="delivered") == tries - 1
    assert value(samples, "spa_deliveries_total", kind="webhook", outcome="gave_up") == 0


async def test_response_clocks_at_risk_and_breached_are_counted_once(stack: Stack) -> None:
    referral = await _crisis(stack)
    await _accept(stack, referral)
    for minutes in (91, 1):
        await _tick(stack, timedelta(minutes=minutes))
    at_risk = await scrape(stack, "spa")
    for minutes in (30, 30, 5):
        await _tick(stack, timedelta(minutes=minutes))
    breached = await scrape(stack, "spa")

    assert value(at_risk, "spa_response_clocks_at_risk_total", clock="response") == 1
    assert value(at_risk, "spa_response_clocks_at_risk") == 1
    assert value(at_risk, "spa_response_clocks_breached") == 0
    assert value(breached, "spa_response_clocks_at_risk_total", clock="response") == 1
    assert value(breached, "spa_response_clocks_breached_total", clock="response") == 1
    # The case is no longer at risk but breached, and on its coordinator's list.
    assert value(breached, "spa_response_clocks_at_risk") == 0
    assert value(breached, "spa_response_clocks_breached") == 1
