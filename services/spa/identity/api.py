"""The built-in issuer: ``POST /oauth/token`` (client credentials) and its JWKS.

These two routes take no bearer token: the token endpoint authenticates the client by its
secret, and the JWKS holds public keys only.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel

from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.problems import problem_responses
from services.shared.state import state_of
from services.shared.strict_input import storable
from services.spa.identity import service
from services.spa.identity.problems import (
    InvalidClient,
    InvalidScope,
    InvalidTokenRequest,
    UnsupportedGrantType,
)
from services.spa.state import SpaState

router = APIRouter(tags=["identity"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6749 token type, not a secret
    expires_in: int
    scope: str


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidTokenRequest(
            "The Basic credentials are not valid base64.", error="invalid_request"
        ) from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise InvalidTokenRequest("The Basic credentials have no secret.", error="invalid_request")
    credentials = unquote(client_id), unquote(secret)
    # Encoded, they pass the check of every header; decoded, they must pass it too.
    if not all(storable(part) for part in credentials):
        raise InvalidTokenRequest(
            "The Basic credentials hold a character no client id or secret has.",
            error="invalid_request",
        )
    return credentials


@router.post(
    "/oauth/token",
    summary="OAuth2 client-credentials token endpoint (client_secret_basic or client_secret_post)",
    responses=problem_responses(InvalidTokenRequest, InvalidClient),
)
async def issue_token(
    request: Request,
    response: Response,
    session: SessionDep,
    now: NowDep,
    grant_type: Annotated[str, Form(max_length=64)],
    scope: Annotated[str | None, Form(max_length=1000)] = None,
    client_id: Annotated[str | None, Form(max_length=128)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
) -> TokenResponse:
    if grant_type != "client_credentials":
        raise UnsupportedGrantType(error="unsupported_grant_type")
    credentials = _basic_credentials(request)
    if credentials is None and client_id and client_secret:
        credentials = (client_id, client_secret)
    if credentials is None:
        raise InvalidClient(
            error="invalid_client", headers={"WWW-Authenticate": 'Basic realm="token"'}
        )
    # Guessing a secret costs a token request, before the (deliberately slow) hash check: a
    # limit per calling address, and a tighter one per claimed client id from that address
    # (so that guesses from elsewhere cannot lock a real client out).
    address = request.client.host if request.client else "unknown"
    limits = state_of(request.app, SpaState).token_limits
    await limits["address"].check("token-address", address)
    await limits["client"].check("token-client", f"{credentials[0][:128]}@{address}")
    # Each argon2 check holds 64 MiB for its duration: a few at a time, however many ask.
    async with state_of(request.app, SpaState).hash_checks:
        client = await service.authenticate_client(session, *credentials)
    if client is None:
        raise InvalidClient(
            error="invalid_client", headers={"WWW-Authenticate": 'Basic realm="token"'}
        )
    requested = scope.split() if scope else list(client.scopes)
    if not set(requested) <= set(client.scopes):
        raise InvalidScope(error="invalid_scope")
    state = state_of(request.app, SpaState)
    settings, keys = state.settings, state.signing_keys
    issued = service.issue_token(
        keys,
        client,
        issuer=settings.auth_issuer,
        lifetime_seconds=settings.token_lifetime_seconds,
        scopes=sorted(set(requested)),
        now=now,
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )


@router.get("/.well-known/jwks.json", summary="The issuer's public signing keys")
async def jwks(request: Request) -> dict[str, Any]:
    keys = state_of(request.app, SpaState).signing_keys
    return keys.jwks()
