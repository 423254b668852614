"""``python -m services.teams``: serve, migrate, load a directory."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from services.shared.audit import verify_database
from services.shared.clock import system_clock
from services.shared.commands import add_commands, run_command
from services.shared.db import one_transaction
from services.shared.migrations import upgrade_url
from services.shared.problems import Problem
from services.shared.retention import add_prune_command, prune_database
from services.teams import retention
from services.teams.audit import AuditEvent, AuditHead
from services.teams.directory.file_loads import (
    DirectorySource,
    LoadOutcome,
    LoadRecord,
    load_file_unless_changed,
)
from services.teams.directory.loading import (
    DEMO_DIRECTORY,
    load_directory,
    read_directory_file,
)
from services.teams.settings import TeamsSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.teams")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the teams database to the latest schema")
    add_commands(commands)
    load = commands.add_parser(
        "load-directory", help="load or replace the whole directory from YAML"
    )
    source = load.add_mutually_exclusive_group(required=True)
    source.add_argument("path", nargs="?", type=Path)
    source.add_argument(
        "--demo", action="store_true", help="the fictional demo county shipped with the package"
    )
    load.add_argument(
        "--record",
        type=Path,
        help="remember the load in this file, and on a later load keep a directory changed "
        "since (through the API) rather than replace it",
    )
    load.add_argument(
        "--replace-changes",
        action="store_true",
        help="with --record: load even if the directory was changed since it was loaded",
    )
    commands.add_parser(
        "audit-verify",
        help="check the audit trail's hash chain; exit 1 if it is broken, 2 if it cannot be read",
    )
    add_prune_command(commands)
    args = parser.parse_args(argv)
    settings = TeamsSettings()
    status = run_command(args, "teams", settings.database_url)
    if status is not None:
        return status
    if args.command == "migrate":
        asyncio.run(upgrade_url(settings.database_url, "teams"))
        return 0
    if args.command == "audit-verify":
        return asyncio.run(
            verify_database(settings.database_url, AuditEvent, AuditHead, system_clock)
        )
    if args.command == "prune":
        rules = retention.rules(settings)
        return asyncio.run(
            prune_database(settings.database_url, rules, system_clock, dry_run=args.dry_run)
        )
    path = DEMO_DIRECTORY if args.demo else args.path
    try:
        if args.record is None:
            body: dict[str, Any] = {"loaded": asyncio.run(_load(settings, path))}
        else:
            body = _load_recorded(settings, path, args.record, args.replace_changes)
    except Problem as problem:
        print(json.dumps(problem.body(), indent=2), file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0


async def _load(settings: TeamsSettings, path: Path) -> dict[str, int]:
    directory = read_directory_file(path)
    async with one_transaction(settings.database_url, system_clock) as session:
        return await load_directory(
            session, directory, actor=f"cli:{getpass.getuser()}", now=system_clock()
        )


def _load_recorded(
    settings: TeamsSettings, path: Path, record_file: Path, replace_changes: bool
) -> dict[str, Any]:
    record = LoadRecord.from_json(record_file.read_text()) if record_file.exists() else None
    outcome = asyncio.run(
        _load_unless_changed(settings, DirectorySource.read(path), record, replace_changes)
    )
    if outcome.record is not None and outcome.record != record:
        record_file.write_text(outcome.record.to_json())
    return outcome.body()


async def _load_unless_changed(
    settings: TeamsSettings,
    file: DirectorySource,
    record: LoadRecord | None,
    replace_changes: bool,
) -> LoadOutcome:
    async with one_transaction(settings.database_url, system_clock) as session:
        return await load_file_unless_changed(
            session,
            file,
            record,
            replace_changes=replace_changes,
            actor=f"cli:{getpass.getuser()}",
            now=system_clock(),
        )
