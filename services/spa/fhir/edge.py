"""The edge of the FHIR door: on every answer under /FHIR/R4 the X-Correlation-Id is mirrored
and every problem document, whoever raised it (a handler, authentication, the rate limit, the
body limit, strict input, the bare 500 of an unexpected failure), becomes an OperationOutcome
with its BaRS error code. The JSON API under /v1 keeps its problem documents.

Installed outermost, so that it sees what every other middleware answers.
"""

from __future__ import annotations

import json
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.shared.problems import PROBLEM_CONTENT_TYPE
from services.spa.fhir import outcomes

PREFIX = "/FHIR/R4"
FHIR_JSON = "application/fhir+json; charset=utf-8"
CORRELATION_HEADER = "x-correlation-id"
# Mirrored only when it is what BaRS says it is: an answer must not carry arbitrary text.
UUID_TEXT = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class FhirEdge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not under_prefix(scope["path"]):
            await self.app(scope, receive, send)
            return
        correlation = Headers(scope=scope).get(CORRELATION_HEADER)
        mirrored = correlation if correlation and UUID_TEXT.match(correlation) else None
        held: Message | None = None
        chunks: list[bytes] = []

        async def translating(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if mirrored:
                    headers[CORRELATION_HEADER] = mirrored
                if headers.get("content-type", "").startswith(PROBLEM_CONTENT_TYPE):
                    held = message  # sent with the translated body, whose length differs
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            held["status"], body = _translated(b"".join(chunks), held["status"])
            headers = MutableHeaders(scope=held)
            headers["content-type"] = FHIR_JSON
            headers["content-length"] = str(len(body))
            await send(held)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, translating)


def _translated(body: bytes, status: int) -> tuple[int, bytes]:
    try:
        problem = json.loads(body)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    status = outcomes.status_of(problem, status)
    outcome = outcomes.from_problem(problem, status)
    return status, json.dumps(outcome, separators=(",", ":")).encode()
