"""Calling another service: one ``httpx.AsyncClient`` per process, our own token, the request id.

An upstream failure is wrapped as ``UpstreamUnavailable``, never passed off as our own status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from opentelemetry.trace import NoOpTracer, Tracer
from pydantic import BaseModel, Field, ValidationError

from services.shared.clock import Clock
from services.shared.logging import current_request_id
from services.shared.outbox import RetryLater
from services.shared.problems import UpstreamUnavailable
from services.shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


class _TokenAnswer(BaseModel):
    access_token: str
    expires_in: float = Field(default=60, gt=0)


class ClientCredentialsAuth(httpx.Auth):
    """This service's own OAuth2 client-credentials token, shared by every call it makes.

    One fetch at a time (the lock is held while the token request is in flight): concurrent
    calls that find no token wait for that fetch rather than send their own. A token is renewed
    ``renew_margin`` before it expires; while one call renews it, the others go on with the
    old one, which is still good. A 401 from the callee (a key rotation, say) fetches one new
    token for every call it refused. A fetch that fails pauses fetching for a moment (or as long
    as a 429's Retry-After asks): the calls meanwhile fail at once instead of each asking again.
    Times come from the service's clock, the one the callee's verifier checks ``exp`` by.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Clock,
        renew_margin: timedelta = timedelta(seconds=30),
        pause_after_failure: timedelta = timedelta(seconds=2),
    ) -> None:
        self._token_url = token_url
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._basic = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._clock = clock
        self._renew_margin = renew_margin
        self._pause_after_failure = pause_after_failure
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = self._renew_at = self._paused_until = datetime.min.replace(tzinfo=UTC)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("service tokens are shared by an httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refused: str | None = None
        for _attempt in range(2):
            if self._must_fetch(refused) and not self._renewal_under_way(refused):
                async with self._lock:
                    if self._must_fetch(refused) and self._may_fetch(refused):
                        asked_at = self._clock()
                        try:
                            answer = yield self._token_request()
                        except GeneratorExit:
                            # The fetch never got an answer (unreachable, timed out, cancelled).
                            self._pause(self._pause_after_failure)
                            raise
                        await self._take(answer, asked_at, refused)
            token = self._token
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401:
                return
            refused = token

    def _must_fetch(self, refused: str | None) -> bool:
        """No token yet, one due for renewal, or the one the callee has just refused."""
        return self._token is None or self._token == refused or self._clock() >= self._renew_at

    def _still_good(self, refused: str | None) -> bool:
        return (
            self._token is not None and self._token != refused and self._clock() < self._expires_at
        )

    def _renewal_under_way(self, refused: str | None) -> bool:
        """Another call is renewing a token that is still good: use it rather than wait."""
        return self._lock.locked() and self._still_good(refused)

    def _may_fetch(self, refused: str | None) -> bool:
        """False to go on with a token still good while fetching is paused; raises when fetching
        is paused and no good token is left."""
        if self._clock() >= self._paused_until:
            return True
        if self._still_good(refused):
            return False
        raise UpstreamUnavailable("This service could not obtain a token to call another.")

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self._basic},
        )

    async def _take(
        self, response: httpx.Response, asked_at: datetime, refused: str | None
    ) -> None:
        """Keep the token answered, or pause fetching after a refusal; raise when no good
        token is left."""
        answer = await _token_answer(response)
        if answer is not None:
            self._keep(answer, asked_at)
            return
        log.error("service_token_refused", status=response.status_code)
        self._pause(_retry_after(response) or self._pause_after_failure)
        if not self._still_good(refused):
            raise UpstreamUnavailable("This service could not obtain a token to call another.")

    def _keep(self, answer: _TokenAnswer, asked_at: datetime) -> None:
        lifetime = timedelta(seconds=answer.expires_in)
        self._token = answer.access_token
        # Counted from when it was asked for: the issuer's clock started no later than that.
        self._expires_at = asked_at + lifetime
        self._renew_at = self._expires_at - min(self._renew_margin, lifetime / 2)

    def _pause(self, pause: timedelta) -> None:
        self._paused_until = self._clock() + pause


_LONGEST_PAUSE = timedelta(seconds=30)


async def _token_answer(response: httpx.Response) -> _TokenAnswer | None:
    await response.aread()
    if response.status_code != 200:
        return None
    try:
        return _TokenAnswer.model_validate_json(response.content)
    except ValidationError:
        return None


def _retry_after(response: httpx.Response) -> timedelta | None:
    """A 429's Retry-After in seconds, bounded; None when there is none."""
    value = response.headers.get("retry-after", "")
    if response.status_code != 429 or not value.isdigit():
        return None
    return min(timedelta(seconds=int(value)), _LONGEST_PAUSE)


def create_http_client(
    settings: ServiceSettings,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    *,
    clock: Clock,
    traced: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] = lambda t: t,
) -> httpx.AsyncClient:
    """The process's client for calling other services; ``traced`` wraps each of its
    transports (``Tracing.transport``: a span and ``traceparent`` on every call)."""
    auth: httpx.Auth | None = None
    if settings.service_client_id and settings.service_client_secret and settings.token_url:
        auth = ClientCredentialsAuth(
            settings.token_url,
            settings.service_client_id,
            settings.service_client_secret.get_secret_value(),
            clock=clock,
        )
    timeout = httpx.Timeout(
        settings.http_timeout_seconds, connect=settings.http_connect_timeout_seconds
    )
    return httpx.AsyncClient(
        auth=auth,
        timeout=timeout,
        transport=traced(httpx.AsyncHTTPTransport()),
        mounts={pattern: traced(transport) for pattern, transport in (mounts or {}).items()},
        event_hooks={"request": [_add_request_id]},
    )


async def _add_request_id(request: httpx.Request) -> None:
    if not request.headers.get("x-request-id"):
        request.headers["x-request-id"] = current_request_id() or uuid.uuid4().hex


class ServiceClient:
    """Calls one other service by its base URL."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, service: str, tracer: Tracer | None = None
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.service = service
        # For the spans of calls made for several traces at once (a batch).
        self.tracer = tracer or NoOpTracer()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | httpx.QueryParams | None = None,
    ) -> httpx.Response:
        """Send a request; a transport failure, a timeout or a 5xx raises ``UpstreamUnavailable``."""
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, self._base_url + path, json=json, params=params
            )
        except httpx.HTTPError as exc:
            log.warning(
                "upstream_unreachable", upstream=self.service, error_type=type(exc).__name__
            )
            raise UpstreamUnavailable(
                f"The {self.service} service could not be reached.", upstream=self.service
            ) from None
        log.debug(
            "upstream_called",
            upstream=self.service,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        # A 429 (this service's client is over its rate) passes like an outage: retried later.
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            log.warning("upstream_failed", upstream=self.service, status=response.status_code)
            raise UpstreamUnavailable(
                f"The {self.service} service answered {response.status_code}.",
                upstream=self.service,
                upstream_status=response.status_code,
            )
        return response


@contextlib.contextmanager
def outage_is_retry() -> Iterator[None]:
    """Around a call made by an outbox step: another service being unreachable, failing or
    busy is a reason to try the job later, not a problem to answer with."""
    try:
        yield
    except UpstreamUnavailable as problem:
        raise RetryLater(str(problem.extensions.get("upstream", "upstream"))) from problem
