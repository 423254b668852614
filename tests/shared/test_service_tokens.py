"""A service's own token is fetched once for all its calls at a time: a burst of calls finding
no token, a token close to expiry, a token the callee refuses, or a token endpoint that fails
each cost one token request, never one per call."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.shared.http import ClientCredentialsAuth, ServiceClient
from services.shared.problems import UpstreamUnavailable
from tests.stack import MORNING, SettableClock

TOKEN_URL = "http://spa.test/oauth/token"
CALLEE = "http://routing.test"
BURST = 50


class Services:
    """A token endpoint that counts what it is asked (each answer takes a while, as an argon2
    check does) and a callee that accepts the tokens it has not been told to refuse."""

    def __init__(self) -> None:
        self.token_requests = 0
        self.token_status = 200
        self.token_headers: dict[str, str] = {}
        self.refused: set[str] = set()
        self.seen: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url == TOKEN_URL:
            return await self._token(request)
        token = request.headers["authorization"].removeprefix("Bearer ")
        self.seen.append(token)
        await asyncio.sleep(0.01)
        return httpx.Response(401 if token in self.refused else 200, json={"ok": True})

    async def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        expected = "Basic " + base64.b64encode(b"spa-service:secret").decode()
        assert request.headers["authorization"] == expected
        await asyncio.sleep(0.05)
        if self.token_status != 200:
            return httpx.Response(self.token_status, headers=self.token_headers)
        body = {"access_token": f"token-{self.token_requests}", "expires_in": 300}
        return httpx.Response(200, json=body)


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(MORNING)


@pytest.fixture
async def callee(services: Services, clock: SettableClock) -> AsyncIterator[ServiceClient]:
    auth = ClientCredentialsAuth(TOKEN_URL, "spa-service", "secret", clock=clock)
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(services)) as http:
        yield ServiceClient(http, CALLEE, "routing")


async def _burst(callee: ServiceClient, calls: int = BURST) -> list[httpx.Response | BaseException]:
    return await asyncio.gather(
        *(callee.request("GET", "/v1/decisions") for _ in range(calls)), return_exceptions=True
    )


def _statuses(results: list[httpx.Response | BaseException]) -> set[object]:
    return {r.status_code if isinstance(r, httpx.Response) else type(r) for r in results}


async def test_a_burst_of_calls_without_a_token_fetches_one(
    callee: ServiceClient, services: Services
) -> None:
    results = await _burst(callee)

    assert _statuses(results) == {200}
    assert services.token_requests == 1
    assert set(services.seen) == {"token-1"}


async def test_a_token_near_its_expiry_is_renewed_once_and_calls_carry_on_meanwhile(
    callee: ServiceClient, services: Services, clock: SettableClock
) -> None:
    await callee.request("GET", "/v1/decisions")
    clock.now += timedelta(seconds=285)  # 15 seconds left: inside the renewal margin

    results = await _burst(callee)
    later = await _burst(callee)

    assert _statuses(results) == _statuses(later) == {200}
    assert services.token_requests == 2
    # While one call renewed the token, the others went on with the old one, still good.
    assert "token-1" in services.seen[1 : BURST + 1]
    assert set(services.seen[-BURST:]) == {"token-2"}


async def test_a_token_the_callee_refuses_is_replaced_once_for_every_call_it_refused(
    callee: ServiceClient, services: Services
) -> None:
    await callee.request("GET", "/v1/decisions")
    services.refused.add("token-1")

    results = await _burst(callee)

    assert _statuses(results) == {200}
    assert services.token_requests == 2
    assert services.seen.count("token-2") == BURST


async def test_a_failed_fetch_is_shared_by_its_waiters_and_not_repeated_at_once(
    callee: ServiceClient, services: Services, clock: SettableClock
) -> None:
    services.token_status, services.token_headers = 429, {"Retry-After": "10"}

    results = await _burst(callee)
    with pytest.raises(UpstreamUnavailable):
        await callee.request("GET", "/v1/decisions")
    asked_while_paused = services.token_requests
    services.token_status = 200
    clock.now += timedelta(seconds=11)
    recovered = await callee.request("GET", "/v1/decisions")

    assert _statuses(results) == {UpstreamUnavailable}
    assert asked_while_paused == 1
    assert recovered.status_code == 200
    assert services.token_requests == 2
    assert services.seen == ["token-2"]


async def test_an_unanswered_fetch_is_not_repeated_by_every_waiter(
    services: Services, clock: SettableClock
) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        services.token_requests += 1
        raise httpx.ConnectError("connection refused", request=request)

    auth = ClientCredentialsAuth(TOKEN_URL, "spa-service", "secret", clock=clock)
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(unreachable)) as http:
        results = await _burst(ServiceClient(http, CALLEE, "routing"))

    assert _statuses(results) == {UpstreamUnavailable}
    assert services.token_requests == 1
