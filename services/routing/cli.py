"""``python -m services.routing``: migrate."""

from __future__ import annotations

import argparse
import asyncio

from services.routing.settings import RoutingSettings
from services.shared.migrations import upgrade_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.routing")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the routing database to the latest schema")
    parser.parse_args(argv)
    asyncio.run(upgrade_url(RoutingSettings().database_url, "routing"))
    return 0
