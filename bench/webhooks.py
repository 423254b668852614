"""Webhook delivery speed: deliveries per second to a local receiver, the time from an event
being written to its first attempt, and the time to drain a backlog (as after a receiver's
outage) spread over several endpoints, each with the service's default limit in flight.

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

from sqlalchemy import delete, select

from services.shared.clock import system_clock
from services.shared.db import create_engine, create_sessionmaker
from services.shared.migrations import upgrade_url
from services.shared.outbox import OutboxWorker
from services.spa.webhooks.addresses import networks
from services.spa.webhooks.delivery import Deliverer, delivery_client
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


async def enqueue(sessionmaker: Any, endpoints: list[uuid.UUID], count: int) -> None:
    async with sessionmaker() as session, session.begin():
        for index in range(count):
            event = WebhookEvent(kind="dispatch", status="done", event_type="referral.routed")
            event.event_id = uuid.uuid4()
            session.add(event)
            session.add(
                WebhookMessage(
                    kind="deliver",
                    endpoint_id=endpoints[index % len(endpoints)],
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


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    backlog, rate, seconds = args.backlog, args.rate, args.seconds
    await upgrade_url(database_url, "spa")
    engine = create_engine(database_url, clock=system_clock)
    sessionmaker = create_sessionmaker(engine)
    endpoints = [uuid.uuid4() for _ in range(args.endpoints)]
    async with sessionmaker() as session, session.begin():
        for number, endpoint_id in enumerate(endpoints):
            url = f"http://127.0.0.1:8765/hook/{number}"
            session.add(
                WebhookEndpoint(id=endpoint_id, client_id="bench", url=url, secret=new_secret())
            )
    allowed = networks(["127.0.0.0/8"])
    async with delivery_client(allowed) as http:
        deliverer = Deliverer(
            sessionmaker, http, clock=system_clock, per_endpoint=args.per_endpoint, allow_http_hosts=("127.0.0.1",),
            allowed_networks=allowed,
        )  # fmt: skip
        worker = OutboxWorker(sessionmaker, WebhookMessage, deliverer, service="bench", clock=system_clock,
                              batch_size=64, max_in_flight=256, poll_interval=0.02,
                              claim_filter=deliverer.claim_filter)  # fmt: skip
        # A backlog (as after a receiver's outage): time to drain it.
        await enqueue(sessionmaker, endpoints, backlog)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while await delivered(sessionmaker) < backlog:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)
        drain = time.perf_counter() - started
        # A steady arrival rate: from an event written to its first attempt.
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(WebhookAttempt))
        for _ in range(seconds * 10):
            await enqueue(sessionmaker, endpoints, rate // 10)
            await asyncio.sleep(0.1)
        while await delivered(sessionmaker) < backlog + seconds * rate:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        worker.stop()
        await task
    waits = sorted(await latencies(sessionmaker))
    await engine.dispose()
    return {
        "database": database_url.split("+")[0],
        "endpoints": args.endpoints,
        "per_endpoint_concurrency": args.per_endpoint,
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
               "--log-level", "warning", "--no-access-log", "--http", "httptools",
               "--no-server-header"]  # fmt: skip
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
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument("--per-endpoint", type=int, default=4, help="as the service's default")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    server = start_receiver(8765)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = args.database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
            result = asyncio.run(run(args, url))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
