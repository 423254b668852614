"""Calling another service: one ``httpx.AsyncClient`` per process, our own token, the request id.

An upstream failure is wrapped as ``UpstreamUnavailable``, never passed off as our own status.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from services.shared.logging import current_request_id
from services.shared.problems import UpstreamUnavailable
from services.shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


class ClientCredentialsAuth(httpx.Auth):
    """Obtains and caches an OAuth2 client-credentials token; fetches a new one shortly before it
    expires, or once more when the callee says the token is no longer good (a key rotation)."""

    requires_response_body = True
    _refresh_margin_seconds = 30.0

    def __init__(self, token_url: str, client_id: str, client_secret: str) -> None:
        self._token_url = token_url
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._basic = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._token: str | None = None
        self._expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or time.monotonic() >= self._expires_at:
            self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self._basic},
        )

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            log.error("service_token_refused", status=response.status_code)
            raise UpstreamUnavailable("This service could not obtain a token to call another.")
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 60))
        self._expires_at = time.monotonic() + max(lifetime - self._refresh_margin_seconds, 1.0)


def create_http_client(
    settings: ServiceSettings, mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> httpx.AsyncClient:
    auth: httpx.Auth | None = None
    if settings.service_client_id and settings.service_client_secret and settings.token_url:
        auth = ClientCredentialsAuth(
            settings.token_url,
            settings.service_client_id,
            settings.service_client_secret.get_secret_value(),
        )
    timeout = httpx.Timeout(
        settings.http_timeout_seconds, connect=settings.http_connect_timeout_seconds
    )
    return httpx.AsyncClient(
        auth=auth,
        timeout=timeout,
        mounts=dict(mounts or {}),
        event_hooks={"request": [_add_request_id]},
    )


async def _add_request_id(request: httpx.Request) -> None:
    if not request.headers.get("x-request-id"):
        request.headers["x-request-id"] = current_request_id() or uuid.uuid4().hex


class ServiceClient:
    """Calls one other service by its base URL."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, service: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.service = service

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
