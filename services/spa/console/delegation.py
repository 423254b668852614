"""Calls to teams and routing on a person's behalf.

teams and routing trust no caller for where it sits: each checks a bearer token against the
issuer's keys. For a person in the console, spa's issuer mints a token that names them (``sub``
``person:<id>``), carries only their roles' scopes and their bindings (teams, localities), says
the console acts for them (``act``, RFC 8693), and lasts a minute. So a team member's acceptance
is checked by teams against the teams they are bound to, and teams' audit names the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

import httpx
import structlog
from fastapi import Request

from services.shared.problems import TYPE_PREFIX, Problem, UpstreamUnavailable
from services.shared.state import state_of
from services.spa.console.people import Person
from services.spa.state import SpaState

log = structlog.get_logger(__name__)

TOKEN_SECONDS = 60
CONSOLE_ACTOR = "spa-console"


class Refused(Problem):
    """A service refused what the person asked: its own words, shown on the page."""

    type = TYPE_PREFIX + "refused-by-service"
    title = "This could not be done"
    status = 409

    def __init__(self, status: int, title: str, detail: str | None) -> None:
        super().__init__(detail or title)
        self.status = status  # type: ignore[misc]
        self.title = title  # type: ignore[misc]


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def person_token(request: Request, person: Person, audience: str) -> str:
    state = state_of(request.app, SpaState)
    if not state.settings.issuer_enabled:
        raise UpstreamUnavailable(
            "The console acts for people through spa's token issuer, which is not enabled here."
        )
    issued = int(state.clock().timestamp())
    claims: dict[str, Any] = {
        "iss": state.settings.auth_issuer,
        "sub": person.principal_id,
        "client_id": person.principal_id,
        "aud": [audience],
        "iat": issued,
        "nbf": issued,
        "exp": issued + TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(sorted(person.scopes)),
        "teams": sorted(person.teams),
        "localities": sorted(person.localities),
        "act": {"sub": CONSOLE_ACTOR},
    }
    return state.signing_keys.sign(claims)


async def call(
    request: Request,
    person: Person,
    service: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """Ask teams or routing for something as the person; its JSON answer, or its refusal as
    a problem the console shows."""
    state = state_of(request.app, SpaState)
    base = {"teams": state.settings.teams_url, "routing": state.settings.routing_url}[service]
    try:
        answer = await state.http.request(
            method,
            base.rstrip("/") + path,
            json=json,
            params=params,
            auth=_Bearer(person_token(request, person, service)),
        )
    except httpx.HTTPError as error:
        log.warning("console_call_failed", service=service, error_type=type(error).__name__)
        raise UpstreamUnavailable(f"The {service} service could not be reached.") from error
    if answer.status_code >= 500:
        raise UpstreamUnavailable(f"The {service} service could not answer just now.")
    if answer.status_code >= 400:
        try:
            problem = answer.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        raise Refused(
            answer.status_code,
            str(problem.get("title") or "This could not be done"),
            str(problem["detail"]) if problem.get("detail") else None,
        )
    return answer.json() if answer.content else None
