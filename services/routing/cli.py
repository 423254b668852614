"""``python -m services.routing``: serve; migrate; check-rules; audit-verify."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.routing.audit import AuditEvent, AuditHead
from services.routing.rules.checks import check_rule_set, has_errors
from services.routing.rules.parsing import (
    RuleSetInvalid,
    describe_error,
    finding_error,
    parse_rule_set,
)
from services.routing.settings import RoutingSettings
from services.shared.audit import verify_database
from services.shared.clock import system_clock
from services.shared.commands import add_commands, run_command
from services.shared.migrations import upgrade_url

CHECKS_PASSED, CHECKS_FAILED, UNREADABLE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.routing")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the routing database to the latest schema")
    add_commands(commands)
    check = commands.add_parser(
        "check-rules",
        help="check triage rule files; exit 1 on any error, 2 if a file cannot be read",
    )
    check.add_argument("files", nargs="+", metavar="FILE", type=Path)
    commands.add_parser(
        "audit-verify",
        help="check the audit trail's hash chain; exit 1 if it is broken, 2 if it cannot be read",
    )
    args = parser.parse_args(argv)
    if args.command == "check-rules":
        return max(check_rules_file(path) for path in args.files)
    database_url = RoutingSettings().database_url
    status = run_command(args, "routing", database_url)
    if status is not None:
        return status
    if args.command == "audit-verify":
        return asyncio.run(verify_database(database_url, AuditEvent, AuditHead, system_clock))
    asyncio.run(upgrade_url(database_url, "routing"))
    return 0


def check_rules_file(path: Path) -> int:
    """Print every problem of the rule file at ``path``, one line each; the exit status."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read the file: {exc}", file=sys.stderr)
        return UNREADABLE
    try:
        rule_set = parse_rule_set(text, str(path))
    except RuleSetInvalid as exc:
        for error in exc.errors:
            print(describe_error(error))
        return CHECKS_FAILED
    findings = check_rule_set(rule_set)
    for finding in findings:
        prefix = "warning: " if finding.severity == "warning" else ""
        print(prefix + describe_error(finding_error(finding, str(path))))
    if has_errors(findings):
        return CHECKS_FAILED
    print(f"{path}: no errors, {len(findings)} warnings")
    return CHECKS_PASSED
