"""Every route but the probes needs a valid token with the right scope and audience."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openapi.generate import apps
from services.spa import cli as spa_cli
from tests import factories
from tests.stack import CLIENTS, MORNING, Stack


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(MORNING.timestamp())
    claims: dict[str, Any] = {
        "iss": "spa-platform",
        "sub": "gp-system",
        "aud": ["spa"],
        "iat": now,
        "exp": now + 300,
        "scope": "referrals:create referrals:read",
        "channels": ["gp"],
    }
    claims.update(overrides)
    return claims


def _signed_by_us(stack: Stack, **overrides: Any) -> str:
    signed: str = stack.apps["spa"].state.signing_keys.sign(_claims(**overrides))
    return signed


OPEN = {"/healthz", "/readyz", "/oauth/token", "/.well-known/jwks.json"}
PATH_VALUES = {"scope": "county", "code": "lit-north", "ods_code": "M91001"}


# An id that names nothing, the same in every test process, so that the parameters (and test ids)
# are the same wherever the suite is collected.
UNKNOWN_ID = "0b7a8c3e-5d1f-4e2a-9c6b-000000000404"


def _protected_operations() -> list[tuple[str, str, str]]:
    """Every operation of the three OpenAPI documents except the open ones, with its path
    parameters filled in, so that a new route without authentication fails these tests."""
    operations: list[tuple[str, str, str]] = []
    for service, app in apps().items():
        for path, item in app.openapi()["paths"].items():
            if path in OPEN:
                continue
            concrete = re.sub(r"{(\w+)}", lambda m: PATH_VALUES.get(m.group(1), UNKNOWN_ID), path)
            operations.extend((service, method.upper(), concrete) for method in item)
    return operations


PROTECTED = _protected_operations()


def test_the_open_routes_are_only_the_probes_the_token_endpoint_and_the_keys() -> None:
    assert len(PROTECTED) > 40
    assert {path for _, _, path in PROTECTED}.isdisjoint(OPEN)


@pytest.mark.parametrize(("service", "method", "path"), PROTECTED)
async def test_every_route_refuses_a_request_without_a_token(
    stack: Stack, service: str, method: str, path: str
) -> None:
    async with stack.raw(service) as http:
        response = await http.request(method, path, json={})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    _assert_refusal(path, response, "REC_UNAUTHORIZED")


@pytest.mark.parametrize(("service", "method", "path"), PROTECTED)
async def test_every_route_refuses_a_token_without_its_scope(
    stack: Stack, service: str, method: str, path: str
) -> None:
    async with stack.client(service, "no-scopes") as http:
        response = await http.request(method, path, json={})

    assert response.status_code == 403
    assert "insufficient_scope" in response.headers["www-authenticate"]
    _assert_refusal(path, response, "REC_FORBIDDEN", "urn:spa-platform:problem:insufficient-scope")


def _assert_refusal(
    path: str, response: httpx.Response, bars_code: str, problem_type: str | None = None
) -> None:
    """A problem document on the JSON API; on the FHIR door an OperationOutcome with the BaRS
    code, answered before any header of the message is judged."""
    if path.startswith("/FHIR/R4/"):
        assert response.headers["content-type"].startswith("application/fhir+json")
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        codes = [
            coding["code"]
            for issue in outcome["issue"]
            for coding in issue.get("details", {}).get("coding", [])
        ]
        assert bars_code in codes
        return
    assert response.headers["content-type"] == "application/problem+json"
    if problem_type is not None:
        assert response.json()["type"] == problem_type


@pytest.mark.parametrize("service", ["spa", "routing", "teams"])
@pytest.mark.parametrize("probe", ["/healthz", "/readyz"])
async def test_health_probes_are_open(stack: Stack, service: str, probe: str) -> None:
    async with stack.raw(service) as http:
        response = await http.get(probe)

    assert response.status_code == 200


BAD_TOKENS: dict[str, Callable[[Stack], str]] = {
    "expired": lambda stack: _signed_by_us(
        stack, iat=int(stack.clock().timestamp()) - 3600, exp=int(stack.clock().timestamp()) - 600
    ),
    "wrong audience": lambda stack: _signed_by_us(stack, aud=["teams"]),
    "wrong issuer": lambda stack: _signed_by_us(stack, iss="someone-else"),
    "no expiry": lambda stack: _signed_by_us(stack, exp=None),
    "forged": lambda stack: jwt.encode(
        _claims(),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": stack.apps["spa"].state.signing_keys.kid},
    ),
    "unsigned": lambda stack: jwt.encode(_claims(), "", algorithm="none"),
    "symmetric": lambda stack: jwt.encode(
        _claims(), "a-guessed-shared-secret-of-32-bytes!", algorithm="HS256"
    ),
    "garbage": lambda stack: "not.a.token",
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_tokens_are_refused_before_any_handler(stack: Stack, kind: str) -> None:
    token = BAD_TOKENS[kind](stack)
    async with stack.raw("spa") as spa:
        response = await spa.post(
            "/v1/referrals", json=factories.referral(), headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 401
    assert response.json()["type"] == "urn:spa-platform:problem:authentication-required"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_client_may_post_only_on_its_registered_channels(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=factories.referral(channel="ambulance"))

    assert response.status_code == 403
    assert response.json()["type"] == "urn:spa-platform:problem:channel-not-permitted"


async def test_a_referrer_cannot_read_another_referrers_referral(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as spa:
        referral_id = (await spa.post("/v1/referrals", json=factories.referral())).json()["id"]
    async with stack.client("spa", "other-gp-system") as other:
        theirs = await other.get(f"/v1/referrals/{referral_id}")
        missing = await other.get(f"/v1/referrals/{uuid.uuid4()}")

    # Refused exactly as if it did not exist, so existence is not revealed.
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["title"] == missing.json()["title"]


class TestTokenEndpoint:
    async def test_issues_a_short_lived_token_with_the_clients_scopes(self, stack: Stack) -> None:
        spec = next(spec for spec in CLIENTS if spec.client_id == "gp-system")
        async with stack.raw("spa") as spa:
            response = await spa.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(spec.client_id, spec.secret),
            )
            jwks = (await spa.get("/.well-known/jwks.json")).json()

        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        key = jwt.PyJWKSet.from_dict(jwks).keys[0]
        claims = jwt.decode(
            body["access_token"],
            key.key,
            algorithms=["EdDSA"],
            audience="spa",
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        # Issued on the service's clock, not the machine's.
        assert abs(claims["iat"] - stack.clock().timestamp()) < 60
        assert claims["sub"] == "gp-system"
        assert set(claims["scope"].split()) == {"referrals:create", "referrals:read"}
        assert claims["channels"] == ["gp"]
        assert claims["exp"] - claims["iat"] == 300

    async def test_accepts_credentials_in_the_form_body(self, stack: Stack) -> None:
        spec = next(spec for spec in CLIENTS if spec.client_id == "gp-system")
        data = {
            "grant_type": "client_credentials",
            "client_id": spec.client_id,
            "client_secret": spec.secret,
        }
        async with stack.raw("spa") as spa:
            response = await spa.post("/oauth/token", data=data)

        assert response.status_code == 200

    async def test_narrows_to_a_requested_scope(self, stack: Stack) -> None:
        spec = next(spec for spec in CLIENTS if spec.client_id == "gp-system")
        data = {"grant_type": "client_credentials", "scope": "referrals:read"}
        async with stack.raw("spa") as spa:
            response = await spa.post("/oauth/token", data=data, auth=(spec.client_id, spec.secret))

        assert response.json()["scope"] == "referrals:read"

    @pytest.mark.parametrize(
        ("data", "auth", "status", "error"),
        [
            (
                {"grant_type": "client_credentials"},
                ("gp-system", "wrong-secret-000000"),
                401,
                "invalid_client",
            ),
            (
                {"grant_type": "client_credentials"},
                ("nobody", "test-secret-0123456789"),
                401,
                "invalid_client",
            ),
            ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
            (
                {"grant_type": "password"},
                ("gp-system", "test-secret-0123456789"),
                400,
                "unsupported_grant_type",
            ),
            (
                {"grant_type": "client_credentials", "scope": "audit:read"},
                ("gp-system", "test-secret-0123456789"),
                400,
                "invalid_scope",
            ),
        ],
        ids=[
            "wrong-secret",
            "unknown-client",
            "no-credentials",
            "password-grant",
            "scope-not-granted",
        ],
    )
    async def test_refusals_are_problems_with_the_oauth_error_code(
        self,
        stack: Stack,
        data: dict[str, str],
        auth: tuple[str, str] | None,
        status: int,
        error: str,
    ) -> None:
        async with stack.raw("spa") as spa:
            response = await spa.post(
                "/oauth/token", data=data, auth=auth or httpx.USE_CLIENT_DEFAULT
            )

        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == error
        assert "access_token" not in response.text

    async def test_a_json_body_is_refused_with_a_problem(self, stack: Stack) -> None:
        async with stack.raw("spa") as spa:
            response = await spa.post("/oauth/token", json={"grant_type": "client_credentials"})

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_command_line_rotates_and_revokes_a_client(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPA_DATABASE_URL", stack.apps["spa"].state.settings.database_url)

    async def command(*args: str) -> tuple[int, dict[str, Any]]:
        status = await asyncio.to_thread(spa_cli.main, list(args))
        lines = capsys.readouterr().out.strip().splitlines()
        return status, json.loads(lines[-1]) if status == 0 else {}

    async def token(secret: str) -> int:
        form = {
            "grant_type": "client_credentials",
            "client_id": "cli-made",
            "client_secret": secret,
        }
        async with stack.raw("spa") as spa:
            return (await spa.post("/oauth/token", data=form)).status_code

    registered = await command(
        "register-client", "--client-id", "cli-made", "--name", "Made here",
        "--scopes", "referrals:read", "--audiences", "spa", "--replace",
    )  # fmt: skip
    first = registered[1]["client_secret"]
    rotated = await command("rotate-secret", "--client-id", "cli-made")
    second = rotated[1]["client_secret"]
    answers = [await token(first), await token(second)]
    revoked = await command("revoke-client", "--client-id", "cli-made")
    after = await token(second)
    again = await command("revoke-client", "--client-id", "cli-made")

    assert registered[0] == rotated[0] == revoked[0] == 0
    assert second != first
    assert answers == [401, 200]
    assert after == 401
    assert again[0] == 1
