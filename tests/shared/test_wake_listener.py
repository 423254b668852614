"""Workers hear at once of work committed in another process, by notification, on PostgreSQL:
a referral taken by an API-only process is routed by a worker whose next poll is far off, and
still is after the listener's connection is cut. The poll stays; on SQLite it is all there is."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from services.shared.db import create_engine, create_sessionmaker
from services.shared.outbox import OutboxJobColumns
from services.shared.wake_listener import WakeListener, channel
from services.spa.main import create_app as create_spa
from services.spa.models import Base as SpaBase
from services.spa.webhooks.models import WebhookEvent
from services.teams.models import Base as TeamsBase
from tests import factories
from tests.stack import MORNING, SettableClock, Stack, running_stack

# Far longer than any test here waits: work found in time was found by notification.
RARE_POLLS = {
    "spa": {
        "outbox_poll_interval_seconds": 30.0,
        "timer_poll_interval_seconds": 30.0,
        "webhook_poll_interval_seconds": 30.0,
    },
    "teams": {"outbox_poll_interval_seconds": 30.0},
}


@pytest.fixture
async def rare_polls(postgres_urls: dict[str, str], issuer_key_file: Path) -> AsyncIterator[Stack]:
    async with running_stack(postgres_urls, issuer_key_file, overrides=RARE_POLLS) as stack:
        yield stack


@asynccontextmanager
async def api_process(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """spa as an API process with no workers of its own, beside the stack's worker process."""
    settings = stack.apps["spa"].state.settings.model_copy(update={"background_workers": False})
    app = create_spa(settings, mounts=stack.mounts, clock=stack.clock)
    token = await stack.token("gp-system")
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://spa") as spa:
            spa.headers["Authorization"] = f"Bearer {token}"
            yield spa
        assert not hasattr(app.state, "wake_listener")


async def _post_and_wait(spa: httpx.AsyncClient) -> dict[str, Any]:
    """Post a crisis referral, waiting up to five seconds for its routing."""
    answer = await spa.post(
        "/v1/referrals",
        json=factories.referral(urgency="crisis", needs=["fall"]),
        headers={"Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=5"},
    )
    assert answer.status_code == 201, answer.text
    referral: dict[str, Any] = answer.json()
    return referral


async def test_a_referral_taken_by_an_api_process_is_routed_without_waiting_for_the_poll(
    rare_polls: Stack,
) -> None:
    assert isinstance(rare_polls.apps["spa"].state.wake_listener, WakeListener)
    assert isinstance(rare_polls.apps["teams"].state.wake_listener, WakeListener)

    async with api_process(rare_polls) as spa:
        referral = await _post_and_wait(spa)

    assert referral["status"] == "routed"
    assert referral["assignments"][0]["team"]["code"]


async def _listener_pid(stack: Stack) -> int | None:
    async with stack.apps["spa"].state.engine.connect() as connection:
        pid = await connection.scalar(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = 'spa-wake-listener' AND datname = current_database()"
            )
        )
    return None if pid is None else int(pid)


async def test_after_its_connection_is_cut_the_listener_reconnects_and_wakes_the_worker(
    rare_polls: Stack,
) -> None:
    cut = await rare_polls.wait_for(lambda: _listener_pid(rare_polls))

    with capture_logs() as logs:

        def said() -> list[str]:
            events = [e["event"] for e in logs if e.get("listener") == "spa-wake-listener"]
            # Its first connection may have said it listens after the capture began.
            return (
                events[events.index("wake_listener_lost") :]
                if "wake_listener_lost" in events
                else []
            )

        async def reconnected() -> bool:
            pid = await _listener_pid(rare_polls)
            return "wake_listener_listening" in said() and pid is not None and pid != cut

        async with rare_polls.apps["spa"].state.engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": cut})
        await rare_polls.wait_for(reconnected)

    async with api_process(rare_polls) as spa:
        referral = await _post_and_wait(spa)

    assert referral["status"] == "routed"
    assert said() == ["wake_listener_lost", "wake_listener_listening"]


class _Worker:
    table = "outbox_jobs"

    def __init__(self) -> None:
        self.woken = 0

    def notify(self) -> None:
        self.woken += 1


async def test_a_listener_that_cannot_connect_says_so_once_and_keeps_trying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries = 0
    refuse = asyncpg.connect

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal tries
        tries += 1
        return await refuse(*args, **kwargs)

    monkeypatch.setattr("services.shared.wake_listener.asyncpg.connect", counted)
    # Nothing listens on the discard port: every connection is refused.
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nothing")
    listener = WakeListener(
        engine, [_Worker()], name="test-wake-listener", timeout=1.0, max_backoff=0.05
    )
    with capture_logs() as logs:
        task = asyncio.create_task(listener.run())
        await asyncio.sleep(0.5)
        listener.stop()
        await asyncio.wait_for(task, timeout=5)
    await engine.dispose()

    assert tries > 3
    assert [entry["event"] for entry in logs] == ["wake_listener_lost"]
    assert logs[0]["error_type"] in {"ConnectionRefusedError", "OSError"}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _heard(queue: asyncio.Queue[str], settle: float = 0.3) -> int:
    """How many notifications arrived within ``settle`` seconds."""
    await asyncio.sleep(settle)
    count = 0
    while not queue.empty():
        queue.get_nowait()
        count += 1
    return count


async def _change(sessions: async_sessionmaker[AsyncSession], job_id: int, **values: Any) -> None:
    async with sessions() as session, session.begin():
        job = await session.get(WebhookEvent, job_id)
        assert job is not None
        for name, value in values.items():
            setattr(job, name, value)


async def test_the_outbox_notifies_when_jobs_commit_or_fall_due_sooner_not_when_claimed(
    postgres_urls: dict[str, str],
) -> None:
    url = postgres_urls["spa"]
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(_dsn(url))
    engine = create_engine(url, clock=SettableClock(MORNING))
    sessions = create_sessionmaker(engine)
    try:
        await listener.add_listener(
            channel("webhook_events"), lambda *args: heard.put_nowait(args[2])
        )
        async with sessions() as session, session.begin():
            jobs = [WebhookEvent(kind="dispatch", event_type="test.event") for _ in range(3)]
            session.add_all(jobs)
            await session.flush()
            assert await _heard(heard) == 0  # not before the jobs can be seen
        assert await _heard(heard) == 1  # one for the transaction, however many jobs
        first, second, _ = (job.id for job in jobs)

        # A claim's lease or a retry's backoff moves a job later; a job done needs nobody.
        await _change(sessions, first, next_attempt_at=MORNING + timedelta(minutes=5))
        await _change(sessions, second, status="done")
        assert await _heard(heard) == 0

        # Sent again, or brought forward: due sooner than any worker was told.
        await _change(sessions, second, status="pending")
        assert await _heard(heard) == 1
        await _change(sessions, first, next_attempt_at=MORNING)
        assert await _heard(heard) == 1
    finally:
        await listener.close()
        await engine.dispose()


# Queues whose jobs fall due with time, not with a commit: their workers only poll.
FALLING_DUE_WITH_TIME = {"referral_timers"}


@pytest.mark.parametrize("service", ["spa", "teams"])
async def test_every_outbox_table_has_the_triggers_that_wake_its_workers(
    postgres_urls: dict[str, str], service: str
) -> None:
    base = {"spa": SpaBase, "teams": TeamsBase}[service]
    tables = {
        mapper.tables[0].name
        for mapper in base.registry.mappers
        if issubclass(mapper.class_, OutboxJobColumns)
    } - FALLING_DUE_WITH_TIME
    engine = create_engine(postgres_urls[service])
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT c.relname, t.tgname FROM pg_trigger t"
                    " JOIN pg_class c ON c.oid = t.tgrelid"
                    " JOIN pg_proc p ON p.oid = t.tgfoid AND p.proname = 'outbox_wake'"
                )
            )
            found = {(table, trigger) for table, trigger in rows}
    finally:
        await engine.dispose()

    assert tables
    assert found == {
        (table, f"{table}_wake_on_{when}") for table in tables for when in ("insert", "due")
    }


async def test_on_sqlite_or_when_switched_off_the_workers_only_poll(
    sqlite_urls: dict[str, str], postgres_urls: dict[str, str], issuer_key_file: Path
) -> None:
    async with running_stack(sqlite_urls, issuer_key_file) as stack:
        assert stack.apps["spa"].state.wake_listener is None
        assert stack.apps["teams"].state.wake_listener is None
    off = {"spa": {"outbox_listen": False}, "teams": {"outbox_listen": False}}
    async with running_stack(postgres_urls, issuer_key_file, overrides=off) as stack:
        assert stack.apps["spa"].state.wake_listener is None
        assert stack.apps["teams"].state.wake_listener is None
