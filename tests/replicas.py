"""Two replicas of every process behind HAProxy, on a PostgreSQL cluster of the run's own, under a
steady load while replicas are killed and PostgreSQL restarts: the harness of the replica test
(``tests/e2e/test_replicas.py``) and of ``bench/replicas.py``.

What runs: two spa API processes, two spa worker processes (routing, timers, webhooks), two
routing and two teams processes (each teams process runs its reporter), every one a uvicorn
process on a port of its own. HAProxy (Debian's package) balances each service's two API
replicas behind one address, with health checks on ``/readyz``; every call, the load's and the
services' calls to each other, goes through it, as it would through a Kubernetes Service.
PostgreSQL is a cluster made with ``initdb`` in a scratch directory and run with ``pg_ctl`` on a
free port, so that restarting it touches nothing else on the machine.

The load posts synthetic referrals (each patient once) at a steady rate, as a referrer's system
would: a referral is retried under its own ``Idempotency-Key`` until it is accepted (a ``201``
or ``202``), whatever went wrong on the way (a connection reset by a replica that died, a ``503``
while PostgreSQL was down), for up to two minutes. A webhook subscription hears every event.
Meanwhile one replica of each kind in turn is killed with SIGKILL and started again, and then
PostgreSQL is stopped as a crash would (``pg_ctl stop -m immediate``) and started again.

Once the load is posted, the run waits for the system to drain (no referral still ``received``,
no route job or webhook message still due) and then reports, from the services' own databases
and from what the webhook receiver was sent: referrals accepted and stored (none lost),
referrals stored twice, duplicate care assignments, referrals not routed, and whether every
webhook event reached the receiver, with each referral's events numbered without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from services.shared.db import create_engine
from services.shared.migrations import upgrade_url
from tests import factories
from tests.receiver import Receiver, running_receiver
from tests.stack import CLIENTS, ClientSpec, load_demo_directory, register_clients

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("spa", "routing", "teams")
# The kinds of process, each run twice; the load balancer fronts the API kinds.
KINDS = ("spa", "spa-worker", "routing", "teams")
REPLICAS = ("a", "b")
# The load's own client: every channel it posts on, and the webhook subscription.
LOAD_CLIENT = ClientSpec(
    "replica-load",
    ["referrals:create", "referrals:read", "subscriptions:manage"],
    ["spa"],
    ["gp", "ambulance", "hospital_discharge", "care_home", "community_team"],
    secret="replica-load-secret-0123",
)
# (channel, urgency, needs, practice): a mix of pathways across the demo county's localities.
CASES = [
    ("ambulance", "crisis", ["fall"], "M93002"),
    ("gp", "urgent", ["post_discharge_support", "personal_care"], "M91001"),
    ("hospital_discharge", "urgent", ["post_discharge_support"], "M92001"),
    ("gp", "routine", ["mobility_assessment"], "M92004"),
    ("care_home", "routine", ["equipment"], "M91003"),
    ("community_team", "routine", ["ltc_management", "medication_review"], "M93004"),
]
ACCEPTED = (200, 201, 202)
# Answers a referrer's system retries under the same key: the request may not have been taken.
RETRIED = (409, 425, 429, 500, 502, 503, 504)
ACTIVE = ("assigned", "accepted")


@dataclass(frozen=True)
class Plan:
    referrals: int = 600
    rate: float = 12.0  # referrals posted a second
    down_seconds: float = 3.0  # how long a killed replica, or PostgreSQL, stays down
    drain_seconds: float = 240.0
    give_up_seconds: float = 120.0  # how long one referral is retried before the load gives up


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def missing_tools() -> list[str]:
    """What the machine lacks for this run (Debian's haproxy, PostgreSQL's server binaries)."""
    missing = [] if shutil.which("haproxy") else ["haproxy"]
    if ScratchPostgres.binaries() is None:
        missing.append("PostgreSQL server binaries (initdb, pg_ctl)")
    return missing


class ScratchPostgres:
    """A PostgreSQL cluster of the run's own: ``initdb`` in a scratch directory, ``pg_ctl`` to
    start, crash and restart it. PostgreSQL refuses to run as root, so under root its commands
    run as the ``postgres`` user, which owns the directory."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        bindir = self.binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl were not found")
        self.bindir = bindir

    @staticmethod
    def binaries() -> Path | None:
        found = shutil.which("pg_ctl")
        if found:
            return Path(found).parent
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        return Path(candidates[-1]).parent if candidates else None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, text=True)

    def initialise(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.directory} -c max_connections=300"
        )
        log = self.directory / "postgresql.log"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
                  "-t", "60", "-o", options, "start")  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, every connection cut."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                  "stop")  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


class Balancer:
    """HAProxy in front of each service's two API replicas, with health checks on /readyz."""

    def __init__(self, directory: Path, fronts: dict[str, int], backends: dict[str, list[int]]):
        self.config = directory / "haproxy.cfg"
        self.log = directory / "haproxy.log"
        self.fronts = fronts
        lines = [
            "global", "    maxconn 4096",
            "defaults", "    mode http", "    timeout connect 2s", "    timeout client 60s",
            "    timeout server 60s", "    retries 3", "    option redispatch",
        ]  # fmt: skip
        for service, port in fronts.items():
            lines += [f"frontend {service}", f"    bind 127.0.0.1:{port}",
                      f"    default_backend {service}_replicas",
                      f"backend {service}_replicas", "    balance roundrobin",
                      "    option httpchk GET /readyz", "    http-check expect status 200",
                      # A replica busy catching up answers its probe late, not never.
                      "    timeout check 3s", "    default-server inter 1s fall 3 rise 2"]  # fmt: skip
            lines += [
                f"    server {service}-{replica} 127.0.0.1:{backend} check"
                for replica, backend in zip(REPLICAS, backends[service], strict=True)
            ]
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        haproxy = shutil.which("haproxy") or "haproxy"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [haproxy, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        for port in self.fronts.values():
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"HAProxy did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)


class Replicas:
    """Every process of the run, each on a port of its own, started, killed and started again."""

    def __init__(self, env: dict[str, str], ports: dict[str, int], logs: Path) -> None:
        self.env = env
        self.ports = ports
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *names: str) -> None:
        for name in names:
            kind = name.rsplit("-", 1)[0]
            service = kind.split("-")[0]
            env = dict(self.env)
            if service == "spa":
                env["SPA_BACKGROUND_WORKERS"] = "true" if kind == "spa-worker" else "false"
            command = [sys.executable, "-m", "uvicorn", "--factory",
                       f"services.{service}.main:app_from_environment", "--host", "127.0.0.1",
                       "--port", str(self.ports[name]), "--no-access-log", "--no-server-header",
                       "--log-level", "warning"]  # fmt: skip
            with (self.logs / f"{name}.log").open("ab") as log:
                self.running[name] = subprocess.Popen(
                    command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        for name in names:
            self.wait_ready(name)

    def wait_ready(self, name: str, within: float = 180.0) -> None:
        deadline = time.monotonic() + within
        url = f"http://127.0.0.1:{self.ports[name]}/readyz"
        while True:
            with contextlib.suppress(httpx.TransportError):
                # A worker process catching up after its restart answers its probe slowly.
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            process = self.running[name]
            if time.monotonic() > deadline or process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} did not become ready:\n{tail}")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGINT)
        for process in self.running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()


@dataclass
class Load:
    """A referrer's system posting at a steady rate and retrying each referral until accepted."""

    spa_url: str
    plan: Plan
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> referral id
    answers: Counter[str] = field(default_factory=Counter)
    refused: list[tuple[int, str]] = field(default_factory=list)
    gave_up: int = 0
    token: str | None = None

    async def _token(self, http: httpx.AsyncClient) -> str:
        while self.token is None:
            try:
                answer = await http.post(
                    f"{self.spa_url}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(LOAD_CLIENT.client_id, LOAD_CLIENT.secret),
                )
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            if answer.status_code == 200:
                self.token = answer.json()["access_token"]
            else:
                await asyncio.sleep(0.5)
        return self.token

    async def one(self, http: httpx.AsyncClient, body: dict[str, Any]) -> None:
        key = str(uuid.uuid4())
        deadline = time.monotonic() + self.plan.give_up_seconds
        pause = 0.2
        while time.monotonic() < deadline:
            headers = {
                "Authorization": f"Bearer {await self._token(http)}",
                "Idempotency-Key": key,
            }
            try:
                answer = await http.post(f"{self.spa_url}/v1/referrals", json=body, headers=headers)
            except httpx.TransportError as exc:
                self.answers[type(exc).__name__] += 1
            else:
                self.answers[str(answer.status_code)] += 1
                if answer.status_code in ACCEPTED:
                    self.accepted[key] = answer.json()["id"]
                    return
                if answer.status_code == 401:
                    self.token = None
                    continue
                if answer.status_code not in RETRIED:
                    self.refused.append((answer.status_code, answer.text[:300]))
                    return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 3.0)
        self.gave_up += 1

    async def run(self) -> None:
        numbers = factories.nhs_numbers(0)
        # Every referral in flight may hold a connection; none waits for the pool to give one.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=httpx.Timeout(15, pool=None), limits=limits) as http:
            tasks = []
            start = time.monotonic()
            for index in range(self.plan.referrals):
                delay = start + index / self.plan.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                channel, urgency, needs, practice = CASES[index % len(CASES)]
                body = factories.referral(
                    channel=channel, urgency=urgency, needs=needs, practice=practice,
                    postcode=None, reason="Synthetic referral for the replica test.",
                )  # fmt: skip
                body["patient"]["nhs_number"] = next(numbers)
                tasks.append(asyncio.create_task(self.one(http, body)))
            await asyncio.gather(*tasks)


@dataclass
class Interruption:
    what: str
    at_seconds: float  # from the start of the load
    down_seconds: float
    back_in_seconds: float  # from being started again to answering /readyz


class Cluster:
    """The whole run's processes, the databases they own, and what it found."""

    def __init__(self, scratch: Path, plan: Plan) -> None:
        self.scratch = scratch
        self.plan = plan
        self.postgres = ScratchPostgres(scratch / "postgres", free_port())
        self.fronts = {service: free_port() for service in SERVICES}
        names = [f"{kind}-{replica}" for kind in KINDS for replica in REPLICAS]
        self.ports = {name: free_port() for name in names}
        self.urls = {service: f"http://127.0.0.1:{port}" for service, port in self.fronts.items()}
        self.database_urls = {
            service: self.postgres.url(f"replicas_{service}") for service in SERVICES
        }
        backends = {s: [self.ports[f"{s}-{r}"] for r in REPLICAS] for s in SERVICES}
        self.balancer = Balancer(scratch, self.fronts, backends)
        (scratch / "logs").mkdir(exist_ok=True)
        self.replicas = Replicas(self.environment(), self.ports, scratch / "logs")
        self.interruptions: list[Interruption] = []

    def environment(self) -> dict[str, str]:
        spa_client, routing_client = CLIENTS[0], CLIENTS[1]
        spa = self.urls["spa"]
        env = {
            **os.environ,
            "SPA_ISSUER_KEY_FILES": json.dumps([str(self.scratch / "issuer-key.pem")]),
            "SPA_ROUTING_URL": self.urls["routing"],
            "SPA_TEAMS_URL": self.urls["teams"],
            "SPA_TOKEN_URL": f"{spa}/oauth/token",
            "SPA_SERVICE_CLIENT_ID": spa_client.client_id,
            "SPA_SERVICE_CLIENT_SECRET": spa_client.secret,
            "SPA_WEBHOOK_ALLOW_HTTP_HOSTS": json.dumps(["127.0.0.1"]),
            "SPA_WEBHOOK_ALLOWED_NETWORKS": json.dumps(["127.0.0.0/8"]),
            "ROUTING_TEAMS_URL": self.urls["teams"],
            "ROUTING_AUTH_JWKS_URL": f"{spa}/.well-known/jwks.json",
            "ROUTING_TOKEN_URL": f"{spa}/oauth/token",
            "ROUTING_SERVICE_CLIENT_ID": routing_client.client_id,
            "ROUTING_SERVICE_CLIENT_SECRET": routing_client.secret,
            "TEAMS_AUTH_JWKS_URL": f"{spa}/.well-known/jwks.json",
            "TEAMS_SPA_URL": spa,
            "TEAMS_TOKEN_URL": f"{spa}/oauth/token",
        }
        for service in SERVICES:
            prefix = service.upper()
            env[f"{prefix}_DATABASE_URL"] = self.database_urls[service]
            env[f"{prefix}_LOG_FORMAT"] = "json"
            # One referrer posting for a whole county: no client limit should hold it back.
            env[f"{prefix}_RATE_LIMIT"] = "100000/second"
            # Eight processes on one server: small pools (the cluster allows 300 connections).
            env[f"{prefix}_DATABASE_POOL_SIZE"] = "8"
            env[f"{prefix}_DATABASE_MAX_OVERFLOW"] = "4"
        return env

    async def prepare(self) -> None:
        from services.spa.identity.keys import write_new_key

        write_new_key(self.scratch / "issuer-key.pem")
        self.postgres.initialise()
        await asyncio.to_thread(self.postgres.start)
        admin = create_engine(self.postgres.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as connection:
                for service in SERVICES:
                    await connection.execute(text(f'CREATE DATABASE "replicas_{service}"'))
        finally:
            await admin.dispose()
        for service in SERVICES:
            await upgrade_url(self.database_urls[service], service)
        await register_clients(self.database_urls["spa"], [*CLIENTS, LOAD_CLIENT])
        await load_demo_directory(self.database_urls["teams"])

    async def start(self) -> None:
        names = list(self.ports)
        await asyncio.to_thread(self.replicas.start, *names)
        await asyncio.to_thread(self.balancer.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.replicas.stop_all)
        await asyncio.to_thread(self.balancer.stop)
        await asyncio.to_thread(self.postgres.stop)

    async def subscribe(self, receiver: Receiver) -> None:
        async with httpx.AsyncClient(base_url=self.urls["spa"], timeout=15) as http:
            token = await Load(self.urls["spa"], self.plan)._token(http)
            answer = await http.post(
                "/v1/subscriptions",
                json={"url": f"{receiver.base_url}/events", "event_types": []},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
            )
            answer.raise_for_status()

    async def interrupt(self, started: float) -> None:
        """One replica of each kind in turn killed and started again, then PostgreSQL."""
        duration = self.plan.referrals / self.plan.rate
        steps = [*KINDS, "postgresql"]
        for index, what in enumerate(steps):
            # Spread over the middle of the load, so each happens while referrals arrive.
            at = started + duration * (0.1 + 0.75 * index / len(steps))
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            began = time.monotonic()
            if what == "postgresql":
                await asyncio.to_thread(self.postgres.crash)
                await asyncio.sleep(self.plan.down_seconds)
                back = time.monotonic()
                await asyncio.to_thread(self.postgres.start)
            else:
                name = f"{what}-a"
                await asyncio.to_thread(self.replicas.kill, name)
                await asyncio.sleep(self.plan.down_seconds)
                back = time.monotonic()
                await asyncio.to_thread(self.replicas.start, name)
            self.interruptions.append(
                Interruption(
                    what=what if what == "postgresql" else f"{what} replica (SIGKILL)",
                    at_seconds=round(began - started, 1),
                    down_seconds=round(back - began, 1),
                    back_in_seconds=round(time.monotonic() - back, 1),
                )
            )

    async def drain(self) -> float:
        """Wait until nothing of the run is left to do (no referral still ``received``, no job or
        webhook message still due in spa or teams); the seconds it took."""
        started = time.monotonic()
        spa = create_engine(self.database_urls["spa"])
        teams = create_engine(self.database_urls["teams"])
        try:
            while time.monotonic() - started < self.plan.drain_seconds:
                async with spa.connect() as connection:
                    waiting = await connection.scalar(
                        text(
                            "SELECT (SELECT count(*) FROM referrals WHERE status = 'received')"
                            " + (SELECT count(*) FROM outbox_jobs WHERE status = 'pending')"
                            " + (SELECT count(*) FROM webhook_events WHERE status = 'pending')"
                            " + (SELECT count(*) FROM webhook_messages WHERE status = 'pending')"
                        )
                    )
                async with teams.connect() as connection:
                    waiting += await connection.scalar(
                        text("SELECT count(*) FROM outbox_jobs WHERE status = 'pending'")
                    )
                if not waiting:
                    break
                await asyncio.sleep(1)
        finally:
            await spa.dispose()
            await teams.dispose()
        return round(time.monotonic() - started, 1)

    async def findings(self, load: Load, receiver: Receiver) -> dict[str, Any]:
        ids = sorted(set(load.accepted.values()))
        spa = create_engine(self.database_urls["spa"])
        teams = create_engine(self.database_urls["teams"])
        try:
            async with spa.connect() as connection:
                stored = {
                    str(row.id): row.status
                    for row in await connection.execute(text("SELECT id, status FROM referrals"))
                }
                twice = await connection.scalar(
                    text(
                        "SELECT count(*) FROM (SELECT nhs_number FROM referrals"
                        " GROUP BY nhs_number HAVING count(*) > 1) AS repeated"
                    )
                )
                spa_holders = {
                    (str(row.referral_id), str(row.team_id))
                    for row in await connection.execute(
                        text(
                            "SELECT referral_id, team_id FROM referral_assignments"
                            " WHERE kind = 'care' AND status IN ('assigned', 'accepted')"
                        )
                    )
                }
                events = [
                    (str(row.referral_id), row.seq)
                    for row in await connection.execute(
                        text(
                            "SELECT referral_id, seq FROM webhook_events"
                            " WHERE referral_id IS NOT NULL"
                        )
                    )
                ]
            async with teams.connect() as connection:
                care = [
                    (str(row.referral_id), str(row.team_id))
                    for row in await connection.execute(
                        text(
                            "SELECT referral_id, team_id FROM assignments"
                            " WHERE kind = 'care' AND status IN ('assigned', 'accepted')"
                        )
                    )
                ]
        finally:
            await spa.dispose()
            await teams.dispose()
        holders = Counter(referral for referral, _ in care)
        return {
            "referrals_posted": self.plan.referrals,
            "accepted": len(ids),
            "stored": sum(1 for referral in ids if referral in stored),
            "lost": sum(1 for referral in ids if referral not in stored),
            "refused": len(load.refused),
            "refusals": load.refused[:5],
            "gave_up": load.gave_up,
            "answers": dict(sorted(load.answers.items())),
            "stored_without_an_answer": sum(1 for referral in stored if referral not in set(ids)),
            "patients_stored_twice": twice,
            "statuses": dict(Counter(stored[referral] for referral in ids if referral in stored)),
            "not_routed_after_drain": sum(1 for r in ids if stored.get(r) == "received"),
            "duplicate_care_assignments": sum(1 for count in holders.values() if count > 1),
            "spa_and_teams_disagree_on_holder": len(spa_holders ^ set(care)),
            "webhooks": webhook_findings(events, receiver),
            "interruptions": [vars(item) for item in self.interruptions],
        }


def webhook_findings(events: list[tuple[str, int | None]], receiver: Receiver) -> dict[str, Any]:
    """Whether every event spa wrote for a referral reached the receiver, and each referral's
    events were numbered 1, 2, 3... without a gap (the order a receiver puts them back in). An
    event is known by its referral and ``seq``; a repeat is the same ``webhook-id`` again."""
    arrivals: dict[str, list[int]] = defaultdict(list)
    delivered: set[tuple[str, int]] = set()
    messages: set[str] = set()
    for item in receiver.received:
        data = json.loads(item.body).get("data", {})
        if "referral_id" not in data:
            continue
        if item.headers["webhook-id"] not in messages:
            arrivals[data["referral_id"]].append(data["seq"])
        messages.add(item.headers["webhook-id"])
        delivered.add((data["referral_id"], data["seq"]))
    written = {(referral, seq) for referral, seq in events if seq is not None}
    numbered: dict[str, list[int]] = defaultdict(list)
    for referral, seq in written:
        numbered[referral].append(seq)
    return {
        "events_written": len(events),
        "events_numbered": len(written),
        "events_delivered": len(written & delivered),
        "events_not_delivered": len(events) - len(written & delivered),
        "deliveries": len(receiver.received),
        "repeated_deliveries": len(receiver.received) - len(messages),
        "referrals_with_a_gap_in_seq": sum(
            1 for seqs in numbered.values() if sorted(seqs) != list(range(1, len(seqs) + 1))
        ),
        # Each endpoint hears a referral's events one at a time, in seq order, whatever dies.
        "referrals_whose_events_arrived_out_of_seq_order": sum(
            1 for seqs in arrivals.values() if seqs != sorted(seqs)
        ),
    }


@contextlib.contextmanager
def scratch_directory() -> Iterator[Path]:
    """A directory the postgres user can enter (pytest's own temporary directories are private
    to root), removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="spa-replicas-"))
    path.chmod(0o755)
    (path / "postgres").mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run(plan: Plan, scratch: Path) -> dict[str, Any]:
    """The whole run: set up, load with interruptions, drain, and what was found."""
    cluster = Cluster(scratch, plan)
    await cluster.prepare()
    try:
        await cluster.start()
        async with running_receiver() as receiver:
            await cluster.subscribe(receiver)
            load = Load(cluster.urls["spa"], plan)
            started = time.monotonic()
            await asyncio.gather(load.run(), cluster.interrupt(started))
            load_seconds = round(time.monotonic() - started, 1)
            drain_seconds = await cluster.drain()
            result = await cluster.findings(load, receiver)
    finally:
        await cluster.stop()
    result["seconds"] = {"load": load_seconds, "drain": drain_seconds}
    result["plan"] = vars(plan)
    return result


def failures(report: dict[str, Any]) -> list[str]:
    """What the run promised and did not keep (nothing, when all is well)."""
    webhooks = report["webhooks"]
    checks = {
        "every referral accepted": report["accepted"] == report["referrals_posted"],
        "none lost": report["lost"] == 0,
        "no patient stored twice": report["patients_stored_twice"] == 0,
        "no duplicate care assignment": report["duplicate_care_assignments"] == 0,
        "spa and teams agree on every holder": report["spa_and_teams_disagree_on_holder"] == 0,
        "every referral routed after the drain": report["not_routed_after_drain"] == 0,
        "every webhook event delivered": webhooks["events_not_delivered"] == 0,
        "no gap in any referral's seq": webhooks["referrals_with_a_gap_in_seq"] == 0,
        "every referral's events in order": (
            webhooks["referrals_whose_events_arrived_out_of_seq_order"] == 0
        ),
    }
    return [name for name, held in checks.items() if not held]
