"""Sign-in with the organisation's identity provider: OpenID Connect, authorization code flow
with PKCE (RFC 7636, S256) and a nonce, the client authenticating with its secret.

Authlib builds the authorization request and the PKCE challenge; the ID token's signature is
checked against the provider's published keys (PyJWT), and its times against the service's
clock. The provider is found from its issuer URL (OpenID Connect Discovery), its document and
keys kept for a while so that a sign-in costs one token request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import structlog
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from services.shared.problems import TYPE_PREFIX, Problem
from services.spa.console.people import Person, Role
from services.spa.settings import SpaSettings

log = structlog.get_logger(__name__)

PROVIDER_KEPT = timedelta(hours=1)
CLOCK_LEEWAY_SECONDS = 60


class SignInFailed(Problem):
    type = TYPE_PREFIX + "sign-in-failed"
    title = "Sign-in did not complete"
    status = 401


@dataclass(frozen=True)
class Provider:
    authorization_endpoint: str
    token_endpoint: str
    jwks: jwt.PyJWKSet
    fetched_at: datetime


def configured(settings: SpaSettings) -> bool:
    return bool(settings.console_oidc_issuer and settings.console_oidc_client_id)


def callback_url(settings: SpaSettings) -> str:
    return settings.public_base_url.rstrip("/") + "/console/sign-in/callback"


class IdentityProvider:
    """The organisation's identity provider, as the console's sign-in uses it."""

    def __init__(self, settings: SpaSettings, http: httpx.AsyncClient) -> None:
        assert settings.console_oidc_issuer
        assert settings.console_oidc_client_id
        self.settings = settings
        self.issuer = settings.console_oidc_issuer.rstrip("/")
        self.client_id = settings.console_oidc_client_id
        self.http = http
        self._provider: Provider | None = None

    async def provider(self, now: datetime) -> Provider:
        if self._provider is None or now - self._provider.fetched_at > PROVIDER_KEPT:
            self._provider = await self._discover(now)
        return self._provider

    async def _discover(self, now: datetime) -> Provider:
        try:
            answer = await self.http.get(self.issuer + "/.well-known/openid-configuration")
            answer.raise_for_status()
            document = answer.json()
            keys = await self.http.get(document["jwks_uri"])
            keys.raise_for_status()
            return Provider(
                authorization_endpoint=document["authorization_endpoint"],
                token_endpoint=document["token_endpoint"],
                jwks=jwt.PyJWKSet.from_dict(keys.json()),
                fetched_at=now,
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError, jwt.PyJWKError) as error:
            log.warning("identity_provider_unavailable", error_type=type(error).__name__)
            raise SignInFailed(
                "The organisation's sign-in service could not be reached. Try again shortly."
            ) from error

    async def authorization_request(self, now: datetime) -> tuple[str, dict[str, Any]]:
        """Where to send the browser, and what the session keeps to check the answer."""
        provider = await self.provider(now)
        state = secrets.token_urlsafe(24)
        nonce = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        url = prepare_grant_uri(
            provider.authorization_endpoint,
            client_id=self.client_id,
            response_type="code",
            redirect_uri=callback_url(self.settings),
            scope=" ".join(self.settings.console_oidc_scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return url, {"state": state, "nonce": nonce, "verifier": verifier}

    async def person_from_code(self, code: str, kept: dict[str, Any], now: datetime) -> Person:
        """Exchange the code for tokens and read the person from the checked ID token."""
        provider = await self.provider(now)
        secret = self.settings.console_oidc_client_secret
        try:
            answer = await self.http.post(
                provider.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": callback_url(self.settings),
                    "code_verifier": kept["verifier"],
                },
                auth=(self.client_id, secret.get_secret_value() if secret else ""),
            )
            answer.raise_for_status()
            id_token = answer.json()["id_token"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            log.warning("identity_provider_token_refused", error_type=type(error).__name__)
            raise SignInFailed("The sign-in service did not confirm who you are.") from error
        claims = self._checked(id_token, provider, kept["nonce"], now)
        return person_of(claims, self.settings)

    def _checked(
        self, id_token: str, provider: Provider, nonce: str, now: datetime
    ) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
            key = provider.jwks[header["kid"]] if "kid" in header else provider.jwks.keys[0]
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=["RS256", "ES256", "EdDSA", "PS256"],
                audience=self.client_id,
                issuer=self.issuer,
                # Times are checked below, against the service's clock.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except (jwt.PyJWTError, KeyError, IndexError) as error:
            raise SignInFailed("The sign-in service's answer could not be verified.") from error
        moment = now.timestamp()
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires < moment - CLOCK_LEEWAY_SECONDS:
            raise SignInFailed("The sign-in service's answer has expired. Sign in again.")
        if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise SignInFailed("The sign-in service's answer was not for this sign-in.")
        return claims


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def person_of(claims: dict[str, Any], settings: SpaSettings) -> Person:
    """The person an ID token names: roles (mapped) and bindings from the configured claims."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 100:
        raise SignInFailed("The sign-in service did not say who you are.")
    known = {role.value for role in Role}
    mapping = settings.console_oidc_role_map
    roles = {
        Role(mapping.get(value, value))
        for value in _strings(_claim(claims, settings.console_oidc_roles_claim))
        if mapping.get(value, value) in known
    }
    if not roles:
        raise SignInFailed(
            "Your account has no role in this console. Ask your administrator for access."
        )
    name = _claim(claims, settings.console_oidc_name_claim)
    return Person(
        person_id=subject,
        name=name if isinstance(name, str) and name else subject,
        roles=frozenset(roles),
        localities=frozenset(_strings(_claim(claims, settings.console_oidc_localities_claim))),
        teams=frozenset(_strings(_claim(claims, settings.console_oidc_teams_claim))),
    )
