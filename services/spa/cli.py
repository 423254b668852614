"""``python -m services.spa``: serve, migrate, create the issuer's key, register clients."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from services.shared.audit import verify_database
from services.shared.clock import system_clock
from services.shared.commands import add_commands, run_command
from services.shared.db import one_transaction
from services.shared.migrations import upgrade_url
from services.shared.retention import add_prune_command, prune_database
from services.spa import retention
from services.spa.audit import AuditEvent, AuditHead
from services.spa.identity import service as identity
from services.spa.identity.keys import write_new_key
from services.spa.settings import SpaSettings
from services.spa.webhooks import addresses
from services.spa.webhooks import service as webhooks
from services.spa.webhooks.problems import EndpointRefused


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.spa")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the spa database to the latest schema")
    add_commands(commands)
    key = commands.add_parser(
        "issuer-key", help="create the built-in issuer's signing key if missing"
    )
    key.add_argument("path", type=Path)
    register = commands.add_parser(
        "register-client", help="register a calling system; prints its secret once"
    )
    register.add_argument("--client-id", required=True)
    register.add_argument("--name", required=True)
    register.add_argument("--scopes", nargs="+", required=True)
    register.add_argument("--audiences", nargs="+", required=True)
    register.add_argument(
        "--channels", nargs="*", default=[], help="intake channels it may post on"
    )
    register.add_argument("--teams", nargs="*", default=[], help="codes of the teams it acts for")
    register.add_argument(
        "--localities",
        nargs="*",
        default=[],
        help="codes of the localities whose queue it works ('*' for all)",
    )
    register.add_argument("--secret-env", help="take the secret from this environment variable")
    register.add_argument(
        "--replace", action="store_true", help="replace an existing client's settings and secret"
    )
    rotate = commands.add_parser(
        "rotate-secret", help="give a client a new secret (printed once); the old one stops"
    )
    rotate.add_argument("--client-id", required=True)
    rotate.add_argument("--secret-env", help="take the secret from this environment variable")
    revoke = commands.add_parser(
        "revoke-client", help="stop a client: no new tokens; its subscriptions get no events"
    )
    revoke.add_argument("--client-id", required=True)
    bars = commands.add_parser(
        "register-bars-endpoint",
        help="where the replies to a BaRS client's referrals go; prints the endpoint once",
    )
    bars.add_argument("--client-id", required=True)
    bars.add_argument(
        "--source",
        required=True,
        help="the MessageHeader.source.endpoint its messages name (e.g. a DoS service id as "
        "https://fhir.nhs.uk/Id/dos-service-id|2000012345)",
    )
    bars.add_argument("--url", required=True, help="its $process-message, where replies are sent")
    bars.add_argument(
        "--header-env",
        action="append",
        default=[],
        metavar="NAME=VARIABLE",
        help="a header sent with every reply (its credentials), its value taken from this "
        "environment variable; repeat for several",
    )
    commands.add_parser(
        "audit-verify",
        help="check the audit trail's hash chain; exit 1 if it is broken, 2 if it cannot be read",
    )
    add_prune_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = SpaSettings()
    status = run_command(args, "spa", settings.database_url)
    if status is not None:
        return status
    if args.command == "migrate":
        asyncio.run(upgrade_url(settings.database_url, "spa"))
    elif args.command == "issuer-key":
        if not args.path.exists():
            write_new_key(args.path)
    elif args.command == "audit-verify":
        return asyncio.run(
            verify_database(settings.database_url, AuditEvent, AuditHead, system_clock)
        )
    elif args.command == "prune":
        rules = retention.rules(settings)
        return asyncio.run(
            prune_database(settings.database_url, rules, system_clock, dry_run=args.dry_run)
        )
    elif args.command in ("rotate-secret", "revoke-client"):
        return asyncio.run(_change_client(settings, args))
    elif args.command == "register-bars-endpoint":
        return asyncio.run(_register_bars_endpoint(settings, args))
    else:
        return asyncio.run(_register(settings, args))
    return 0


async def _change_client(settings: SpaSettings, args: argparse.Namespace) -> int:
    secret = None
    if args.command == "rotate-secret":
        secret = _secret(args)
        if secret is None:
            return 2
    async with one_transaction(settings.database_url, system_clock) as session:
        if secret is not None:
            changed = await identity.rotate_secret(session, args.client_id, secret)
        else:
            changed = await identity.revoke_client(session, args.client_id, system_clock())
    if not changed:
        print(f"no active client {args.client_id}", file=sys.stderr)
        return 1
    output = {"client_id": args.client_id}
    if secret is not None and not args.secret_env:
        output["client_secret"] = secret
    if args.command == "revoke-client":
        output["revoked"] = "true"
    print(json.dumps(output))
    return 0


def _secret(args: argparse.Namespace) -> str | None:
    secret = os.environ.get(args.secret_env, "") if args.secret_env else identity.generate_secret()
    if len(secret) < 16:
        print("the secret must be at least 16 characters", file=sys.stderr)
        return None
    return secret


async def _register(settings: SpaSettings, args: argparse.Namespace) -> int:
    secret = _secret(args)
    if secret is None:
        return 2
    try:
        async with one_transaction(settings.database_url, system_clock) as session:
            await identity.register_client(
                session,
                client_id=args.client_id,
                name=args.name,
                secret=secret,
                scopes=args.scopes,
                audiences=args.audiences,
                channels=args.channels,
                teams=args.teams,
                localities=args.localities,
                replace=args.replace,
            )
    except identity.ClientExists:
        print(f"client {args.client_id} exists; use --replace to change it", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    output = {"client_id": args.client_id}
    if not args.secret_env:
        output["client_secret"] = secret
    print(json.dumps(output))
    return 0


def _headers_from_environment(pairs: list[str]) -> dict[str, str] | None:
    """``NAME=VARIABLE`` pairs as headers, each value read from its variable (a credential
    never appears on a command line); None, said why, if one is malformed or unset."""
    headers = {}
    for pair in pairs:
        name, equals, variable = pair.partition("=")
        value = os.environ.get(variable) if equals else None
        if not name or not value:
            print(f"--header-env {pair!r}: give NAME=VARIABLE, the variable set", file=sys.stderr)
            return None
        headers[name] = value
    return headers


async def _register_bars_endpoint(settings: SpaSettings, args: argparse.Namespace) -> int:
    headers = _headers_from_environment(args.header_env)
    if headers is None:
        return 2
    policy = webhooks.UrlPolicy(
        settings.webhook_allow_http_hosts, addresses.networks(settings.webhook_allowed_networks)
    )
    try:
        async with one_transaction(settings.database_url, system_clock) as session:
            endpoint = await webhooks.register_bars_endpoint(
                session,
                client_id=args.client_id,
                source=args.source,
                url=args.url,
                headers=headers,
                policy=policy,
            )
            output = {
                "endpoint_id": str(endpoint.id),
                "client_id": endpoint.client_id,
                "source": args.source,
                "url": endpoint.url,
                "headers": endpoint.header_names,
                # Replies are signed as webhooks are, for a sender that checks them.
                "signing_secret": endpoint.secret,
            }
    except webhooks.ClientUnknown:
        print(f"no active client {args.client_id}", file=sys.stderr)
        return 1
    except EndpointRefused as refusal:
        print(f"replies may not be sent to that URL: {refusal.detail}", file=sys.stderr)
        return 2
    print(json.dumps(output))
    return 0
