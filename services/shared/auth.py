"""Bearer-token authentication and scope checks, the same in every service.

Tokens are short-lived JWTs from an OAuth2 client-credentials token endpoint: the built-in issuer
served by spa, or an organisation's own identity provider. Each service verifies tokens itself
against the issuer's published keys (JWKS); no service trusts a caller because of where it sits.
Which claims hold the scopes and the client id is configuration, since identity providers differ:
our tokens and OAuth 2.0's default carry ``scope`` (a space-separated string) and ``sub``;
Microsoft Entra ID carries application permissions in ``roles`` (an array), delegated ones in
``scp``, and the client in ``azp`` (``appid`` in its v1 tokens); Keycloak adds roles under
``realm_access.roles`` and ``resource_access.<client>.roles``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
import jwt
import structlog
from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from starlette.requests import HTTPConnection

from services.shared.clock import Clock, epoch_seconds
from services.shared.problems import AuthenticationRequired, InsufficientScope
from services.shared.state import ServiceState, state_of

# Every scope the platform knows. A route names the scopes it needs; a client is granted some.
SCOPES: dict[str, str] = {
    "referrals:create": "Post referrals on the channels the client is registered for",
    "referrals:read": "Read referrals the client may see",
    "queue:work": "Work the call-handler queue",
    "caseload:manage": "Read and act on a team's caseload",
    "directory:read": "Read the directory and resolve the team for a case",
    "directory:admin": "Change the directory",
    "decisions:create": "Ask for a triage and routing decision",
    "decisions:read": "Read recorded routing decisions",
    "assignments:create": "Assign a case to a team",
    "assignments:report": "Report changes to a team's assignments back to the referral",
    "rules:admin": "Manage triage rule sets",
    "subscriptions:manage": "Manage webhook subscriptions",
    "audit:read": "Read the audit trail",
    "reports:read": "Read response-time reports",
    "metrics:read": "Scrape the service's Prometheus metrics",
}

# The locality binding of a county-wide call-handler system: it works every locality's queue.
ALL_LOCALITIES = "*"

log = structlog.get_logger(__name__)

# Verified tokens remembered at once per process (each entry is a token and its claims).
VERIFIED_TOKENS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated calling system."""

    client_id: str
    scopes: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self.claims.get("channels") or ())

    @property
    def teams(self) -> frozenset[str]:
        """Codes of the teams this client acts for."""
        return frozenset(self.claims.get("teams") or ())

    @property
    def localities(self) -> frozenset[str]:
        """Codes of the localities whose queue this client works; ``*`` for every locality."""
        return frozenset(self.claims.get("localities") or ())

    def works_locality(self, locality_code: str | None) -> bool:
        if ALL_LOCALITIES in self.localities:
            return True
        return locality_code is not None and locality_code in self.localities


class KeySet(Protocol):
    async def key_for(self, kid: str | None) -> jwt.PyJWK: ...


class StaticKeySet:
    """Keys known in-process, e.g. the built-in issuer's own public keys."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        return _pick(self._keys, kid)


class RemoteKeySet:
    """An issuer's JWKS fetched over HTTP, cached, and fetched again for an unknown key id so
    that a key rotation at the issuer is picked up without a restart."""

    def __init__(self, url: str, http: httpx.AsyncClient, max_age_seconds: float = 600) -> None:
        self._url = url
        self._http = http
        self._max_age = max_age_seconds
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        if kid not in self._keys or time.monotonic() - self._fetched_at > self._max_age:
            await self._refresh(min_interval=10.0)
        return _pick(self._keys, kid)

    async def _refresh(self, min_interval: float) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < min_interval:
                return
            try:
                response = await self._http.get(self._url, auth=None)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json()).keys
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("jwks_fetch_failed", error_type=type(exc).__name__)
                return
            self._keys = {key.key_id: key for key in keys}
            self._fetched_at = time.monotonic()


def _pick(keys: dict[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK:
    if kid in keys:
        return keys[kid]
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    raise jwt.InvalidKeyError("no key matches the token")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named ``path``, or else the value at that dotted path through nested claims
    (``realm_access.roles``); None when there is none."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for name in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def granted_scopes(claims: Mapping[str, Any], paths: tuple[str, ...]) -> frozenset[str]:
    """The union of the scopes at ``paths``: each a space-separated string or an array of
    strings. Anything else there grants nothing."""
    scopes: set[str] = set()
    for path in paths:
        value = claim_at(claims, path)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(item for item in value if isinstance(item, str) and item)
    return frozenset(scopes)


def client_id_of(claims: Mapping[str, Any], paths: tuple[str, ...]) -> str:
    """The first non-empty string at ``paths``."""
    for path in paths:
        value = claim_at(claims, path)
        if isinstance(value, str) and value:
            return value
    raise jwt.MissingRequiredClaimError(" or ".join(paths))


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        *,
        clock: Clock,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        leeway_seconds: int = 30,
        scope_claims: tuple[str, ...] = ("scope",),
        client_id_claims: tuple[str, ...] = ("sub",),
    ) -> None:
        self.keys = keys
        self._clock = clock
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway_seconds
        self.scope_claims = scope_claims
        self.client_id_claims = client_id_claims
        # Tokens already verified, until they expire: a client sends the same token for
        # minutes, and checking its signature on every request is most of the cost of
        # authenticating it. A key withdrawn from the issuer's JWKS stops new tokens once the
        # key set is fetched again (at most max_age later); tokens already seen here run to
        # their own expiry. Keep issuers' token lifetimes short (spa's are 5 minutes).
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        seen = self._verified.get(token)
        now = epoch_seconds(self._clock)
        if seen is not None:
            if seen[0] > now:
                return seen[1]
            del self._verified[token]
        principal = await self._verify(token, now)
        expires = float(principal.claims["exp"])
        if expires > now:
            self._verified[token] = (expires, principal)
            if len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)  # the oldest seen
        return principal

    async def _verify(self, token: str, now: float) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key = await self.keys.key_for(header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    # The client id's claim is required below, wherever it is configured.
                    "require": ["exp", "iat", "iss", "aud"],
                    # The times are checked below, on this service's clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
            self._check_times(claims, now)
            client_id = client_id_of(claims, self.client_id_claims)
        except jwt.PyJWTError as exc:
            log.info("token_rejected", reason=type(exc).__name__)
            raise AuthenticationRequired(
                "The bearer token is invalid, expired or not meant for this service.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        scopes = granted_scopes(claims, self.scope_claims)
        return Principal(client_id=client_id, scopes=scopes, claims=claims)

    def _check_times(self, claims: dict[str, Any], now: float) -> None:
        """Expiry, not-before and issued-at against ``now``, allowing ``leeway`` seconds of
        difference between the issuer's clock and ours (RFC 7519, section 4.1)."""
        try:
            expires = float(claims["exp"])
            not_before = float(claims.get("nbf", claims["iat"]))
            issued = float(claims["iat"])
        except (TypeError, ValueError):
            raise jwt.InvalidTokenError("a time claim is not a number") from None
        if expires <= now - self.leeway:
            raise jwt.ExpiredSignatureError("the token has expired")
        if not_before > now + self.leeway or issued > now + self.leeway:
            raise jwt.ImmatureSignatureError("the token is not valid yet")


class ClientCredentialsBearer(OAuth2):
    """Reads the bearer token and documents the client-credentials flow in OpenAPI."""

    def __init__(self, token_url: str) -> None:
        flows = OAuthFlows(
            clientCredentials=OAuthFlowClientCredentials(tokenUrl=token_url, scopes=SCOPES)
        )
        super().__init__(flows=flows, scheme_name="OAuth2ClientCredentials", auto_error=False)

    async def __call__(self, request: HTTPConnection) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


bearer_token = ClientCredentialsBearer(token_url="/oauth/token")  # noqa: S106 - a URL path


async def authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    token: Annotated[str | None, Depends(bearer_token)],
) -> Principal:
    if token is None:
        raise AuthenticationRequired(headers={"WWW-Authenticate": "Bearer"})
    state = state_of(request.app, ServiceState)
    verifier = state.verifier
    principal = await verifier.verify(token)
    request.state.client_id = principal.client_id
    structlog.contextvars.bind_contextvars(client_id=principal.client_id)
    await state.rate_limits.check("api", principal.client_id)
    missing = sorted(set(security_scopes.scopes) - principal.scopes)
    if missing:
        raise InsufficientScope(
            f"This operation needs the scope {' '.join(missing)}.",
            headers={
                "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(missing)}"'
            },
            required_scopes=missing,
        )
    return principal


def requires(*scopes: str) -> Any:
    """``principal: Annotated[Principal, requires("referrals:read")]``"""
    unknown = set(scopes) - SCOPES.keys()
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}")
    return Security(authenticate, scopes=list(scopes))
