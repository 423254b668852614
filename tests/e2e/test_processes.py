"""The three services as real uvicorn processes on free ports, against PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from services.routing.decisions.models import Decision
from services.shared.db import create_engine
from services.teams.caseloads.models import Assignment
from tests import factories
from tests.databases import empty_tables
from tests.replicas import free_port
from tests.stack import CLIENTS, MORNING, SettableClock, load_demo_directory

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]


class Processes:
    """The three services as processes that a test can stop and start again on their ports."""

    def __init__(self, urls: dict[str, str], env: dict[str, str], log_dir: Path) -> None:
        self.urls = urls
        self.logs = {service: log_dir / f"{service}.log" for service in urls}
        self._env = env
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *services: str) -> None:
        for service in services:
            port = self.urls[service].rsplit(":", 1)[1]
            command = [
                sys.executable, "-m", "uvicorn", "--factory",
                f"services.{service.split('-')[0]}.main:app_from_environment",
                "--host", "127.0.0.1", "--port", port, "--no-access-log", "--no-server-header",
            ]  # fmt: skip
            with self.logs[service].open("ab") as log:
                self._running[service] = subprocess.Popen(
                    command, env=self._env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        for service in services:
            self._wait_ready(service)

    def stop(self, *services: str, hard: bool = False) -> None:
        """Stop services: gracefully, or killed outright as a crash would."""
        for service in services:
            process = self._running.pop(service)
            if hard:
                process.kill()
            else:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        self.stop(*list(self._running))

    def _wait_ready(self, service: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.urls[service]}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self._running[service].poll() is not None:
                pytest.fail(f"{service} did not start:\n{self.logs[service].read_text()[-3000:]}")
            time.sleep(0.1)


def _environment(
    database_urls: dict[str, str], urls: dict[str, str], key_file: Path
) -> dict[str, str]:
    spa_client, routing_client = CLIENTS[0], CLIENTS[1]
    jwks = f"{urls['spa']}/.well-known/jwks.json"
    return {
        **os.environ,
        "SPA_DATABASE_URL": database_urls["spa"],
        "ROUTING_DATABASE_URL": database_urls["routing"],
        "TEAMS_DATABASE_URL": database_urls["teams"],
        "SPA_ISSUER_KEY_FILES": json.dumps([str(key_file)]),
        "SPA_ROUTING_URL": urls["routing"],
        "SPA_TEAMS_URL": urls["teams"],
        "SPA_TOKEN_URL": f"{urls['spa']}/oauth/token",
        "SPA_SERVICE_CLIENT_ID": spa_client.client_id,
        "SPA_SERVICE_CLIENT_SECRET": spa_client.secret,
        "ROUTING_TEAMS_URL": urls["teams"],
        "ROUTING_AUTH_JWKS_URL": jwks,
        "ROUTING_TOKEN_URL": f"{urls['spa']}/oauth/token",
        "ROUTING_SERVICE_CLIENT_ID": routing_client.client_id,
        "ROUTING_SERVICE_CLIENT_SECRET": routing_client.secret,
        "TEAMS_AUTH_JWKS_URL": jwks,
        "SPA_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }


@pytest.fixture
def processes(
    postgres_urls: dict[str, str], issuer_key_file: Path, tmp_path: Path
) -> Iterator[Processes]:
    for service, url in postgres_urls.items():
        asyncio.run(empty_tables(url, service))
    asyncio.run(load_demo_directory(postgres_urls["teams"]))
    # Two replicas of spa on one database, as a production deployment runs them.
    names = ("spa", "spa-b", "routing", "teams")
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in names}
    stack = Processes(urls, _environment(postgres_urls, urls, issuer_key_file), tmp_path)
    try:
        stack.start(*urls)
        yield stack
    finally:
        stack.stop_all()


def _token(spa_url: str, client_id: str) -> str:
    spec = next(spec for spec in CLIENTS if spec.client_id == client_id)
    response = httpx.post(
        f"{spa_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(spec.client_id, spec.secret),
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def test_a_referral_is_routed_across_three_real_processes(processes: Processes) -> None:
    spa, teams = processes.urls["spa"], processes.urls["teams"]
    headers = {"Authorization": f"Bearer {_token(spa, 'ambulance-cad')}"}
    body = factories.referral(
        channel="ambulance", urgency="crisis", needs=["fall"], practice="M93002"
    )

    # The crew waits for the outcome in the answer itself.
    headers_once = {**headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=10"}
    created = httpx.post(f"{spa}/v1/referrals", json=body, headers=headers_once, timeout=15)
    assert created.status_code == 201, created.text
    referral = created.json()

    assert referral["status"] == "routed"
    # These processes run on the real clock: the locality team by day, its out-of-hours backup
    # by night. The directory, asked for the same case now, names the same team.
    team_headers = {"Authorization": f"Bearer {_token(spa, 'team-app')}"}
    query = {"practice": "M93002", "pathway": "rapid_response"}
    expected = httpx.get(f"{teams}/v1/resolve", params=query, headers=team_headers).json()
    assert referral["team"]["code"] == expected["team"]["code"]
    assert referral["team"]["code"] in ("lit-south", "ooh-county")
    caseload = httpx.get(
        f"{teams}/v1/teams/{referral['team']['code']}/caseload", headers=team_headers
    ).json()
    assert [item["referral_id"] for item in caseload["items"]] == [referral["id"]]
    # The same request id appears in all three services' logs.
    request_id = created.headers["x-request-id"]
    for service in ("spa", "routing", "teams"):
        assert request_id in processes.logs[service].read_text(), service
    # No patient identifier reached any log.
    for service in ("spa", "routing", "teams"):
        text = processes.logs[service].read_text()
        assert body["patient"]["nhs_number"] not in text
        assert "Testperson" not in text
        assert body["patient"]["date_of_birth"] not in text
    # No answer names the software that serves it.
    assert "server" not in created.headers
    for url in processes.urls.values():
        assert "server" not in httpx.get(f"{url}/healthz").headers, url


def test_referrals_taken_while_routing_and_teams_are_down_are_each_routed_once_they_return(
    processes: Processes, postgres_urls: dict[str, str]
) -> None:
    spa = processes.urls["spa"]
    replicas = [processes.urls["spa"], processes.urls["spa-b"]]
    headers = {"Authorization": f"Bearer {_token(spa, 'ambulance-cad')}"}
    processes.stop("routing")
    processes.stop("teams", hard=True)
    posted = []
    for index in range(12):
        body = factories.referral(
            channel="ambulance",
            urgency="crisis" if index % 2 else "urgent",
            needs=["fall"] if index % 3 else ["reduced_function"],
            practice=["M91001", "M92001", "M93002"][index % 3],
        )
        once = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        created = httpx.post(f"{replicas[index % 2]}/v1/referrals", json=body, headers=once)
        assert created.status_code == 201, created.text
        posted.append(created.json()["id"])
    time.sleep(1.0)
    still_waiting = [
        httpx.get(f"{spa}/v1/referrals/{rid}", headers=headers).json()["status"] for rid in posted
    ]
    assert set(still_waiting) == {"received"}

    processes.start("routing", "teams")

    deadline = time.monotonic() + 60
    for referral_id in posted:
        while (
            status := httpx.get(f"{spa}/v1/referrals/{referral_id}", headers=headers).json()[
                "status"
            ]
        ) in ("received", "triaged"):
            assert time.monotonic() < deadline, "not routed after the services returned"
            time.sleep(0.2)
        assert status == "routed"
    # Assigned exactly once: one care assignment per referral in teams' own database.
    # Both replicas' workers ran, yet each referral was triaged once and assigned once.
    assignments = asyncio.run(_per_referral(postgres_urls["teams"], Assignment))
    decisions = asyncio.run(_per_referral(postgres_urls["routing"], Decision))
    for counts in (assignments, decisions):
        assert sorted(counts) == sorted(posted)
        assert set(counts.values()) == {1}


async def _per_referral(url: str, model: type[Assignment] | type[Decision]) -> dict[str, int]:
    engine = create_engine(url, clock=SettableClock(MORNING))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(model.referral_id, func.count()).group_by(model.referral_id)
            )
            return {str(referral_id): count for referral_id, count in rows}
    finally:
        await engine.dispose()
