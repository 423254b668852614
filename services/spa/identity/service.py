"""Registering clients and issuing tokens."""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import SCOPES
from services.shared.vocabulary import Channel
from services.spa.identity.keys import SigningKeys
from services.spa.identity.models import Client

_hasher = PasswordHasher()


@functools.cache
def _unknown_client_hash() -> str:
    """Verified against when the client id is unknown, so that the answer takes as long either
    way. Made on first use, in a worker thread: a hash costs a tenth of a second of CPU."""
    return _hasher.hash(secrets.token_urlsafe(32))


def _secret_matches(stored: str | None, secret: str) -> bool:
    """The argon2 check; CPU-bound for its whole duration, so it runs in a worker thread."""
    try:
        return _hasher.verify(stored if stored is not None else _unknown_client_hash(), secret)
    except (VerificationError, InvalidHashError):
        return False


class ClientExists(Exception):
    """A client with this id is already registered."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


async def register_client(
    session: AsyncSession,
    *,
    client_id: str,
    name: str,
    secret: str,
    scopes: list[str],
    audiences: list[str],
    channels: list[str] | None = None,
    teams: list[str] | None = None,
    localities: list[str] | None = None,
    replace: bool = False,
    hasher: PasswordHasher = _hasher,
) -> Client:
    unknown = set(scopes) - SCOPES.keys()
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    channel_list = [Channel(channel).value for channel in channels or []]
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    if client is not None and not replace:
        raise ClientExists(client_id)
    if client is None:
        client = Client(client_id=client_id)
        session.add(client)
    client.name = name
    client.secret_hash = await asyncio.to_thread(hasher.hash, secret)
    client.scopes = sorted(set(scopes))
    client.audiences = sorted(set(audiences))
    client.channels = channel_list
    client.teams = sorted(set(teams or []))
    client.localities = sorted(set(localities or []))
    client.revoked_at = None
    await session.flush()
    return client


async def rotate_secret(session: AsyncSession, client_id: str, secret: str) -> bool:
    """A new secret for an active client; the old one stops at once (tokens already issued
    run out within their short lifetime). False if there is no such active client."""
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None or client.revoked_at is not None:
        return False
    client.secret_hash = await asyncio.to_thread(_hasher.hash, secret)
    return True


async def revoke_client(session: AsyncSession, client_id: str, now: datetime) -> bool:
    """Stop a client: no token is issued to it again. False if there is no such active client."""
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None or client.revoked_at is not None:
        return False
    client.revoked_at = now
    return True


async def authenticate_client(session: AsyncSession, client_id: str, secret: str) -> Client | None:
    """The active client whose secret this is, or None. Hash checks run off the event loop."""
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    stored = client.secret_hash if client is not None else None
    if not await asyncio.to_thread(_secret_matches, stored, secret):
        return None
    if client is None or client.revoked_at is not None:
        return None
    return client


def issue_token(
    keys: SigningKeys,
    client: Client,
    *,
    issuer: str,
    lifetime_seconds: int,
    scopes: list[str],
    now: datetime,
) -> IssuedToken:
    issued_at = int(now.timestamp())
    claims = {
        "iss": issuer,
        "sub": client.client_id,
        "aud": client.audiences,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime_seconds,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scopes),
        "client_id": client.client_id,
    }
    if client.channels:
        claims["channels"] = client.channels
    if client.teams:
        claims["teams"] = client.teams
    if client.localities:
        claims["localities"] = client.localities
    return IssuedToken(keys.sign(claims), lifetime_seconds, " ".join(scopes))
