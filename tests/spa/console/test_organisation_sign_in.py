"""Signing in with the organisation's identity provider: OpenID Connect's code flow with PKCE.

The provider here is a small one of the test's own, playing the organisation's (Keycloak, Entra
ID): discovery, keys, and a token endpoint that checks the client's secret, the code and the PKCE
verifier, and signs an ID token with the nonce it was asked for. The browser's trip to its
sign-in page is the test following the redirect's parameters."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from tests.stack import SettableClock, Stack, running_stack

ISSUER = "http://idp.test/realms/county"
CLIENT_ID, CLIENT_SECRET = "spa-console", "console-client-secret"


class Provider:
    """The organisation's identity provider, with the person it will sign in next."""

    def __init__(self, clock: SettableClock | None = None) -> None:
        self.key = generate_private_key(SECP256R1())
        self.clock = clock
        self.codes: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, Any] = {}
        self.app = self._app()

    def approve(self, authorization_url: str, **claims: Any) -> dict[str, str]:
        """The person signs in at the provider: a code for the request, and the callback's
        parameters."""
        query = {
            key: values[0] for key, values in parse_qs(urlsplit(authorization_url).query).items()
        }
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["client_id"] == CLIENT_ID
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**query, "claims": claims}
        return {"code": code, "state": query["state"], "session_state": "kept-by-the-provider"}

    def _app(self) -> FastAPI:
        app = FastAPI()
        public = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)

        @app.get("/realms/county/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
                "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
                "jwks_uri": f"{ISSUER}/protocol/openid-connect/certs",
            }

        @app.get("/realms/county/protocol/openid-connect/certs")
        async def keys() -> dict[str, Any]:
            return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "ES256"}]}

        @app.post("/realms/county/protocol/openid-connect/token")
        async def token(
            request: Request,
            grant_type: Annotated[str, Form()],
            code: Annotated[str, Form()],
            redirect_uri: Annotated[str, Form()],
            code_verifier: Annotated[str, Form()],
        ) -> JSONResponse:
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            issued = self.codes.pop(code, None)
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if (
                request.headers.get("authorization") != expected
                or grant_type != "authorization_code"
                or issued is None
                or issued["redirect_uri"] != redirect_uri
                or issued["code_challenge"] != challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(self.clock().timestamp()) if self.clock else 0
            claims = {
                "iss": ISSUER,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": issued["nonce"],
                **issued["claims"],
            }
            id_token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})
            return JSONResponse(
                {"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}
            )

        return app


@pytest.fixture
async def provider_and_stack(
    postgres_urls: dict[str, str], issuer_key_file: Path
) -> AsyncIterator[tuple[Provider, Stack]]:
    provider = Provider()
    settings = {
        "console_oidc_issuer": ISSUER,
        "console_oidc_client_id": CLIENT_ID,
        "console_oidc_client_secret": SecretStr(CLIENT_SECRET),
        "console_oidc_role_map": {"SPA.CallHandler": "call_handler"},
    }
    async with running_stack(
        postgres_urls,
        issuer_key_file,
        overrides={"spa": settings},
        outside={"http://idp.test": httpx.ASGITransport(app=provider.app)},
    ) as stack:
        provider.clock = stack.clock
        yield provider, stack


async def _start(browser: httpx.AsyncClient) -> str:
    started = await browser.get("/console/sign-in/organisation?next=/console/queue")
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith(f"{ISSUER}/protocol/openid-connect/auth?")
    return location


async def test_a_person_signs_in_with_the_organisation_and_gets_their_roles_and_bindings(
    provider_and_stack: tuple[Provider, Stack],
) -> None:
    provider, stack = provider_and_stack
    browser = stack.raw("spa")
    location = await _start(browser)
    query = parse_qs(urlsplit(location).query)
    assert query["redirect_uri"] == ["http://127.0.0.1:8001/console/sign-in/callback"]
    assert "openid" in query["scope"][0].split()
    answer = provider.approve(
        location,
        sub="f3b9-17",
        name="Robin Example",
        roles=["SPA.CallHandler"],
        localities=["north"],
    )

    back = await browser.get("/console/sign-in/callback", params=answer)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/console/queue"
    queue = await browser.get("/console/queue")
    home = await browser.get("/console")

    assert queue.status_code == 200
    assert "Robin Example" in home.text
    assert "Localities: north" in home.text


async def test_an_answer_for_another_sign_in_is_refused(
    provider_and_stack: tuple[Provider, Stack],
) -> None:
    provider, stack = provider_and_stack
    browser = stack.raw("spa")
    location = await _start(browser)
    answer = provider.approve(location, sub="p-1", roles=["call_handler"])

    forged = await browser.get(
        "/console/sign-in/callback", params={**answer, "state": "not-the-one-sent"}
    )
    replayed_elsewhere = await stack.raw("spa").get("/console/sign-in/callback", params=answer)
    unusual = await browser.get("/console/sign-in/callback", params={**answer, "state": "état"})

    assert forged.status_code == 401
    assert "did not match" in forged.text
    assert replayed_elsewhere.status_code == 401
    assert unusual.status_code == 401
    assert (await browser.get("/console/queue")).status_code == 303


async def test_a_person_without_a_console_role_is_not_signed_in(
    provider_and_stack: tuple[Provider, Stack],
) -> None:
    provider, stack = provider_and_stack
    browser = stack.raw("spa")
    location = await _start(browser)
    answer = provider.approve(location, sub="p-2", roles=["offline_access"])

    refused = await browser.get("/console/sign-in/callback", params=answer)

    assert refused.status_code == 401
    assert "no role in this console" in refused.text


async def test_an_id_token_expired_by_the_services_clock_is_refused(
    provider_and_stack: tuple[Provider, Stack],
) -> None:
    provider, stack = provider_and_stack
    browser = stack.raw("spa")
    location = await _start(browser)
    answer = provider.approve(location, sub="p-3", roles=["call_handler"])
    provider.clock = SettableClock(stack.clock.now.replace(year=stack.clock.now.year - 1))

    refused = await browser.get("/console/sign-in/callback", params=answer)

    assert refused.status_code == 401
    assert "expired" in refused.text
