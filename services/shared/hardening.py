"""What every service does to every request before a handler sees it: request bodies capped,
security headers on every answer, cross-origin requests only from configured origins, and
per-client rate limits."""

from __future__ import annotations

import math
import re

from fastapi import FastAPI
from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.shared.clock import system_epoch_seconds
from services.shared.problems import ContentTooLarge, Problem, problem_response
from services.shared.settings import ServiceSettings
from services.shared.state import ServiceState, state_of

# An API answer is data, never a page: nothing may render it, frame it, cache it or send on
# where it came from.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]
NO_STORE = (b"cache-control", b"no-store")


_LENGTH = re.compile(r"[0-9]{1,18}")


class TooManyRequests(Problem):
    type = "urn:spa-platform:problem:too-many-requests"
    title = "Too many requests from this client; retry after the time given"
    status = 429


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes the limit: an HTTP exception, so
    the framework passes it to the problem handlers rather than calling it a parse error."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=_too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"Request bodies are limited to {max_bytes} bytes."


class BodyLimit:
    """Refuses a body over ``max_bytes``: at once when its declared length says so, else as
    soon as the bytes read pass the limit. Either way the handler never runs."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (
            not _LENGTH.fullmatch(declared) or int(declared) > self.max_bytes
        ):
            problem = ContentTooLarge(_too_large(self.max_bytes))
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, and ``Cache-Control: no-store`` unless the
    handler chose its own caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in SECURITY_HEADERS if header[0] not in present]
                if b"cache-control" not in present:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class RateLimits:
    """Per-client limits (``100/second;3000/minute`` style), kept in memory by default or in a
    shared store (``redis://...``) so that every replica counts together."""

    def __init__(self, limits: str, storage_uri: str = "memory://") -> None:
        self._items: list[RateLimitItem] = parse_many(limits) if limits else []
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri))

    async def check(self, bucket: str, key: str) -> None:
        """Count one request of ``key``; raise TooManyRequests, with Retry-After, over a limit."""
        for item in self._items:
            if not await self._limiter.hit(item, bucket, key):
                stats = await self._limiter.get_window_stats(item, bucket, key)
                wait = max(1, math.ceil(stats.reset_time - system_epoch_seconds()))
                raise TooManyRequests(
                    f"This client is limited to {item}; retry in {wait} s.",
                    headers={"Retry-After": str(wait)},
                )


def install(app: FastAPI, settings: ServiceSettings) -> None:
    state_of(app, ServiceState).rate_limits = RateLimits(
        settings.rate_limit, settings.rate_limit_storage_uri
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key", "prefer",
                           "x-request-id"],
            expose_headers=["location", "retry-after", "x-request-id", "idempotent-replayed"],
            max_age=600,
        )  # fmt: skip
