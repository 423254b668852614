"""``make run``: the whole system on this machine, on SQLite, with the demo county.

Creates the issuer's key, migrates the three databases, loads the demo directory, registers
the services' own clients and two demo clients (new secrets on every start), starts the
three services with uvicorn, and prints a ready-to-paste ``curl``. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("SPA_PLATFORM_VAR", ROOT / "var"))
HOST = os.environ.get("SPA_PLATFORM_HOST", "127.0.0.1")
PORTS = {
    "spa": int(os.environ.get("SPA_PORT", "8001")),
    "routing": int(os.environ.get("ROUTING_PORT", "8002")),
    "teams": int(os.environ.get("TEAMS_PORT", "8003")),
}
URLS = {name: f"http://{HOST}:{port}" for name, port in PORTS.items()}
# The demo team client acts for every team of the demo county.
DEMO_TEAMS = (
    "lit-north plmdt-north-1 plmdt-north-2 int-east-1 int-east-2 lit-south plmdt-south-1 "
    "plmdt-south-2 plmdt-south-3 equipment-county cru-county contact-county ooh-county"
)


def service_environment() -> dict[str, str]:
    """Configuration of all three services; each reads only its own prefix."""
    env = dict(os.environ)
    env.update(
        {
            "SPA_DATABASE_URL": f"sqlite+aiosqlite:///{VAR / 'spa.db'}",
            "ROUTING_DATABASE_URL": f"sqlite+aiosqlite:///{VAR / 'routing.db'}",
            "TEAMS_DATABASE_URL": f"sqlite+aiosqlite:///{VAR / 'teams.db'}",
            "SPA_ISSUER_KEY_FILES": json.dumps([str(VAR / "issuer-key.pem")]),
            "SPA_ROUTING_URL": URLS["routing"],
            "SPA_TEAMS_URL": URLS["teams"],
            "ROUTING_TEAMS_URL": URLS["teams"],
            "ROUTING_AUTH_JWKS_URL": f"{URLS['spa']}/.well-known/jwks.json",
            "TEAMS_AUTH_JWKS_URL": f"{URLS['spa']}/.well-known/jwks.json",
            "TEAMS_SPA_URL": URLS["spa"],
            "TEAMS_TOKEN_URL": f"{URLS['spa']}/oauth/token",
            # The demo's Open Referral feed is public, as a council's directory would be.
            "TEAMS_OPENREFERRAL_ANONYMOUS_READ": "true",
            "SPA_TOKEN_URL": f"{URLS['spa']}/oauth/token",
            "ROUTING_TOKEN_URL": f"{URLS['spa']}/oauth/token",
            # Webhooks to a receiver on this machine (examples/webhook_receiver.py).
            "SPA_WEBHOOK_ALLOW_HTTP_HOSTS": json.dumps(["127.0.0.1", "localhost"]),
            "SPA_WEBHOOK_ALLOWED_NETWORKS": json.dumps(["127.0.0.0/8", "::1/128"]),
        }
    )
    for prefix in ("SPA", "ROUTING", "TEAMS"):
        env.setdefault(f"{prefix}_LOG_FORMAT", "console")
    return env


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout


def register(env: dict[str, str], client_id: str, scopes: str, audiences: str, **bound: str) -> str:
    """Register (or re-register) a client with a new secret; ``bound`` adds channels or teams."""
    secret = secrets.token_urlsafe(24)
    env = {**env, "NEW_CLIENT_SECRET": secret}
    args = ["-m", "services.spa", "register-client", "--client-id", client_id, "--name", client_id]
    args += ["--scopes", *scopes.split(), "--audiences", *audiences.split()]
    for option, values in bound.items():
        args += [f"--{option}", *values.split()]
    run(env, *args, "--secret-env", "NEW_CLIENT_SECRET", "--replace")
    return secret


SERVICE_CLIENTS = {
    "SPA": (
        "spa-service",
        "decisions:create assignments:create directory:read",
        "routing teams",
    ),
    "ROUTING": ("routing-service", "directory:read", "teams"),
    "TEAMS": ("teams-service", "assignments:report", "spa"),
}


def prepare(env: dict[str, str]) -> dict[str, str]:
    VAR.mkdir(parents=True, exist_ok=True)
    run(env, "-m", "services.spa", "issuer-key", str(VAR / "issuer-key.pem"))
    for service in PORTS:
        run(env, "-m", f"services.{service}", "migrate")
    run(env, "-m", "services.teams", "load-directory", "--demo")
    for prefix, (client_id, scopes, audiences) in SERVICE_CLIENTS.items():
        env[f"{prefix}_SERVICE_CLIENT_ID"] = client_id
        env[f"{prefix}_SERVICE_CLIENT_SECRET"] = register(env, client_id, scopes, audiences)
    team_scopes = "caseload:manage directory:read decisions:read referrals:read"
    return {
        "demo-gp": register(
            env,
            "demo-gp",
            "referrals:create referrals:read subscriptions:manage",
            "spa",
            channels="gp",
        ),
        "demo-team": register(env, "demo-team", team_scopes, "teams routing spa", teams=DEMO_TEAMS),
        "demo-call-handlers": register(
            env, "demo-call-handlers", "queue:work referrals:read", "spa", localities="*"
        ),
    }


def start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    processes = []
    for service, port in PORTS.items():
        command = [
            sys.executable, "-m", "uvicorn", "--factory", f"services.{service}.main:app_from_environment",
            "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning",
            "--no-server-header",
        ]  # fmt: skip
        # A session of its own, so that Ctrl-C reaches only this launcher, which then stops
        # each service once and waits for it.
        processes.append(subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True))
    return processes


def wait_ready(processes: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for url in URLS.values():
        while True:
            if any(process.poll() is not None for process in processes):
                raise SystemExit("a service stopped while starting; see its output above")
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not become ready")
            time.sleep(0.2)


def instructions(demo_secrets: dict[str, str]) -> str:
    spa = URLS["spa"]
    body = json.dumps(
        {
            "channel": "gp",
            "urgency": "crisis",
            "patient": {
                "nhs_number": "9990001235",
                "given_name": "Ada",
                "family_name": "Example",
                "date_of_birth": "1938-05-04",
                "postcode": "XW1 2ZZ",
                "registered_practice": "M91001",
            },
            "needs": ["fall"],
            "consent": {"basis": "direct_care_implied"},
            "reason": "Fell at home this morning, no apparent injury, now unsteady.",
        }
    )
    token = (
        f"TOKEN=$(curl -s -u demo-gp:{demo_secrets['demo-gp']} -d grant_type=client_credentials "
        f"{spa}/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    post = (
        f'curl -s -X POST {spa}/v1/referrals -H "Authorization: Bearer $TOKEN" '
        "-H \"Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')\" "
        f"-H 'Prefer: wait=5' -H 'Content-Type: application/json' -d '{body}' "
        "| python3 -m json.tool"
    )
    lines = [f"  {name:<8} {url}" for name, url in URLS.items()]
    return "\n".join(
        [
            "",
            "The SPA platform is running (Ctrl-C stops it):",
            *lines,
            "",
            "Post a referral as the demo GP system; the answer waits (up to 5 s) for its routing.",
            "(Posted again, the same patient and need is held for a call handler as a possible",
            "duplicate.)",
            "",
            token,
            post,
            "",
            f"Demo team client (caseloads, directory, decisions, its referrals): demo-team / {demo_secrets['demo-team']}",
            f"Demo call-handler client (every locality's queue): demo-call-handlers / {demo_secrets['demo-call-handlers']}",
            f"Open Referral UK feed of the directory, open to anyone: {URLS['teams']}/openreferral/",
            "",
        ]
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    env = service_environment()
    try:
        demo_secrets = prepare(env)
    except subprocess.CalledProcessError as failure:
        print(failure.stderr or failure.stdout, file=sys.stderr)
        return 1
    processes = start(env)
    try:
        wait_ready(processes)
        print(instructions(demo_secrets), flush=True)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
