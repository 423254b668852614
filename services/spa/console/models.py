"""The console's sessions, kept in spa's database so that every replica knows them and a
session can be ended on the server (signing out, expiry) whatever the browser keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.db import UTCDateTime
from services.spa.base import Base


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    # The SHA-256 of the cookie's random value: the database never holds what the browser
    # presents, so a copy of the table opens no session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Set once the person has signed in; until then the session carries only the sign-in's
    # own state (the CSRF token of the sign-in form, or the OpenID Connect request's).
    person: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    csrf_token: Mapped[str] = mapped_column(String(64))
    # The OpenID Connect request in flight: state, nonce, PKCE verifier, where to go after.
    sign_in: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
