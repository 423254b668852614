"""Webhook delivery speed: deliveries per second to a local receiver, the time from an event
being written to its first attempt, and the time to drain a backlog.

    .venv/bin/python bench/webhooks.py [--database-url URL] [--json results.json]

The real delivery worker (row claims, signing, the HTTP POST, the delivery log) sends to a
receiver on this machine that verifies nothing and answers 204, so the figures are ours, not
the receiver's. Without --database-url a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, select

from services.shared.db import create_engine, create_sessionmaker
from services.shared.migrations import upgrade_url
from services.shared.outbox import OutboxWorker
from services.spa.webhooks.addresses import networks
from services.spa.webhooks.delivery import Deliverer
from services.spa.webhooks.models import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from services.spa.webhooks.service import new_secret

TARGET_PER_SECOND = 500
TARGET_P95_SECONDS = 1.0
BODY = json.dumps({"type": "referral.routed", "data": {"referral_id": str(uuid.uuid4()), "seq": 1}})


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def enqueue(sessionmaker: Any, endpoint_id: uuid.UUID, count: int) -> None:
    async with sessionmaker() as session, session.begin():
        for _ in range(count):
            event = WebhookEvent(kind="dispatch", status="done", event_type="referral.routed")
            event.event_id = uuid.uuid4()
            session.add(event)
            session.add(
                WebhookMessage(
                    kind="deliver",
                    endpoint_id=endpoint_id,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    payload=BODY,
                )
            )


async def latencies(sessionmaker: Any) -> list[float]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(WebhookMessage.created_at, WebhookAttempt.attempted_at).join(
                WebhookAttempt, WebhookAttempt.message_id == WebhookMessage.id
            )
        )
        return [(attempted - created).total_seconds() for created, attempted in rows]


async def delivered(sessionmaker: Any) -> int:
    async with sessionmaker() as session:
        rows = await session.scalars(select(WebhookMessage.status))
        return sum(1 for status in rows if status == "done")


async def run(database_url: str, backlog: int, rate: int, seconds: int) -> dict[str, Any]:
    await upgrade_url(database_url, "spa")
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(), client_id="bench", url="http://127.0.0.1:8765/hook", secret=new_secret()
    )
    async with sessionmaker() as session, session.begin():
        session.add(endpoint)
    async with httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_connections=64)) as http:
        deliverer = Deliverer(
            sessionmaker, http, per_endpoint=32, allow_http_hosts=("127.0.0.1",),
            allowed_networks=networks(["127.0.0.0/8"]),
        )  # fmt: skip
        worker = OutboxWorker(sessionmaker, WebhookMessage, deliverer, service="bench",
                              batch_size=128, poll_interval=0.02)  # fmt: skip
        # A backlog (as after a receiver's outage): time to drain it.
        await enqueue(sessionmaker, endpoint.id, backlog)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while await delivered(sessionmaker) < backlog:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)
        drain = time.perf_counter() - started
        # A steady arrival rate: from an event written to its first attempt.
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(WebhookAttempt))
        for _ in range(seconds * 10):
            await enqueue(sessionmaker, endpoint.id, rate // 10)
            await asyncio.sleep(0.1)
        while await delivered(sessionmaker) < backlog + seconds * rate:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        worker.stop()
        await task
    waits = sorted(await latencies(sessionmaker))
    await engine.dispose()
    return {
        "database": database_url.split("+")[0],
        "backlog": backlog,
        "backlog_drain_seconds": round(drain, 2),
        "deliveries_per_second": round(backlog / drain, 1),
        "steady_rate_per_second": rate,
        "first_attempt_p50_seconds": round(statistics.median(waits), 3),
        "first_attempt_p95_seconds": round(statistics.quantiles(waits, n=20)[18], 3),
        "targets": {"deliveries_per_second": TARGET_PER_SECOND, "p95_seconds": TARGET_P95_SECONDS},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    """The receiver runs in a process of its own, as a subscriber's would, so that its work
    is not counted as ours."""
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent),
               "webhooks:receiver", "--port", str(port), "--lifespan", "off",
               "--log-level", "warning", "--no-access-log", "--http", "httptools"]  # fmt: skip
    server = subprocess.Popen(command)  # noqa: S603 - our own fixed command
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the receiver did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    server = start_receiver(8765)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = args.database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
            result = asyncio.run(run(url, args.backlog, args.rate, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
