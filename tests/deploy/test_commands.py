"""``wait-for-schema``: what each pod's init container runs before the service starts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.routing import cli as routing_cli
from services.shared.migrations import upgrade_url
from services.spa import cli as spa_cli
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
