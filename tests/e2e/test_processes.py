"""The three services as real uvicorn processes on free ports, against PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import factories
from tests.databases import empty_tables
from tests.stack import CLIENTS, load_demo_directory

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Processes:
    urls: dict[str, str]
    logs: dict[str, Path]


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
    }


@pytest.fixture
def processes(
    postgres_urls: dict[str, str], issuer_key_file: Path, tmp_path: Path
) -> Iterator[Processes]:
    import asyncio

    for service, url in postgres_urls.items():
        asyncio.run(empty_tables(url, service))
    asyncio.run(load_demo_directory(postgres_urls["teams"]))
    ports = {service: _free_port() for service in ("spa", "routing", "teams")}
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    env = _environment(postgres_urls, urls, issuer_key_file)
    running, logs = [], {}
    for service, port in ports.items():
        logs[service] = tmp_path / f"{service}.log"
        command = [
            sys.executable, "-m", "uvicorn", "--factory", f"services.{service}.main:app_from_environment",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        ]  # fmt: skip
        with logs[service].open("wb") as log:
            running.append(
                subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            )
    try:
        _wait_ready(urls, running, logs)
        yield Processes(urls, logs)
    finally:
        for process in running:
            process.send_signal(signal.SIGINT)
        for process in running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(
    urls: dict[str, str], running: list[subprocess.Popen[bytes]], logs: dict[str, Path]
) -> None:
    deadline = time.monotonic() + 30
    for service, url in urls.items():
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in running):
                pytest.fail(f"{service} did not start:\n{logs[service].read_text()[-3000:]}")
            time.sleep(0.1)


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

    created = httpx.post(f"{spa}/v1/referrals", json=body, headers=headers)
    assert created.status_code == 201, created.text
    location = f"{spa}{created.headers['location']}"
    deadline = time.monotonic() + 10
    while (referral := httpx.get(location, headers=headers).json())[
        "status"
    ] == "received" or referral["status"] == "triaged":
        assert time.monotonic() < deadline, "not routed in time"
        time.sleep(0.05)

    assert referral["status"] == "routed"
    # These processes run on the real clock: the locality team by day, its out-of-hours backup
    # by night. The directory, asked for the same case now, names the same team.
    team_headers = {"Authorization": f"Bearer {_token(spa, 'team-app')}"}
    query = {"practice": "M93002", "pathway": "rapid_response"}
    expected = httpx.get(f"{teams}/v1/resolve", params=query, headers=team_headers).json()
    assert referral["team"]["code"] == expected["team"]["code"]
    assert referral["team"]["code"] in ("lit-south", "ooh-county")
    caseload = httpx.get(
        f"{teams}/v1/teams/{referral['team']['id']}/caseload", headers=team_headers
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
