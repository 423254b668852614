"""A real HTTP server that receives webhooks, for the tests: uvicorn on a free port, answering
as the test programs it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

# How far a delivery's timestamp may be from the receiver's clock, as the library allows.
TOLERANCE_SECONDS = 5 * 60


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers with the queued (status, delay, body) or 204."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: deque[tuple[int, float, bytes, dict[str, str]]] = field(default_factory=deque)
    # Paths that always answer this many seconds late (a slow subscriber).
    slow: dict[str, float] = field(default_factory=dict)

    def answer(
        self,
        status: int,
        delay: float = 0.0,
        body: bytes = b"ok",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.answers.append((status, delay, body, headers or {}))

    def at(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        extra: dict[str, str]
        if scope["path"] in self.slow:
            status, delay, reply, extra = 204, self.slow[scope["path"]], b"", {}
        else:
            status, delay, reply, extra = (
                self.answers.popleft() if self.answers else (204, 0.0, b"", {})
            )
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body))
        if delay:
            await asyncio.sleep(delay)
        sent = [(name.encode(), value.encode()) for name, value in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": sent})
        await send({"type": "http.response.body", "body": reply})


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = Receiver(base_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        receiver, host="127.0.0.1", port=port, lifespan="off", ws="none", http="h11",
        log_level="warning", access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event to wait on
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


def verify(secret: str, item: Received, now: datetime) -> Any:
    """Check a delivery as a Standard Webhooks receiver does, with the receiver's clock reading
    ``now``: a timestamp within five minutes, and a signature by ``secret`` of id.timestamp.body
    among those sent. Returns the parsed body."""
    message_id = item.headers["webhook-id"]
    timestamp = int(item.headers["webhook-timestamp"])
    if abs(timestamp - now.timestamp()) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("the timestamp is too far from the receiver's clock")
    expected = Webhook(secret).sign(
        message_id, datetime.fromtimestamp(timestamp, UTC), item.body.decode()
    )
    if expected not in item.headers["webhook-signature"].split(" "):
        raise WebhookVerificationError("no signature matches")
    return json.loads(item.body)
