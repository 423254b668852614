"""Before any handler: bodies over the limit, clients over their rate, cross-origin calls from
unknown origins are turned away with problems; every answer carries the security headers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.shared.hardening import RateLimits
from services.spa.main import create_app as create_spa
from tests import factories
from tests.stack import Stack

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
async def test_an_oversized_body_is_refused_and_nothing_is_kept(
    stack: Stack, streamed: bool
) -> None:
    body = factories.referral()
    body["reason"] = "x" * (2 * 1024 * 1024)
    content = json.dumps(body).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 65536):
            yield content[start : start + 65536]

    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            "/v1/referrals",
            content=chunks() if streamed else content,
            headers={"content-type": "application/json"},
        )

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:spa-platform:problem:content-too-large"
    from services.spa.referrals.models import Referral

    assert await stack.count_rows("spa", Referral) == 0


async def test_malformed_json_is_a_problem_not_a_crash(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            "/v1/referrals", content=b'{"patient": {', headers={"content-type": "application/json"}
        )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["reason"] == "the body is not valid JSON"


@pytest.mark.parametrize("service", ["spa", "routing", "teams"])
async def test_every_answer_carries_the_security_headers(stack: Stack, service: str) -> None:
    async with stack.raw(service) as raw:
        answers = [await raw.get("/healthz"), await raw.get("/v1/nothing-here")]

    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"


async def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_carry_on(
    stack: Stack,
) -> None:
    app = stack.apps["spa"]
    kept = app.state.rate_limits
    app.state.rate_limits = RateLimits("3/minute")
    try:
        async with stack.client("spa", "gp-system") as gp:
            answers = [await gp.get("/v1/subscriptions") for _ in range(4)]
        async with stack.client("spa", "gp-engine") as other:
            theirs = await other.get("/v1/subscriptions")
    finally:
        app.state.rate_limits = kept

    assert [response.status_code for response in answers[:3]] == [403, 403, 403]
    assert answers[3].status_code == 429
    assert answers[3].headers["content-type"] == PROBLEM
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60
    assert theirs.status_code == 200


async def test_guessing_a_secret_is_rate_limited_without_locking_the_client_out(
    stack: Stack,
) -> None:
    app = stack.apps["spa"]
    kept = app.state.token_limits
    app.state.token_limits = {"client": RateLimits("2/minute"), "address": RateLimits("4/minute")}
    guess = {"grant_type": "client_credentials", "client_id": "gp-system"}

    def from_address(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://spa")

    try:
        async with from_address("203.0.113.9") as attacker, from_address("198.51.100.7") as real:
            guesses = [
                await attacker.post("/oauth/token", data={**guess, "client_secret": f"guess-{n}"})
                for n in range(3)
            ]
            genuine = await real.post(
                "/oauth/token", data={**guess, "client_secret": "test-secret-0123456789"}
            )
            other = {"grant_type": "client_credentials", "client_secret": "x"}
            other_ids = [
                await attacker.post("/oauth/token", data={**other, "client_id": f"id-{n}"})
                for n in range(2)
            ]
    finally:
        app.state.token_limits = kept

    assert [response.status_code for response in guesses] == [401, 401, 429]
    assert "retry-after" in guesses[2].headers
    assert genuine.status_code == 200
    # Changing the claimed id does not escape the limit of the address (4 a minute here).
    assert [response.status_code for response in other_ids] == [401, 429]


async def test_cross_origin_calls_are_allowed_only_from_configured_origins(stack: Stack) -> None:
    settings = stack.apps["spa"].state.settings
    closed = create_spa(settings, clock=stack.clock)
    open_to_one = create_spa(
        settings.model_copy(update={"cors_origins": ("https://ward.example",)}), clock=stack.clock
    )
    preflight = {
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
    }

    async def ask(app: object, origin: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://spa") as http:
            return await http.options("/v1/subscriptions", headers={"origin": origin, **preflight})

    refused = await ask(closed, "https://ward.example")
    allowed = await ask(open_to_one, "https://ward.example")
    elsewhere = await ask(open_to_one, "https://evil.example")

    assert "access-control-allow-origin" not in refused.headers
    assert allowed.headers["access-control-allow-origin"] == "https://ward.example"
    assert "access-control-allow-origin" not in elsewhere.headers
