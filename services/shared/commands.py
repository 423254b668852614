"""Commands every service's CLI has, for running it in a container: ``serve`` (uvicorn on the
service's app) and ``wait-for-schema`` (an init container's wait for the migration to finish)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import uvicorn
from sqlalchemy.exc import DBAPIError

from services.shared.migrations import current_revisions, head_revisions

SCHEMA_AT_HEAD, SCHEMA_BEHIND = 0, 1


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the API (and its workers, if enabled)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")  # noqa: S104
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    wait = commands.add_parser(
        "wait-for-schema",
        help="wait until the database is at this version's latest migration; exit 1 if not in time",
    )
    wait.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (600)")
    wait.add_argument("--interval", type=float, default=2.0, help="seconds between looks (2)")


def run_command(args: argparse.Namespace, service: str, database_url: str) -> int | None:
    """Run ``args.command`` if it is one of these; None if it is the service's own."""
    if args.command == "serve":
        serve(service, args.host, args.port)
        return 0
    if args.command == "wait-for-schema":
        return asyncio.run(wait_for_schema(database_url, service, args.timeout, args.interval))
    return None


def serve(service: str, host: str, port: int) -> None:
    # One process a container: an orchestrator scales by replicas, not by uvicorn's workers.
    # uvicorn's own lines are not JSON: only its warnings and errors (the service logs each
    # request itself), as make run has it.
    uvicorn.run(
        f"services.{service}.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


async def wait_for_schema(url: str, service: str, wait_seconds: float, interval: float) -> int:
    """Exit status 0 once the database holds every head of this code's migrations, 1 if it
    does not within ``wait_seconds``; prints one line of JSON either way."""
    heads = head_revisions(service)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            current = await current_revisions(url)
        except (OSError, DBAPIError):
            current = None  # the database is not up yet
        if current is not None and heads <= current:
            print(json.dumps({"schema": "at_head", "revisions": sorted(current)}))
            return SCHEMA_AT_HEAD
        if loop.time() >= deadline:
            found = sorted(current) if current is not None else None
            print(json.dumps({"schema": "behind", "heads": sorted(heads), "found": found}))
            return SCHEMA_BEHIND
        print(f"waiting for the {service} migration to {sorted(heads)}", file=sys.stderr)
        await asyncio.sleep(interval)
