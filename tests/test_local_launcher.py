"""``make run`` for a newcomer (deploy/local.py): demo clients for every kind of caller, whose
secrets survive a restart, and a directory that is loaded once and never overwritten unawares."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update

from services.shared.clock import system_clock
from services.shared.db import one_transaction
from services.spa.identity.models import Client
from services.spa.main import create_app as create_spa
from services.spa.settings import SpaSettings
from services.teams import cli as teams_cli
from services.teams.directory.entries import DirectoryFile
from services.teams.directory.loading import (
    DEMO_DIRECTORY,
    export_directory,
    load_directory,
    read_directory_file,
)
from services.teams.directory.models import Team
from tests.databases import create_sqlite_databases
from tests.stack import CHEAP_HASHER, SPA, Stack


def _launcher() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "deploy" / "local.py"
    spec = importlib.util.spec_from_file_location("local_launcher", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


launcher = _launcher()


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The launcher's SQLite databases, migrated, in a var directory of their own."""
    return create_sqlite_databases(tmp_path_factory.mktemp("var"))


def _demo_county_changed(change: str) -> DirectoryFile:
    directory = read_directory_file(DEMO_DIRECTORY)
    teams = [
        team.model_copy(update={"name": change}) if team.code == "lit-north" else team
        for team in directory.teams
    ]
    return directory.model_copy(update={"teams": teams})


async def _change_directory(teams_url: str, directory: DirectoryFile, actor: str) -> None:
    """A change as directory administration makes it (PUT /v1/directory loads it so)."""
    async with one_transaction(teams_url, system_clock) as session:
        await load_directory(session, directory, actor=actor, now=system_clock())


async def _team_name(teams_url: str, code: str) -> str:
    async with one_transaction(teams_url, system_clock) as session:
        directory = await export_directory(session)
    return next(team.name for team in directory.teams if team.code == code)


async def _report_closed(teams_url: str, code: str) -> None:
    """What a team's own system reports: its capacity and operating status."""
    async with one_transaction(teams_url, system_clock) as session:
        await session.execute(
            update(Team)
            .where(Team.code == code)
            .values(capacity_available=0, operating_status="closed")
        )


def _prepare(var: Path, teams_url: str, path: Path = DEMO_DIRECTORY, **options: Any) -> Any:
    return launcher.prepare_directory(var, teams_url, path, reload=options.get("reload", False))


# --- Secrets ------------------------------------------------------------------------------------


def test_secrets_are_made_once_and_kept_where_only_their_owner_reads_them(tmp_path: Path) -> None:
    first, made = launcher.client_secrets(tmp_path)
    again, made_again = launcher.client_secrets(tmp_path)
    path = tmp_path / launcher.CLIENTS_FILE
    assert made == set(first)
    assert made_again == set()
    assert again == first
    assert set(first) == {client.client_id for client in launcher.all_clients()}
    assert len(set(first.values())) == len(first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == first


def test_a_secrets_file_opened_to_others_is_closed_again(tmp_path: Path) -> None:
    first, _ = launcher.client_secrets(tmp_path)
    path = tmp_path / launcher.CLIENTS_FILE
    path.chmod(0o644)
    assert launcher.client_secrets(tmp_path) == (first, set())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_client_added_later_gets_a_secret_and_the_others_keep_theirs(tmp_path: Path) -> None:
    first, _ = launcher.client_secrets(tmp_path)
    path = tmp_path / launcher.CLIENTS_FILE
    path.write_text(json.dumps({k: v for k, v in first.items() if k != "demo-cru"}))
    again, made = launcher.client_secrets(tmp_path)
    assert made == {"demo-cru"}
    assert {k: v for k, v in again.items() if k != "demo-cru"} == {
        k: v for k, v in first.items() if k != "demo-cru"
    }
    assert again["demo-cru"] != first["demo-cru"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- Every client gets a token with its scopes --------------------------------------------------


@pytest.fixture
async def launched_spa(
    databases: dict[str, str], issuer_key_file: Path, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """spa on the launcher's database, after the launcher prepared it twice (two starts)."""
    for _ in range(2):
        _, _, teams = await asyncio.to_thread(_prepare, tmp_path, databases["teams"])
        found, made = launcher.client_secrets(tmp_path)
        await launcher.register_clients(
            databases["spa"], found, teams, new_secrets=made, hasher=CHEAP_HASHER
        )
    settings = SpaSettings(
        database_url=databases["spa"],
        issuer_key_files=(issuer_key_file,),
        background_workers=False,
    )
    app = create_spa(settings, clock=system_clock)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SPA) as spa,
    ):
        yield spa, found


async def test_every_demo_client_gets_a_token_with_its_scopes_and_bindings(
    launched_spa: tuple[httpx.AsyncClient, dict[str, str]],
    databases: dict[str, str],
    tmp_path: Path,
) -> None:
    spa, found = launched_spa
    for client in launcher.all_clients():
        response = await spa.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, found[client.client_id]),
        )
        assert response.status_code == 200, (client.client_id, response.text)
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert set(claims["scope"].split()) == set(client.scopes), client.client_id
        assert set(claims.get("channels", [])) == set(client.channels), client.client_id
        assert set(claims.get("localities", [])) == set(client.localities), client.client_id
    # A third start finds every client registered as it should be, and hashes nothing again.
    _, _, teams = await asyncio.to_thread(_prepare, tmp_path, databases["teams"])
    before = await _secret_hashes(databases["spa"])
    await launcher.register_clients(databases["spa"], found, teams, new_secrets=set())
    assert await _secret_hashes(databases["spa"]) == before
    cru = await _claims(spa, found, "demo-cru")
    team = await _claims(spa, found, "demo-team")
    assert cru["teams"] == ["cru-county"]
    assert "cru-county" not in team["teams"]
    assert {"lit-north", "plmdt-south-3", "ooh-county", "equipment-county"} <= set(team["teams"])


async def _secret_hashes(spa_url: str) -> dict[str, str]:
    async with one_transaction(spa_url, system_clock) as session:
        return {row.client_id: row.secret_hash for row in await session.scalars(select(Client))}


async def _claims(spa: httpx.AsyncClient, found: dict[str, str], client_id: str) -> Any:
    response = await spa.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, found[client_id]),
    )
    return jwt.decode(response.json()["access_token"], options={"verify_signature": False})


def test_every_channel_has_a_demo_client_with_an_example() -> None:
    tried = {name for client in launcher.DEMO_CLIENTS for name in client.examples}
    channels = {channel for client in launcher.DEMO_CLIENTS for channel in client.channels}
    assert channels == {
        "nhs111", "ambulance", "county_contact", "self", "carer", "gp", "hospital_discharge",
        "care_home", "community_team", "social_care", "lspa",
    }  # fmt: skip
    assert tried == channels | {"bars", "bars-999"}


async def test_each_channels_example_is_taken_from_its_demo_client(
    stack: Stack, postgres_urls: dict[str, str], tmp_path: Path
) -> None:
    """What `make demo-curls` posts, posted by the client it names: every channel works."""
    found, _ = launcher.client_secrets(tmp_path)
    teams = {launcher.CRU: ["cru-county"], launcher.CARE_TEAMS: ["lit-north"]}
    await launcher.register_clients(
        postgres_urls["spa"], found, teams, list(launcher.DEMO_CLIENTS), hasher=CHEAP_HASHER
    )
    outcomes: dict[str, str] = {}
    async with stack.raw("spa") as spa:
        for client in launcher.DEMO_CLIENTS:
            for name in client.examples:
                token = await _token(spa, client.client_id, found[client.client_id])
                response = await _post_example(spa, name, token)
                assert response.status_code in (200, 201), (name, response.text)
                outcomes[name] = _outcome(response.json())
    county = {"county_contact", "self", "carer"}
    assert {outcomes.pop(name) for name in county} == {"awaiting_assessment"}
    assert {outcomes.pop("bars"), outcomes.pop("bars-999")} == {"ok"}
    assert set(outcomes.values()) == {"routed"}


def _outcome(answer: dict[str, Any]) -> str:
    """A referral's status, or the code of a BaRS response message."""
    if answer.get("resourceType") != "Bundle":
        return str(answer["status"])
    header = answer["entry"][0]["resource"]
    return str(header["response"]["code"])


async def _token(spa: httpx.AsyncClient, client_id: str, secret: str) -> str:
    response = await spa.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _post_example(spa: httpx.AsyncClient, name: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=5"}
    body = launcher.example(name)
    if not name.startswith("bars"):
        headers["Idempotency-Key"] = body["patient"]["nhs_number"]
        return await spa.post("/v1/referrals", json=body, headers=headers)
    headers |= {
        "X-Request-Id": body["id"],
        "X-Correlation-Id": body["entry"][0]["resource"]["id"],
        "NHSD-Target-Identifier": launcher.bars_target(),
        "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json",
    }
    return await spa.post("/FHIR/R4/$process-message", content=json.dumps(body), headers=headers)


# --- The directory is loaded once, and kept once changed ----------------------------------------


def test_a_directory_changed_since_it_was_loaded_is_kept_unless_asked(
    tmp_path: Path,
) -> None:
    teams_url = create_sqlite_databases(tmp_path)["teams"]
    first, _, _ = _prepare(tmp_path, teams_url)
    again, _, _ = _prepare(tmp_path, teams_url)
    assert (str(first.action), str(again.action)) == ("loaded", "unchanged")

    asyncio.run(
        _change_directory(teams_url, _demo_county_changed("North Team"), "demo-directory-admin")
    )
    kept, previous, _ = _prepare(tmp_path, teams_url)
    assert str(kept.action) == "kept"
    assert kept.changed_since.count == 1
    assert kept.changed_since.actors == ["demo-directory-admin"]
    assert asyncio.run(_team_name(teams_url, "lit-north")) == "North Team"
    report = launcher.directory_report(kept, DEMO_DIRECTORY, previous)
    assert "KEPT" in report
    assert "RELOAD_DIRECTORY=1" in report
    assert "1 change(s) by demo-directory-admin" in report

    replaced, _, _ = _prepare(tmp_path, teams_url, reload=True)
    assert str(replaced.action) == "replaced"
    assert asyncio.run(_team_name(teams_url, "lit-north")) == "Locality Integrated Team North"
    after, _, _ = _prepare(tmp_path, teams_url)
    assert str(after.action) == "unchanged"


def test_what_teams_report_of_themselves_is_no_change_to_the_directory(
    tmp_path: Path,
) -> None:
    teams_url = create_sqlite_databases(tmp_path)["teams"]
    _prepare(tmp_path, teams_url)
    asyncio.run(_report_closed(teams_url, "lit-north"))
    again, _, _ = _prepare(tmp_path, teams_url)
    assert str(again.action) == "unchanged"


def test_another_file_is_loaded_over_a_directory_nobody_changed(tmp_path: Path) -> None:
    teams_url = create_sqlite_databases(tmp_path)["teams"]
    _prepare(tmp_path, teams_url)
    other = tmp_path / "other.yaml"
    other.write_text(DEMO_DIRECTORY.read_text().replace("Locality Integrated Team North", "LIT N"))
    loaded, _, _ = _prepare(tmp_path, teams_url, other)
    assert str(loaded.action) == "loaded"
    assert asyncio.run(_team_name(teams_url, "lit-north")) == "LIT N"


def test_a_directory_loaded_without_a_record_is_kept_if_it_differs(tmp_path: Path) -> None:
    teams_url = create_sqlite_databases(tmp_path)["teams"]
    asyncio.run(_change_directory(teams_url, read_directory_file(DEMO_DIRECTORY), "cli:someone"))
    same, _, _ = _prepare(tmp_path, teams_url)
    assert str(same.action) == "unchanged"

    (tmp_path / launcher.DIRECTORY_RECORD).unlink()
    asyncio.run(_change_directory(teams_url, _demo_county_changed("North by hand"), "cli:someone"))
    kept, _, _ = _prepare(tmp_path, teams_url)
    assert str(kept.action) == "kept"
    assert asyncio.run(_team_name(teams_url, "lit-north")) == "North by hand"


def test_the_command_line_load_keeps_a_record_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    teams_url = create_sqlite_databases(tmp_path)["teams"]
    monkeypatch.setenv("TEAMS_DATABASE_URL", teams_url)
    record = tmp_path / "record.json"
    arguments = ["load-directory", "--demo", "--record", str(record)]
    outcomes = []
    for _ in range(2):
        assert teams_cli.main(arguments) == 0
        outcomes.append(json.loads(capsys.readouterr().out)["outcome"])
    asyncio.run(_change_directory(teams_url, _demo_county_changed("Renamed"), "demo-admin"))
    assert teams_cli.main(arguments) == 0
    kept = json.loads(capsys.readouterr().out)
    assert teams_cli.main([*arguments, "--replace-changes"]) == 0
    replaced = json.loads(capsys.readouterr().out)
    assert outcomes == ["loaded", "unchanged"]
    assert kept["outcome"] == "kept"
    assert kept["changed_since_load"]["actors"] == ["demo-admin"]
    assert replaced["outcome"] == "replaced"


def test_the_shell_helpers_print_the_clients_and_a_curl_for_each_channel(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "deploy" / "local.py"
    environment = {**os.environ, "SPA_PLATFORM_VAR": str(tmp_path)}

    def helper(*arguments: str) -> str:
        command = [sys.executable, str(script), *arguments]
        done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
        return done.stdout

    shown = helper("--show-clients")
    found = json.loads((tmp_path / launcher.CLIENTS_FILE).read_text())
    assert all(
        f"{client_id:<24} {found[client_id]}" in shown
        for client_id in found
        if client_id.startswith("demo-")
    )
    curls = helper("--curl")
    assert curls.count("curl -s -X POST") == 13
    assert "/FHIR/R4/$process-message" in curls
    assert "--token demo-care-home" in curls
    body = json.loads(helper("--example", "carer"))
    assert body["channel"] == "carer"
    assert body["contact"] == {"outcome": "contact_assessment_needed"}
