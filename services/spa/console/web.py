"""What every console page shares: templates, the signed-in person, role checks, CSRF, and the
edge that turns every error under /console into a page in the console's design.

A page handler takes ``Visit`` (the request, its database session, the time by the service's
clock, and the console session), or ``SignedIn`` / ``requires_role(...)`` where a person must
be signed in; a form handler also takes ``CheckedForm``, which refuses a submission without the
session's CSRF token. Errors are raised as the API's problems and rolled back as there; the edge
renders them for people.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.problems import PROBLEM_CONTENT_TYPE, TYPE_PREFIX, Problem, problem_response
from services.shared.state import state_of
from services.spa.console import sessions
from services.spa.console.models import ConsoleSession
from services.spa.console.people import ROLE_NAMES, Person, Role
from services.spa.settings import SpaSettings
from services.spa.state import SpaState

PREFIX = "/console"
HERE = Path(__file__).parent
STATIC = HERE / "static"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Pages load only what spa serves: no CDN, no inline script or style. (The NHS.UK frontend's
# stylesheet names its web fonts on assets.nhs.uk; they are refused here, and Arial is used.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["label"] = _label
    environment.filters["when"] = _when
    environment.filters["waited"] = _waited
    environment.globals["role_names"] = ROLE_NAMES
    environment.globals["navigation"] = navigation
    return environment


@dataclass(frozen=True)
class Area:
    role: Role
    href: str
    label: str
    description: str


AREAS = (
    Area(Role.CALL_HANDLER, "/console/queue", "Queue", "Cases waiting for a contact assessment."),
    Area(Role.TEAM_MEMBER, "/console/teams", "Caseload", "Your teams' cases, capacity and MDT worklist."),
    Area(Role.CRU, "/console/cru", "Safeguarding", "Concerns escalated to the Central Referral Unit."),
    Area(Role.COORDINATOR, "/console/escalations", "Escalations", "Breached and at-risk response clocks."),
    Area(Role.COMMISSIONER, "/console/commissioner", "Dashboard", "Response standards by week and locality."),
    Area(Role.ADMIN, "/console/admin", "Administration", "Clients, webhooks, rule sets and the directory."),
)  # fmt: skip


def navigation(person: Person) -> list[Area]:
    return [area for area in AREAS if person.has(area.role)]


def _label(value: object) -> str:
    """A vocabulary value for people: ``rapid_response`` reads "Rapid response"."""
    text = str(value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y %H:%M") if value else ""


def _waited(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


templates = Jinja2Templates(env=_environment())


class SignInNeeded(Exception):
    """No live session: a page sends the browser to sign in, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class NotPermitted(Problem):
    type = TYPE_PREFIX + "not-permitted"
    title = "You do not have access to this page"
    status = 403


class SignedOut(Problem):
    type = TYPE_PREFIX + "signed-out"
    title = "You are not signed in"
    status = 401

    def __init__(self) -> None:
        super().__init__("Your session ended. Sign in again, then repeat what you were doing.")


class FormRefused(Problem):
    type = TYPE_PREFIX + "form-refused"
    title = "This form was not accepted"
    status = 403


@dataclass
class Visit:
    """One request to the console."""

    request: Request
    db: SessionDep
    now: NowDep
    session: ConsoleSession | None = field(init=False, default=None)

    @property
    def settings(self) -> SpaSettings:
        return state_of(self.request.app, SpaState).settings

    @property
    def person(self) -> Person | None:
        return (
            Person.from_json(self.session.person) if self.session and self.session.person else None
        )

    def signed_in(self) -> Person:
        person = self.person
        if person is None:
            raise SignInNeeded(self.request.url.path)
        return person


async def _visit(request: Request, db: SessionDep, now: NowDep) -> Visit:
    visit = Visit(request, db, now)
    settings = visit.settings
    token = request.cookies.get(sessions.CookiePolicy.of(settings).name)
    visit.session = await sessions.find(db, token, now, settings)
    return visit


VisitDep = Annotated[Visit, Depends(_visit)]


async def _signed_in(visit: VisitDep) -> Visit:
    visit.signed_in()
    return visit


SignedIn = Annotated[Visit, Depends(_signed_in)]


def requires_role(*roles: Role) -> Callable[[Visit], Coroutine[Any, Any, Visit]]:
    """A dependency: the visit of a signed-in person holding one of ``roles``."""

    async def check(visit: SignedIn) -> Visit:
        person = visit.signed_in()
        if not any(person.has(role) for role in roles):
            raise NotPermitted(
                "This page is for " + " or ".join(ROLE_NAMES[role].lower() for role in roles) + "."
            )
        return visit

    return check


async def _checked_form(request: Request, visit: VisitDep) -> FormData:
    """The submitted form, if it carries this session's CSRF token (a form field, or the
    header htmx sends) and comes from this console's own pages."""
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = visit.session.csrf_token if visit.session else None
    origin = request.headers.get("origin")
    own = {_origin(visit.settings.public_base_url), _origin(str(request.base_url))}
    if origin and origin not in own:
        raise FormRefused("The form was sent from another site.")
    # Compared as bytes: a token of any characters is refused, never an error.
    if (
        not expected
        or not isinstance(sent, str)
        or not secrets.compare_digest(sent.encode(), expected.encode())
    ):
        raise FormRefused(
            "The form had expired or did not come from this console. Go back, reload the page "
            "and try again."
        )
    return form


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


CheckedForm = Annotated[FormData, Depends(_checked_form)]


def render(visit: Visit, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    person = visit.person
    csrf = visit.session.csrf_token if visit.session else ""
    return templates.TemplateResponse(
        visit.request,
        template,
        {
            "person": person,
            "csrf_token": csrf,
            "csrf_field": Markup('<input type="hidden" name="{}" value="{}">').format(
                CSRF_FIELD, csrf
            ),
            "htmx_headers": json.dumps({"X-CSRF-Token": csrf}),
            "now": visit.now,
            "Role": Role,
            "path": visit.request.url.path,
            **context,
        },
        status_code=status,
    )


def see_other(path: str) -> RedirectResponse:
    """After a form: the browser goes to the page that shows the result (POST, redirect, GET)."""
    return RedirectResponse(path, status_code=303)


def safe_back_to(path: str | None) -> str:
    """Where to go after signing in: a console page of this site, never elsewhere."""
    if not path or not path.startswith(PREFIX + "/") or path.startswith("//") or "\\" in path:
        return PREFIX
    return path


def sign_in_url(back_to: str) -> str:
    return f"{PREFIX}/sign-in?next={quote(safe_back_to(back_to), safe='/')}"


def _page_of(request: Request) -> str:
    """The page an htmx request came from (its HX-Current-URL), where it is the console's."""
    current = urlsplit(request.headers.get("hx-current-url", ""))
    return current.path if under_prefix(current.path) else PREFIX


def under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleEdge:
    """Under /console: the console's own Content-Security-Policy on every answer, and every
    problem document, whoever raised it (a page, strict input, the rate limit, routing), turned
    into a page with the same status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.environment = templates.env

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not under_prefix(scope["path"]):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def rendering(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["content-security-policy"] = CONTENT_SECURITY_POLICY
                # Under the API's no-referrer a browser sends its forms with "Origin: null",
                # which the form check must refuse; same-origin still sends no referrer away.
                headers["referrer-policy"] = "same-origin"
                if headers.get("content-type", "").startswith(PROBLEM_CONTENT_TYPE):
                    held = message
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = self._page(b"".join(chunks), held["status"], scope)
            headers = MutableHeaders(scope=held)
            headers["content-type"] = "text/html; charset=utf-8"
            headers["content-length"] = str(len(body))
            await send(held)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rendering)

    def _page(self, body: bytes, status: int, scope: Scope) -> bytes:
        try:
            problem = json.loads(body)
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        path: str = scope["path"]
        back = path if scope.get("method") == "GET" else path.rsplit("/", 1)[0]
        html = self.environment.get_template("error.html").render(
            status=status,
            title=str(problem.get("title") or "Something went wrong"),
            detail=str(problem.get("detail") or ""),
            errors=problem.get("errors") if isinstance(problem.get("errors"), list) else [],
            back=back if back != path and under_prefix(back) else PREFIX,
            sign_in=status == 401,
        )
        return html.encode()


def install(app: Any) -> None:
    """The console's exception handler and edge on spa's app (the pages are routers)."""

    async def on_sign_in_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        if request.headers.get("hx-request") == "true":
            # htmx refreshing part of a page: the whole page goes to sign in, not the part.
            return Response(headers={"HX-Redirect": sign_in_url(_page_of(request))})
        if request.method != "GET":
            # Nothing was done; the edge renders this as a page with a link to sign in.
            return problem_response(SignedOut(), request.url.path)
        return RedirectResponse(sign_in_url(exc.back_to), status_code=303)

    app.add_exception_handler(SignInNeeded, on_sign_in_needed)
    app.add_middleware(ConsoleEdge)
