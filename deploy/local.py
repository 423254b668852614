"""``make run``: the whole system on this machine, on SQLite, with the demo county.

Creates the issuer's key, migrates the three databases, loads the directory (on first start;
later only if nobody changed it since), registers the services' own clients and a demo client
for every channel and every other kind of caller (secrets made once, kept in
``var/demo-clients.json``), starts the three services with uvicorn, and prints how to call them.
Ctrl-C stops everything.

    python deploy/local.py [--directory FILE] [--reload-directory]
    python deploy/local.py --show-clients      the demo clients, their scopes and secrets
    python deploy/local.py --token CLIENT      a token for a demo client (the system running)
    python deploy/local.py --example NAME      a request body for a channel, or ``bars``
    python deploy/local.py --curl [NAME]       a ready-to-paste curl for one channel, or each
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select

from services.shared.clock import system_clock
from services.shared.db import one_transaction
from services.shared.identifiers import nhs_number_check_digit
from services.shared.problems import Problem
from services.spa.console.demo import DEMO_STAFF
from services.spa.identity import service as identity
from services.spa.identity.keys import write_new_key
from services.spa.identity.models import Client
from services.spa.settings import loopback_http
from services.teams.directory.file_loads import (
    DirectorySource,
    LoadAction,
    LoadOutcome,
    LoadRecord,
    load_file_unless_changed,
)
from services.teams.directory.loading import DEMO_DIRECTORY
from services.teams.directory.models import Team

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("SPA_PLATFORM_VAR", ROOT / "var"))
HOST = os.environ.get("SPA_PLATFORM_HOST", "127.0.0.1")
PORTS = {
    "spa": int(os.environ.get("SPA_PORT", "8001")),
    "routing": int(os.environ.get("ROUTING_PORT", "8002")),
    "teams": int(os.environ.get("TEAMS_PORT", "8003")),
}
URLS = {name: f"http://{HOST}:{port}" for name, port in PORTS.items()}
CLIENTS_FILE = "demo-clients.json"
CONSOLE_PASSWORD_FILE = "console-demo-password"  # noqa: S105 - a file name
DIRECTORY_RECORD = "directory-load.json"
LAUNCHER = ".venv/bin/python deploy/local.py"


def database_urls(var: Path) -> dict[str, str]:
    return {service: f"sqlite+aiosqlite:///{var / f'{service}.db'}" for service in PORTS}


def service_environment(var: Path = VAR) -> dict[str, str]:
    """Configuration of all three services; each reads only its own prefix."""
    env = dict(os.environ)
    urls = database_urls(var)
    env.update(
        {
            "SPA_DATABASE_URL": urls["spa"],
            "ROUTING_DATABASE_URL": urls["routing"],
            "TEAMS_DATABASE_URL": urls["teams"],
            "SPA_ISSUER_KEY_FILES": json.dumps([str(var / "issuer-key.pem")]),
            "SPA_ROUTING_URL": URLS["routing"],
            "SPA_TEAMS_URL": URLS["teams"],
            "ROUTING_TEAMS_URL": URLS["teams"],
            "ROUTING_AUTH_JWKS_URL": f"{URLS['spa']}/.well-known/jwks.json",
            "TEAMS_AUTH_JWKS_URL": f"{URLS['spa']}/.well-known/jwks.json",
            "TEAMS_SPA_URL": URLS["spa"],
            "TEAMS_TOKEN_URL": f"{URLS['spa']}/oauth/token",
            # The demo's Open Referral feed is public, as a council's directory would be.
            "TEAMS_OPENREFERRAL_ANONYMOUS_READ": "true",
            "SPA_TOKEN_URL": f"{URLS['spa']}/oauth/token",
            "ROUTING_TOKEN_URL": f"{URLS['spa']}/oauth/token",
            # Webhooks to a receiver on this machine (examples/webhook_receiver.py).
            "SPA_WEBHOOK_ALLOW_HTTP_HOSTS": json.dumps(["127.0.0.1", "localhost"]),
            "SPA_WEBHOOK_ALLOWED_NETWORKS": json.dumps(["127.0.0.0/8", "::1/128"]),
        }
    )
    for prefix in ("SPA", "ROUTING", "TEAMS"):
        env.setdefault(f"{prefix}_LOG_FORMAT", "console")
        # The documents at /openapi.json and the documentation page at /docs, pointing at
        # these addresses.
        env.setdefault(f"{prefix}_OPENAPI_ENABLED", "true")
        env.setdefault(f"{prefix}_PUBLIC_BASE_URL", URLS[prefix.lower()])
        env.setdefault(f"{prefix}_PUBLIC_TOKEN_URL", f"{URLS['spa']}/oauth/token")
    if demo_sign_in_allowed(env):
        env.setdefault("SPA_CONSOLE_DEMO_PASSWORD", console_password(var))
    return env


def demo_sign_in_allowed(env: dict[str, str]) -> bool:
    """The console's demo staff sign in only where spa is served to this machine alone."""
    return loopback_http(env.get("SPA_PUBLIC_BASE_URL", URLS["spa"]))


def console_password(var: Path) -> str:
    """The demo staff's password, made once and kept in a file only its owner can read."""
    path = var / CONSOLE_PASSWORD_FILE
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(12))
    return path.read_text().strip()


def console_instructions(env: dict[str, str]) -> list[str]:
    if "SPA_CONSOLE_DEMO_PASSWORD" not in env:
        return [
            "The console's demo sign-in is off: spa is not served on the loopback interface.",
        ]
    accounts = [f"  {person.person_id:<18} {person.name}" for person in DEMO_STAFF.values()]
    return [
        f"The console: {URLS['spa']}/console (sign in as demo staff with the password "
        f"{env['SPA_CONSOLE_DEMO_PASSWORD']}, kept in {VAR / CONSOLE_PASSWORD_FILE}):",
        *accounts,
    ]


# --- Who may call: the services themselves and the demo clients ------------------------------

# The teams a client acts for, taken from the directory as loaded: the CRU's own client for the
# CRU teams, one client for every other team (each team's own system, in one).
CRU, CARE_TEAMS = "cru", "care"


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    purpose: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...] = ("spa",)
    channels: tuple[str, ...] = ()
    localities: tuple[str, ...] = ()
    teams: str | None = None
    # The request bodies it can try (channels, or ``bars`` for the FHIR door).
    examples: tuple[str, ...] = ()


REFERRER = ("referrals:create", "referrals:read")
SERVICE_CLIENTS = {
    "SPA": DemoClient(
        "spa-service",
        "spa asking routing and teams",
        ("decisions:create", "assignments:create", "directory:read"),
        ("routing", "teams"),
    ),
    "ROUTING": DemoClient(
        "routing-service", "routing asking teams", ("directory:read",), ("teams",)
    ),
    "TEAMS": DemoClient(
        "teams-service", "teams reporting to spa", ("assignments:report",), ("spa",)
    ),
}
DEMO_CLIENTS = (
    DemoClient(
        "demo-nhs111",
        "NHS 111 (national): JSON and the BaRS FHIR door",
        REFERRER,
        channels=("nhs111",),
        examples=("nhs111", "bars"),
    ),
    DemoClient(
        "demo-ambulance",
        "ambulance service, 999 (JSON and BaRS)",
        REFERRER,
        channels=("ambulance",),
        examples=("ambulance", "bars-999"),
    ),
    DemoClient(
        "demo-county-contact",
        "county contact centre (for people and carers calling)",
        REFERRER,
        channels=("county_contact", "self", "carer"),
        examples=("county_contact", "self", "carer"),
    ),
    *(
        DemoClient(
            f"demo-{channel.replace('_', '-')}",
            purpose,
            REFERRER,
            channels=(channel,),
            examples=(channel,),
        )
        for channel, purpose in (
            ("gp", "GP practice system (locality)"),
            ("hospital_discharge", "hospital discharge team (locality)"),
            ("care_home", "care home (locality)"),
            ("community_team", "community team (locality)"),
            ("social_care", "adult social care (locality)"),
            ("lspa", "local single point of access (locality)"),
        )
    ),
    DemoClient(
        "demo-call-handlers",
        "call handlers, every locality's queue",
        ("queue:work", "referrals:read"),
        localities=("*",),
    ),
    DemoClient(
        "demo-team",
        "every team's own system but the CRU's: caseloads, capacity",
        ("caseload:manage", "directory:read", "decisions:read", "referrals:read"),
        ("teams", "routing", "spa"),
        teams=CARE_TEAMS,
    ),
    DemoClient(
        "demo-cru",
        "Central Referral Unit: safeguarding escalations",
        ("caseload:manage", "directory:read", "referrals:read"),
        ("teams", "spa"),
        teams=CRU,
    ),
    DemoClient(
        "demo-directory-admin",
        "directory administration",
        ("directory:admin", "directory:read"),
        ("teams",),
    ),
    DemoClient("demo-rules-admin", "triage rule sets", ("rules:admin",), ("routing",)),
    DemoClient("demo-reports", "response-time reports", ("reports:read",)),
    DemoClient(
        "demo-prometheus",
        "scraping each service's /metrics",
        ("metrics:read",),
        ("spa", "routing", "teams"),
    ),
    DemoClient(
        "demo-integration-engine",
        "webhooks for every team's cases",
        ("subscriptions:manage", "referrals:read"),
        teams=CARE_TEAMS,
    ),
)


def all_clients() -> list[DemoClient]:
    return [*SERVICE_CLIENTS.values(), *DEMO_CLIENTS]


def client_secrets(var: Path) -> tuple[dict[str, str], set[str]]:
    """Each client's secret, made once and kept in a file only its owner can read; and the
    clients whose secrets were made now (to register, and to show)."""
    path = var / CLIENTS_FILE
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
    missing = [client.client_id for client in all_clients() if client.client_id not in found]
    if missing:
        var.mkdir(parents=True, exist_ok=True)
        found.update({client_id: secrets.token_urlsafe(24) for client_id in missing})
        staged = path.with_suffix(".new")
        staged.unlink(missing_ok=True)
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(found, file, indent=2)
        staged.replace(path)
    return found, set(missing)


async def register_clients(
    spa_url: str,
    client_secrets: dict[str, str],
    teams: dict[str, list[str]],
    clients: list[DemoClient] | None = None,
    *,
    new_secrets: set[str] | None = None,
    hasher: PasswordHasher | None = None,
) -> None:
    """Register each client (all by default) with its kept secret, unless it is registered
    already as it should be: its scopes follow this file and its teams the directory. Only
    clients in ``new_secrets`` (all when None) are taken to have a secret the database lacks:
    hashing one costs a tenth of a second or more, on every start."""
    hashing = {"hasher": hasher} if hasher is not None else {}
    async with one_transaction(spa_url, system_clock) as session:
        registered = {row.client_id: row for row in await session.scalars(select(Client))}
        for client in all_clients() if clients is None else clients:
            bound = teams.get(client.teams, []) if client.teams else []
            stored = registered.get(client.client_id)
            fresh = new_secrets is None or client.client_id in new_secrets
            if not fresh and stored is not None and _registered_as(stored, client, bound):
                continue
            await identity.register_client(
                session,
                client_id=client.client_id,
                name=client.purpose,
                secret=client_secrets[client.client_id],
                scopes=list(client.scopes),
                audiences=list(client.audiences),
                channels=list(client.channels),
                teams=bound,
                localities=list(client.localities),
                replace=True,
                **hashing,
            )


def _registered_as(stored: Client, client: DemoClient, teams: list[str]) -> bool:
    return stored.revoked_at is None and (
        stored.name,
        stored.scopes,
        stored.audiences,
        stored.channels,
        stored.teams,
        stored.localities,
    ) == (
        client.purpose,
        sorted(set(client.scopes)),
        sorted(set(client.audiences)),
        list(client.channels),
        sorted(set(teams)),
        sorted(set(client.localities)),
    )


# --- The directory ------------------------------------------------------------------------------


def prepare_directory(
    var: Path, teams_url: str, path: Path, *, reload: bool
) -> tuple[LoadOutcome, LoadRecord | None, dict[str, list[str]]]:
    """Load ``path`` unless the directory was changed since it was last loaded (then keep it,
    unless ``reload``); the record of the load before, and the active teams' codes, the CRU's
    apart."""
    record_file = var / DIRECTORY_RECORD
    record = LoadRecord.from_json(record_file.read_text()) if record_file.exists() else None
    outcome, teams = asyncio.run(_directory(teams_url, DirectorySource.read(path), record, reload))
    if outcome.record is not None and outcome.record != record:
        record_file.write_text(outcome.record.to_json())
    return outcome, record, teams


async def _directory(
    teams_url: str, file: DirectorySource, record: LoadRecord | None, reload: bool
) -> tuple[LoadOutcome, dict[str, list[str]]]:
    async with one_transaction(teams_url, system_clock) as session:
        outcome = await load_file_unless_changed(
            session, file, record, replace_changes=reload, actor="make-run", now=system_clock()
        )
        rows = (
            await session.execute(
                select(Team.code, Team.team_type)
                .where(Team.retired_at.is_(None))
                .order_by(Team.code)
            )
        ).all()
    teams: dict[str, list[str]] = {CRU: [], CARE_TEAMS: []}
    for code, team_type in rows:
        teams[CRU if team_type == CRU else CARE_TEAMS].append(code)
    return outcome, teams


def directory_report(outcome: LoadOutcome, path: Path, previous: LoadRecord | None) -> str:
    counts = outcome.counts or {}
    loaded = (
        f"{counts.get('localities', 0)} localities, {counts.get('practices', 0)} practices, "
        f"{counts.get('teams', 0)} teams"
    )
    since = outcome.changed_since
    changes = (
        f"{since.count} change(s) by {', '.join(since.actors)}, the last at {since.last_at:%Y-%m-%d %H:%M} UTC"
        if since is not None and since.last_at is not None
        else "not loaded from a file here"
    )
    if outcome.action == LoadAction.LOADED:
        return f"Directory: loaded {path} ({loaded})."
    if outcome.action == LoadAction.REPLACED:
        return f"Directory: reloaded {path} ({loaded}), replacing what was changed since it was loaded ({changes})."
    if outcome.action == LoadAction.UNCHANGED:
        return f"Directory: as loaded from {path}, unchanged since."
    source = previous.source if previous else "a file"
    return (
        f"Directory: KEPT as it is, not reloaded from {path}: it was changed since it was loaded "
        f"from {source} ({changes}). To replace it with the file: "
        "RELOAD_DIRECTORY=1 make run (or deploy/local.py --reload-directory)."
    )


# --- Starting ----------------------------------------------------------------------------------


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout


def register(env: dict[str, str], client_id: str, scopes: str, audiences: str, **bound: str) -> str:
    """Register (or re-register) one more client with a new secret; ``bound`` adds channels,
    teams or localities. (For a caller of its own, such as the end-to-end benchmark's load.)"""
    secret = secrets.token_urlsafe(24)
    env = {**env, "NEW_CLIENT_SECRET": secret}
    args = ["-m", "services.spa", "register-client", "--client-id", client_id, "--name", client_id]
    args += ["--scopes", *scopes.split(), "--audiences", *audiences.split()]
    for option, values in bound.items():
        args += [f"--{option}", *values.split()]
    run(env, *args, "--secret-env", "NEW_CLIENT_SECRET", "--replace")
    return secret


def prepare(
    env: dict[str, str], directory: Path = DEMO_DIRECTORY, reload: bool = False
) -> tuple[bool, str]:
    """The databases (those ``env`` names) migrated, the directory and the clients ready;
    whether secrets were made now, and what became of the directory."""
    VAR.mkdir(parents=True, exist_ok=True)
    key = VAR / "issuer-key.pem"
    if not key.exists():
        write_new_key(key)
    for service in PORTS:
        run(env, "-m", f"services.{service}", "migrate")
    urls = {service: env[f"{service.upper()}_DATABASE_URL"] for service in PORTS}
    outcome, previous, teams = prepare_directory(VAR, urls["teams"], directory, reload=reload)
    found, made = client_secrets(VAR)
    asyncio.run(register_clients(urls["spa"], found, teams, new_secrets=made))
    for prefix, client in SERVICE_CLIENTS.items():
        env[f"{prefix}_SERVICE_CLIENT_ID"] = client.client_id
        env[f"{prefix}_SERVICE_CLIENT_SECRET"] = found[client.client_id]
    return bool(made), directory_report(outcome, directory, previous)


def start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    processes = []
    for service, port in PORTS.items():
        command = [
            sys.executable, "-m", "uvicorn", "--factory", f"services.{service}.main:app_from_environment",
            "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning",
            "--no-server-header",
        ]  # fmt: skip
        # A session of its own, so that Ctrl-C reaches only this launcher, which then stops
        # each service once and waits for it.
        processes.append(subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True))
    return processes


def wait_ready(processes: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for url in URLS.values():
        while True:
            if any(process.poll() is not None for process in processes):
                raise SystemExit("a service stopped while starting; see its output above")
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not become ready")
            time.sleep(0.2)


# --- What to try -------------------------------------------------------------------------------


def synthetic_nhs_number() -> str:
    """A new valid NHS number from the 999 range, which is never issued to anyone."""
    while True:
        first_nine = "999" + "".join(secrets.choice("0123456789") for _ in range(6))
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            return first_nine + str(check)


def example(name: str) -> dict[str, Any]:
    """A request body for a channel (``POST /v1/referrals``), or ``bars`` / ``bars-999`` (a
    BaRS message for ``$process-message``): a new fictional patient each time, so that trying
    again is not held as a possible duplicate."""
    if name.startswith("bars"):
        return bars_message("999" if name == "bars-999" else "111")
    body: dict[str, Any] = {
        "channel": name,
        "urgency": "crisis",
        "patient": {
            "nhs_number": synthetic_nhs_number(),
            "given_name": "Ada",
            "family_name": "Example",
            "date_of_birth": "1938-05-04",
            "postcode": "XW1 2ZZ",
            "registered_practice": "M91001",
        },
        "needs": ["fall"],
        "consent": {"basis": "direct_care_implied"},
        "reason": "Fell at home this morning, no apparent injury, now unsteady.",
    }
    if name in ("county_contact", "self", "carer"):
        # The county passes on what it could not settle with advice.
        body["urgency"] = "urgent"
        body["contact"] = {"outcome": "contact_assessment_needed"}
    if name == "nhs111":
        body["nhs111"] = {"dx_code": "Dx0122", "case_reference": f"case-{uuid.uuid4().hex[:8]}"}
    return body


def bars_message(sender: str) -> dict[str, Any]:
    """A BaRS referral of a fictional woman who fell at home, from 111 or 999."""

    def entry(resource: dict[str, Any]) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource}

    ods = "https://fhir.nhs.uk/Id/ods-organization-code"
    practice = entry(
        {"resourceType": "Organization", "identifier": [{"system": ods, "value": "M91001"}]}
    )
    patient = entry(
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": synthetic_nhs_number()}
            ],
            "name": [{"use": "official", "family": "Example", "given": ["Ada"]}],
            "birthDate": "1938-05-04",
            "address": [{"use": "home", "postalCode": "XW1 2ZZ"}],
            "generalPractitioner": [{"reference": practice["fullUrl"]}],
        }
    )
    request = entry(
        {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": "https://demo.test/referral", "value": str(uuid.uuid4())}],
            "status": "active",
            "intent": "order",
            "priority": "urgent",
            "category": [
                {
                    "coding": [
                        {
                            "system": "https://fhir.nhs.uk/CodeSystem/message-category-servicerequest",
                            "code": "referral",
                        }
                    ]
                }
            ],
            # SNOMED CT 1912002: Fall.
            "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "1912002"}]}],
            "subject": {"reference": patient["fullUrl"]},
            "note": [{"text": "Fell at home this morning, now unsteady."}],
        }
    )
    header = entry(
        {
            "resourceType": "MessageHeader",
            "id": str(uuid.uuid4()),
            "eventCoding": {
                "system": "https://fhir.nhs.uk/CodeSystem/message-events-bars",
                "code": "servicerequest-request",
            },
            "source": {"endpoint": f"https://demo.test/{sender}/FHIR/R4"},
            "reason": {
                "coding": [
                    {"system": "https://fhir.nhs.uk/CodeSystem/message-reason-bars", "code": "new"}
                ]
            },
            "focus": [{"reference": request["fullUrl"]}],
        }
    )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"versionId": "1.2.0"},
        "type": "message",
        "entry": [header, request, patient, practice],
    }


def bars_target() -> str:
    """The NHSD-Target-Identifier naming this receiver (``SPA_BARS_TARGET_IDENTIFIER``)."""
    value = os.environ.get("SPA_BARS_TARGET_IDENTIFIER", "spa-platform")
    return base64.b64encode(json.dumps({"value": value}).encode()).decode()


def curl(name: str) -> str:
    """A ready-to-paste shell snippet: a token for the channel's demo client, then the post."""
    client = next(client for client in DEMO_CLIENTS if name in client.examples)
    uuid_now = "$(python3 -c 'import uuid; print(uuid.uuid4())')"
    lines = [
        f"# {name}: {client.purpose}",
        f"TOKEN=$({LAUNCHER} --token {client.client_id})",
        f"{LAUNCHER} --example {name} | curl -s -X POST \\",
    ]
    if name.startswith("bars"):
        lines += [
            f"  '{URLS['spa']}/FHIR/R4/$process-message' -H \"Authorization: Bearer $TOKEN\" \\",
            f'  -H "X-Request-Id: {uuid_now}" -H "X-Correlation-Id: {uuid_now}" \\',
            f"  -H 'NHSD-Target-Identifier: {bars_target()}' -H 'Prefer: wait=5' \\",
            "  -H 'Content-Type: application/fhir+json' -H 'Accept: application/fhir+json' \\",
        ]
    else:
        lines += [
            f'  {URLS["spa"]}/v1/referrals -H "Authorization: Bearer $TOKEN" \\',
            f"  -H \"Idempotency-Key: {uuid_now}\" -H 'Prefer: wait=5' \\",
            "  -H 'Content-Type: application/json' \\",
        ]
    lines.append("  -d @- | python3 -m json.tool")
    return "\n".join(lines)


def clients_table(found: dict[str, str], var: Path) -> str:
    rows = [f"Demo clients (secrets kept in {var / CLIENTS_FILE}, readable only by you):"]
    for client in DEMO_CLIENTS:
        bound = [*client.channels, *(f"locality {code}" for code in client.localities)]
        if client.teams:
            bound.append("the CRU" if client.teams == CRU else "every other team")
        rows += [
            f"  {client.client_id:<24} {found[client.client_id]}",
            f"  {'':<24} {client.purpose}; {' '.join(client.scopes)}"
            + (f"; bound to {', '.join(bound)}" if bound else ""),
        ]
    return "\n".join(rows)


def instructions(found: dict[str, str], created: bool, directory: str) -> str:
    lines = [f"  {name:<8} {url}" for name, url in URLS.items()]
    clients = (
        clients_table(found, VAR) + "\n(shown this once; again with `make demo-clients`)"
        if created
        else f"Demo clients: {len(DEMO_CLIENTS)}, their secrets in {VAR / CLIENTS_FILE}; "
        "`make demo-clients` shows them."
    )
    return "\n".join(
        [
            "",
            "The SPA platform is running (Ctrl-C stops it):",
            *lines,
            "",
            directory,
            clients,
            "",
            "Post a referral as the demo GP system; the answer waits (up to 5 s) for its routing:",
            "",
            curl("gp"),
            "",
            "A curl for every channel (111 and 999 over BaRS too): `make demo-curls`.",
            f"Open Referral UK feed of the directory, open to anyone: {URLS['teams']}/openreferral/",
            "",
        ]
    )


# --- Helpers for a shell -----------------------------------------------------------------------


def token(client_id: str) -> str:
    path = VAR / CLIENTS_FILE
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if client_id not in found:
        raise SystemExit(f"no client {client_id} in {path}; `make run` registers them")
    credentials = base64.b64encode(f"{client_id}:{found[client_id]}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (our own spa, over the configured URL)
        f"{URLS['spa']}/oauth/token",
        data=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
    except OSError as failure:
        raise SystemExit(
            f"no token from {URLS['spa']} ({failure}); is `make run` running?"
        ) from None
    return str(answer["access_token"])


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deploy/local.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--directory",
        type=Path,
        default=Path(os.environ.get("DIRECTORY") or DEMO_DIRECTORY),
        help="the directory file (DIRECTORY=...; the demo county by default)",
    )
    parser.add_argument(
        "--reload-directory",
        action="store_true",
        default=os.environ.get("RELOAD_DIRECTORY", "") not in ("", "0"),
        help="load the file even if the directory was changed since (RELOAD_DIRECTORY=1)",
    )
    helpers = parser.add_mutually_exclusive_group()
    helpers.add_argument("--show-clients", action="store_true")
    helpers.add_argument("--token", metavar="CLIENT")
    names = sorted({name for client in DEMO_CLIENTS for name in client.examples})
    helpers.add_argument("--example", choices=names)
    helpers.add_argument("--curl", nargs="?", const="all", choices=[*names, "all"])
    return parser.parse_args(argv)


def _helper(args: argparse.Namespace) -> str | None:
    if args.show_clients:
        return clients_table(client_secrets(VAR)[0], VAR)
    if args.token:
        return token(args.token)
    if args.example:
        return json.dumps(example(args.example))
    if args.curl:
        names = [name for client in DEMO_CLIENTS for name in client.examples]
        return "\n\n".join(curl(name) for name in (names if args.curl == "all" else [args.curl]))
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    answer = _helper(args)
    if answer is not None:
        print(answer)
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    env = service_environment()
    try:
        created, directory = prepare(env, args.directory, args.reload_directory)
    except subprocess.CalledProcessError as failure:
        print(failure.stderr or failure.stdout, file=sys.stderr)
        return 1
    except Problem as problem:
        print(json.dumps(problem.body(), indent=2), file=sys.stderr)
        return 1
    processes = start(env)
    try:
        wait_ready(processes)
        print(instructions(client_secrets(VAR)[0], created, directory), flush=True)
        print("\n".join([*console_instructions(env), ""]), flush=True)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
