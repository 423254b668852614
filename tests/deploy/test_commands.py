"""``wait-for-schema``: what each pod's init container runs before the service starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from services.routing import cli as routing_cli
from services.shared.migrations import upgrade_url
from services.spa import cli as spa_cli
from services.spa.identity.keys import write_new_key
from services.teams import cli as teams_cli

CLIS = {"spa": spa_cli.main, "routing": routing_cli.main, "teams": teams_cli.main}


@pytest.mark.parametrize("service", CLIS)
def test_waits_until_the_migration_has_run(
    service: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    arguments = ["wait-for-schema", "--timeout", "0.3", "--interval", "0.1"]

    assert CLIS[service](arguments) == 1
    assert json.loads(capsys.readouterr().out)["schema"] == "behind"

    asyncio.run(upgrade_url(url, service))
    assert CLIS[service](arguments) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "at_head"


def test_a_database_not_there_yet_is_waited_for_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 9 of this machine: the server is not up yet.
    monkeypatch.setenv("SPA_DATABASE_URL", "postgresql+asyncpg://spa@127.0.0.1:9/spa")
    assert spa_cli.main(["wait-for-schema", "--timeout", "0.2", "--interval", "0.1"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["schema"] == "behind"
    assert verdict["found"] is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.smoke
def test_serve_runs_the_service_until_it_is_told_to_stop(tmp_path: Path) -> None:
    # What a container runs: python -m services.spa serve, here on a free port.
    url = f"sqlite+aiosqlite:///{tmp_path / 'spa.db'}"
    asyncio.run(upgrade_url(url, "spa"))
    write_new_key(tmp_path / "issuer-key.pem")
    port = _free_port()
    env = {
        **os.environ,
        "SPA_DATABASE_URL": url,
        "SPA_ISSUER_KEY_FILES": json.dumps([str(tmp_path / "issuer-key.pem")]),
    }
    command = [sys.executable, "-m", "services.spa", "serve", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        ready = None
        for _ in range(300):
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready is not None, "spa did not answer"
        assert ready.json() == {"status": "ready"}
        assert "server" not in ready.headers
        refused = httpx.get(f"http://127.0.0.1:{port}/v1/referrals/{uuid.uuid4()}", timeout=2)
        assert refused.status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=15)
    # uvicorn shuts down, then ends by the signal it was sent (as an orchestrator expects).
    assert server.returncode in (0, -signal.SIGTERM)
    # Every line it wrote is one JSON object: no plain-text lines from uvicorn.
    for line in errors.decode().splitlines():
        json.loads(line)
