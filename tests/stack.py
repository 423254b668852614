"""The three services wired together in-process over ASGI, as they are over HTTP in production."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy import func, select

from services.routing.main import create_app as create_routing
from services.routing.settings import RoutingSettings
from services.shared.auth import SCOPES
from services.shared.db import create_engine, create_sessionmaker
from services.shared.vocabulary import Channel
from services.spa.identity import service as identity
from services.spa.main import create_app as create_spa
from services.spa.settings import SpaSettings
from services.teams.directory.loading import (
    DEMO_DIRECTORY,
    load_directory,
    read_directory_file,
)
from services.teams.directory.resolver import Availability
from services.teams.main import create_app as create_teams
from services.teams.settings import TeamsSettings
from tests.databases import empty_tables

SPA, ROUTING, TEAMS = "http://spa.test", "http://routing.test", "http://teams.test"
# The console's demo staff sign in with this (services/spa/console/demo.py).
DEMO_PASSWORD = "demo-staff-password-for-tests"
ALL_AUDIENCES = ["spa", "routing", "teams"]


class SettableClock:
    """The services' clock in the tests: it starts at a time the test chooses and runs at the
    machine's rate from there (so backoffs elapse and leases lapse as they do in production);
    a test moves it on with ``clock.now += timedelta(...)``. The machine's date never shows."""

    def __init__(self, now: datetime) -> None:
        self._set(now)

    def _set(self, now: datetime) -> None:
        self._start = now
        self._origin = time.monotonic()

    @property
    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)

    @now.setter
    def now(self, value: datetime) -> None:
        self._set(value)

    def __call__(self) -> datetime:
        return self.now


# Tuesday 24 November 2026, 10:00 in the UK (GMT): inside every demo team's hours.
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
WEEKDAY_MORNING = Availability(at=MORNING, capacity_max_age=timedelta(hours=4))


# Verification costs what the stored hash says; test clients need no protection from guessing,
# so their hashes are cheap and each token costs milliseconds rather than a tenth of a second.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass(frozen=True)
class ClientSpec:
    client_id: str
    scopes: list[str]
    audiences: list[str]
    channels: list[str] = field(default_factory=list)
    secret: str = "test-secret-0123456789"
    teams: list[str] = field(default_factory=list)
    localities: list[str] = field(default_factory=list)


DEMO_TEAMS = [
    "lit-north", "plmdt-north-1", "plmdt-north-2", "int-east-1", "int-east-2", "lit-south", "plmdt-south-1",
    "plmdt-south-2", "plmdt-south-3", "equipment-county", "cru-county", "contact-county", "ooh-county",
]  # fmt: skip

CLIENTS = [
    ClientSpec(
        "spa-service",
        ["decisions:create", "assignments:create", "directory:read"],
        ["routing", "teams"],
        secret="spa-service-secret-0123",
    ),
    ClientSpec(
        "routing-service", ["directory:read"], ["teams"], secret="routing-service-secret-01"
    ),
    ClientSpec("gp-system", ["referrals:create", "referrals:read"], ["spa"], ["gp"]),
    ClientSpec("other-gp-system", ["referrals:create", "referrals:read"], ["spa"], ["gp"]),
    ClientSpec("ambulance-cad", ["referrals:create", "referrals:read"], ["spa"], ["ambulance"]),
    ClientSpec(
        "county-contact",
        ["referrals:create", "referrals:read"],
        ["spa"],
        ["county_contact", "self", "carer"],
    ),
    ClientSpec("teams-service", ["assignments:report"], ["spa"], secret="teams-service-secret-012"),
    ClientSpec(
        "team-app",
        ["caseload:manage", "directory:read", "decisions:read", "referrals:read"],
        ["teams", "routing", "spa"],
        teams=DEMO_TEAMS,
    ),
    ClientSpec(
        "lit-north-app",
        ["caseload:manage", "directory:read", "referrals:read"],
        ["teams", "spa"],
        teams=["lit-north"],
    ),
    ClientSpec("nhs111-system", ["referrals:create", "referrals:read"], ["spa"], ["nhs111"]),
    ClientSpec(
        "locality-partners",
        ["referrals:create", "referrals:read"],
        ["spa"],
        ["hospital_discharge", "care_home", "community_team", "social_care", "lspa"],
    ),
    ClientSpec(
        "north-call-handlers",
        ["queue:work", "referrals:read"],
        ["spa"],
        localities=["north"],
    ),
    ClientSpec(
        "south-call-handlers", ["queue:work", "referrals:read"], ["spa"], localities=["south"]
    ),
    ClientSpec("county-call-handlers", ["queue:work", "referrals:read"], ["spa"], localities=["*"]),
    ClientSpec("county-reports", ["reports:read"], ["spa"]),
    ClientSpec(
        "other-engine",
        ["referrals:create", "referrals:read", "subscriptions:manage"],
        ["spa"],
        ["gp"],
    ),
    ClientSpec(
        "gp-engine",
        ["referrals:create", "referrals:read", "subscriptions:manage"],
        ["spa"],
        ["gp"],
    ),
    ClientSpec(
        "county-engine",
        ["referrals:create", "referrals:read", "subscriptions:manage"],
        ["spa"],
        ["county_contact", "self", "carer"],
    ),
    ClientSpec("clinical-lead", ["rules:admin"], ["routing"]),
    ClientSpec("ig-auditor", ["audit:read"], ALL_AUDIENCES),
    ClientSpec("prometheus", ["metrics:read"], ALL_AUDIENCES),
    # Holds every scope, on every channel, team and locality: the fuzzer reaches every handler.
    ClientSpec(
        "fuzzer",
        sorted(SCOPES),
        ALL_AUDIENCES,
        sorted(channel.value for channel in Channel),
        teams=DEMO_TEAMS,
        localities=["*"],
    ),
    ClientSpec("no-scopes", [], ALL_AUDIENCES),
]


async def register_clients(spa_url: str, specs: Sequence[ClientSpec] = CLIENTS) -> None:
    engine = create_engine(spa_url, clock=SettableClock(MORNING))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for spec in specs:
                await identity.register_client(
                    session,
                    client_id=spec.client_id,
                    name=spec.client_id,
                    secret=spec.secret,
                    scopes=spec.scopes,
                    audiences=spec.audiences,
                    channels=spec.channels,
                    teams=spec.teams,
                    localities=spec.localities,
                    replace=True,
                    hasher=CHEAP_HASHER,
                )
    finally:
        await engine.dispose()


async def load_demo_directory(teams_url: str) -> None:
    engine = create_engine(teams_url, clock=SettableClock(MORNING))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            directory = read_directory_file(DEMO_DIRECTORY)
            await load_directory(session, directory, actor="tests", now=MORNING)
    finally:
        await engine.dispose()


def stack_settings(
    urls: Mapping[str, str], key_file: Path
) -> tuple[SpaSettings, RoutingSettings, TeamsSettings]:
    spa_spec, routing_spec = CLIENTS[0], CLIENTS[1]
    common: dict[str, Any] = {"log_level": "INFO", "auth_jwks_url": f"{SPA}/.well-known/jwks.json"}
    spa = SpaSettings(
        database_url=urls["spa"],
        issuer_key_files=(key_file,),
        routing_url=ROUTING,
        teams_url=TEAMS,
        service_client_id=spa_spec.client_id,
        service_client_secret=spa_spec.secret,
        token_url=f"{SPA}/oauth/token",
        outbox_poll_interval_seconds=0.05,
        timer_poll_interval_seconds=0.5,
        webhook_poll_interval_seconds=0.2,
        webhook_timeout_seconds=1.0,
        webhook_allow_http_hosts=("127.0.0.1",),
        webhook_allowed_networks=("127.0.0.0/8",),
        log_level="INFO",
        console_demo_password=DEMO_PASSWORD,
    )
    routing = RoutingSettings(
        database_url=urls["routing"],
        teams_url=TEAMS,
        service_client_id=routing_spec.client_id,
        service_client_secret=routing_spec.secret,
        token_url=f"{SPA}/oauth/token",
        **common,
    )
    teams_spec = next(spec for spec in CLIENTS if spec.client_id == "teams-service")
    teams = TeamsSettings(
        database_url=urls["teams"],
        spa_url=SPA,
        service_client_id=teams_spec.client_id,
        service_client_secret=teams_spec.secret,
        token_url=f"{SPA}/oauth/token",
        outbox_poll_interval_seconds=0.05,
        **common,
    )
    return spa, routing, teams


class Switchable(httpx.AsyncBaseTransport):
    """An in-process service that a test can take down and bring back, or whose next answers
    it can lose on the way back (the service acted; its caller timed out)."""

    def __init__(self, app: FastAPI) -> None:
        self._transport = httpx.ASGITransport(app=app)
        self.down = False
        self.answers_to_lose = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        response = await self._transport.handle_async_request(request)
        if self.answers_to_lose:
            self.answers_to_lose -= 1
            await response.aclose()
            raise httpx.ReadTimeout("the answer did not arrive in time", request=request)
        return response


class Stack:
    """Three running apps and a way to call them as a given client."""

    def __init__(
        self,
        apps: dict[str, FastAPI],
        transports: dict[str, Switchable],
        clock: SettableClock,
        mounts: dict[str, httpx.AsyncBaseTransport],
    ) -> None:
        self.apps = apps
        self.mounts = mounts
        self.transports = transports
        self.clock = clock
        # Each token with the time (on the stack's clock) after which it is fetched anew.
        self._tokens: dict[tuple[str, str | None], tuple[str, datetime]] = {}

    def raw(self, service: str) -> httpx.AsyncClient:
        base = {"spa": SPA, "routing": ROUTING, "teams": TEAMS}[service]
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.apps[service]), base_url=base
        )

    async def token(self, client_id: str, scope: str | None = None) -> str:
        key = (client_id, scope)
        if key not in self._tokens or self._tokens[key][1] <= self.clock():
            spec = next(spec for spec in CLIENTS if spec.client_id == client_id)
            data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
            async with self.raw("spa") as spa:
                response = await spa.post(
                    "/oauth/token", data=data, auth=(spec.client_id, spec.secret)
                )
            assert response.status_code == 200, response.text
            body = response.json()
            renew_at = self.clock() + timedelta(seconds=body["expires_in"] - 30)
            self._tokens[key] = (body["access_token"], renew_at)
        return self._tokens[key][0]

    @asynccontextmanager
    async def client(
        self, service: str, client_id: str, *, idempotency_keys: bool = True
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client of ``service`` authenticated as ``client_id``. Like a referrer's system, it
        gives each new referral its own Idempotency-Key unless the test sets one."""
        async with self.raw(service) as http:
            # A token for each request, renewed as the stack's clock moves past its expiry.
            http.auth = _StackToken(self, client_id)
            if idempotency_keys:
                http.event_hooks["request"].append(_add_idempotency_key)
            yield http

    async def count_rows(self, service: str, model: Any) -> int:
        """How many rows of ``model`` the service's database holds, read on its own connection."""
        engine = self.apps[service].state.engine
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(model)) or 0)

    @property
    def worker(self) -> Any:
        return self.apps["spa"].state.worker

    async def wait_for(
        self, condition: Callable[[], Any], within: float = 5.0, interval: float = 0.02
    ) -> Any:
        """Poll ``condition`` (an async callable) until it returns something truthy."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            result = await condition()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(interval)


class _StackToken(httpx.Auth):
    def __init__(self, stack: Stack, client_id: str) -> None:
        self._stack = stack
        self._client_id = client_id

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._stack.token(self._client_id)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


async def post_referral(stack: Stack, client_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Post a referral as ``client_id``, waiting for its routing; the referral as answered."""
    async with stack.client("spa", client_id) as spa:
        response = await spa.post("/v1/referrals", json=body, headers={"Prefer": "wait=10"})
    assert response.status_code == 201, response.text
    referral: dict[str, Any] = response.json()
    return referral


async def _add_idempotency_key(request: httpx.Request) -> None:
    if request.method == "POST" and request.url.path == "/v1/referrals":
        request.headers.setdefault("Idempotency-Key", str(uuid.uuid4()))


@asynccontextmanager
async def running_stack(
    urls: Mapping[str, str],
    key_file: Path,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    span_exporters: Mapping[str, SpanExporter] | None = None,
    outside: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[Stack]:
    """The stack, its settings changed by ``overrides`` (per service, a setting's new value);
    where tracing is on, a service's spans go to its exporter in ``span_exporters``; the
    services reach ``outside`` systems (an identity provider, by its base URL) as mounted."""
    for service, url in urls.items():
        await empty_tables(url, service)
    await load_demo_directory(urls["teams"])
    spa_settings, routing_settings, teams_settings = stack_settings(urls, key_file)
    changes = overrides or {}
    spa_settings = spa_settings.model_copy(update=changes.get("spa"))
    routing_settings = routing_settings.model_copy(update=changes.get("routing"))
    teams_settings = teams_settings.model_copy(update=changes.get("teams"))
    mounts: dict[str, httpx.AsyncBaseTransport] = dict(outside or {})
    clock = SettableClock(MORNING)
    exporters = span_exporters or {}
    apps = {
        "spa": create_spa(
            spa_settings, mounts=mounts, clock=clock, span_exporter=exporters.get("spa")
        ),
        "routing": create_routing(
            routing_settings, mounts=mounts, clock=clock, span_exporter=exporters.get("routing")
        ),
        "teams": create_teams(
            teams_settings, mounts=mounts, clock=clock, span_exporter=exporters.get("teams")
        ),
    }
    transports = {name: Switchable(app) for name, app in apps.items()}
    mounts.update(
        {SPA: transports["spa"], ROUTING: transports["routing"], TEAMS: transports["teams"]}
    )
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(LifespanManager(app))
        yield Stack(apps, transports, clock, mounts)
        # Stop every worker before any app shuts down: in-process, a worker of one app still
        # calling another that has already closed its database would reopen it.
        workers = [
            getattr(app.state, name)
            for app in apps.values()
            for name in ("worker", "timers", "webhook_dispatcher", "webhook_deliverer_worker")
            if hasattr(app.state, name)
        ]
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(
            asyncio.gather(*(worker.stopped() for worker in workers)), timeout=15
        )
