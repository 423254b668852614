"""Signing in and out of the console: the organisation's identity provider (OpenID Connect), or
the demo staff of `make run` where the settings allow it."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.shared.state import state_of
from services.shared.strict_input import OWN_QUERY_CHECK
from services.spa.audit import record_access
from services.spa.console import oidc, sessions
from services.spa.console.demo import DEMO_STAFF
from services.spa.console.people import Person
from services.spa.console.web import (
    PREFIX,
    CheckedForm,
    SignedIn,
    Visit,
    VisitDep,
    render,
    safe_back_to,
)
from services.spa.state import SpaState

router = APIRouter(prefix=PREFIX, include_in_schema=False)
NextQuery = Annotated[str | None, Query(alias="next", max_length=500)]


def _demo_enabled(visit: Visit) -> bool:
    return visit.settings.console_demo_password is not None


def _provider(request: Request) -> oidc.IdentityProvider | None:
    state = state_of(request.app, SpaState)
    if not oidc.configured(state.settings):
        return None
    if getattr(state, "console_identity_provider", None) is None:
        state.console_identity_provider = oidc.IdentityProvider(state.settings, state.http)
    return state.console_identity_provider


def _with_cookie(visit: Visit, response: Response, opened: sessions.Opened) -> Response:
    if opened.token is not None:
        sessions.CookiePolicy.of(visit.settings).set_on(response, opened.token)
    return response


async def _signed_in_as(visit: Visit, person: Person, back_to: str | None) -> Response:
    """A new session for the person (never the one used to sign in), and on to their page."""
    if visit.session is not None:
        await sessions.end(visit.db, visit.session)
    opened = sessions.start(visit.db, visit.now, visit.settings, person=person)
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.sign_in",
        resource_type="console_session",
        resource_id=opened.row.id[:16],
    )
    return _with_cookie(visit, RedirectResponse(safe_back_to(back_to), 303), opened)


def _sign_in_page(
    visit: Visit, back_to: str | None, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    opened: sessions.Opened | None = None
    if visit.session is None:
        opened = sessions.start(visit.db, visit.now, visit.settings)
        visit.session = opened.row
    page = render(
        visit,
        "sign_in.html",
        status=status,
        back_to=safe_back_to(back_to),
        demo=_demo_enabled(visit),
        demo_staff=sorted(DEMO_STAFF.values(), key=lambda person: person.person_id),
        organisation=oidc.configured(visit.settings),
        errors=errors or {},
    )
    return _with_cookie(visit, page, opened) if opened else page


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(visit: VisitDep, back_to: NextQuery = None) -> Response:
    if visit.person is not None:
        return RedirectResponse(safe_back_to(back_to), 303)
    return _sign_in_page(visit, back_to)


@router.post("/sign-in", response_class=HTMLResponse)
async def demo_sign_in(visit: VisitDep, form: CheckedForm) -> Response:
    back_to = str(form.get("next") or "")
    if not _demo_enabled(visit):
        return _sign_in_page(
            visit, back_to, {"username": "The demo sign-in is not enabled here."}, 403
        )
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    person = DEMO_STAFF.get(username)
    expected = visit.settings.console_demo_password
    assert expected is not None
    good = secrets.compare_digest(password.encode(), expected.get_secret_value().encode())
    if person is None or not good:
        errors = {}
        if person is None:
            errors["username"] = "Choose a demo account"
        if not good:
            errors["password"] = "Enter the demo password that make run printed"  # noqa: S105
        return _sign_in_page(visit, back_to, errors, 401)
    return await _signed_in_as(visit, person, back_to)


@router.get("/sign-in/organisation")
async def organisation_sign_in(
    request: Request, visit: VisitDep, back_to: NextQuery = None
) -> Response:
    provider = _provider(request)
    if provider is None:
        return _sign_in_page(
            visit, back_to, {"organisation": "No identity provider is configured here."}, 404
        )
    url, kept = await provider.authorization_request(visit.now)
    kept["back_to"] = safe_back_to(back_to)
    if visit.session is not None:
        await sessions.end(visit.db, visit.session)
    opened = sessions.start(visit.db, visit.now, visit.settings, sign_in=kept)
    return _with_cookie(visit, RedirectResponse(url, 303), opened)


async def _callback_query(request: Request) -> None:
    """The identity provider's answer carries parameters of its own choosing (session_state,
    iss, ...): only code, state and error are read, the rest is left alone."""


setattr(_callback_query, OWN_QUERY_CHECK, True)


@router.get("/sign-in/callback", dependencies=[Depends(_callback_query)])
async def organisation_callback(request: Request, visit: VisitDep) -> Response:
    provider = _provider(request)
    kept = visit.session.sign_in if visit.session is not None else None
    params = request.query_params
    if provider is None or kept is None:
        raise oidc.SignInFailed("This sign-in had expired or was not started here. Sign in again.")
    if params.get("error"):
        raise oidc.SignInFailed("The sign-in service did not sign you in. Sign in again.")
    state = params.get("state") or ""
    code = params.get("code") or ""
    if not code or not secrets.compare_digest(state.encode(), str(kept.get("state", "")).encode()):
        raise oidc.SignInFailed("This sign-in's answer did not match. Sign in again.")
    person = await provider.person_from_code(code, kept, visit.now)
    return await _signed_in_as(visit, person, str(kept.get("back_to") or ""))


@router.post("/sign-out", response_class=HTMLResponse)
async def sign_out(visit: SignedIn, form: CheckedForm) -> Response:
    person = visit.signed_in()
    assert visit.session is not None
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.sign_out",
        resource_type="console_session",
        resource_id=visit.session.id[:16],
    )
    await sessions.end(visit.db, visit.session)
    visit.session = None
    response = render(visit, "signed_out.html")
    sessions.CookiePolicy.of(visit.settings).clear_on(response)
    return response
