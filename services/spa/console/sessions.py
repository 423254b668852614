"""Console sessions: an opaque random cookie naming a row in spa's database.

The cookie is ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` (under the ``__Host-`` name)
unless the console is served over plain HTTP on the loopback interface, as `make run` does. A
session ends after a spell without requests or at its longest, whichever comes first, by the
service's clock; signing in starts a new session, so an identifier planted before sign-in opens
nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.spa.console.models import ConsoleSession
from services.spa.console.people import Person
from services.spa.settings import SpaSettings, loopback_http

# last_seen_at is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
# A session that has not signed in yet (a sign-in form, an identity provider's round trip).
SIGN_IN_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True)
class CookiePolicy:
    name: str
    secure: bool

    @classmethod
    def of(cls, settings: SpaSettings) -> CookiePolicy:
        if loopback_http(settings.public_base_url):
            return cls("spa_console", secure=False)
        return cls("__Host-spa_console", secure=True)

    def set_on(self, response: Any, token: str) -> None:
        response.set_cookie(
            self.name, token, httponly=True, secure=self.secure, samesite="lax", path="/"
        )

    def clear_on(self, response: Any) -> None:
        response.delete_cookie(
            self.name, httponly=True, secure=self.secure, samesite="lax", path="/"
        )


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Opened:
    """A session and the cookie value that names it (only when newly made)."""

    row: ConsoleSession
    token: str | None = None


async def find(
    db: AsyncSession, token: str | None, now: datetime, settings: SpaSettings
) -> ConsoleSession | None:
    """The live session the cookie names, its idle time restarted; None if there is none."""
    if not token or len(token) > 128:
        return None
    row = await db.get(ConsoleSession, _key(token))
    if row is None:
        return None
    if row.expires_at <= now or now - row.last_seen_at > _idle(row, settings):
        await db.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def _idle(row: ConsoleSession, settings: SpaSettings) -> timedelta:
    if row.person is None:
        return SIGN_IN_LIFETIME
    return timedelta(minutes=settings.console_session_idle_minutes)


def start(
    db: AsyncSession,
    now: datetime,
    settings: SpaSettings,
    *,
    person: Person | None = None,
    sign_in: dict[str, Any] | None = None,
) -> Opened:
    """A new session (with a CSRF token of its own), for a person or for a sign-in."""
    token = secrets.token_urlsafe(32)
    lifetime = (
        timedelta(hours=settings.console_session_longest_hours)
        if person is not None
        else SIGN_IN_LIFETIME
    )
    row = ConsoleSession(
        id=_key(token),
        person=person.as_json() if person else None,
        csrf_token=secrets.token_urlsafe(32),
        sign_in=sign_in,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    db.add(row)
    return Opened(row, token)


async def end(db: AsyncSession, row: ConsoleSession) -> None:
    await db.delete(row)
