"""Wake-ups across processes: a worker hears at once that work for it was committed, by any
process on any replica, through PostgreSQL's LISTEN/NOTIFY.

Each outbox table whose work follows a commit (all but spa's timers, which fall due with time)
has a trigger (its service's ``outbox_wakeups`` migration) that notifies the channel
``wake_<table>`` when a transaction inserts jobs or makes one due sooner. PostgreSQL
delivers a notification only once its transaction has committed, so a worker never wakes for a
job it cannot see yet. A process that runs workers holds one connection of its own, outside
the pool, that LISTENs on their tables' channels and calls each worker's ``notify``.

The workers' poll stays as it was: it finds the jobs whose time comes later, and all of them
while the listener cannot hear. When the listener loses its connection (a restart, a
failover) it says so once and reconnects with backoff; each time it connects it wakes every
worker once, for whatever was committed while it was deaf. SQLite has no notifications, so
there the workers only poll.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from services.shared.outbox import running

log = structlog.get_logger(__name__)

# Arguments that SQLAlchemy's asyncpg dialect takes for itself rather than passing on.
_DIALECT_ONLY = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


class Wakeable(Protocol):
    """A worker that works one table's queue and can be told to look now."""

    @property
    def table(self) -> str: ...

    def notify(self) -> None: ...


def channel(table: str) -> str:
    """The channel an outbox table's trigger notifies (the trigger function, ``outbox_wake``
    in the migrations, builds the same name from the table's)."""
    return f"wake_{table}"


def can_listen(engine: AsyncEngine) -> bool:
    """Whether ``engine``'s database sends notifications that this module can hear."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


class WakeListener:
    """The listener: ``run`` until ``stop``, with ``services.shared.outbox.running``."""

    def __init__(
        self,
        engine: AsyncEngine,
        workers: Iterable[Wakeable],
        *,
        name: str,
        check_interval: float = 30.0,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        for key in _DIALECT_ONLY:
            kwargs.pop(key, None)
        # Named, so that the connection is recognisable among the server's.
        settings = {**kwargs.pop("server_settings", {}), "application_name": name}
        self._connect_args = (list(args), {**kwargs, "server_settings": settings})
        self._name = name
        self._wakes: dict[str, list[Callable[[], None]]] = {}
        for worker in workers:
            self._wakes.setdefault(channel(worker.table), []).append(worker.notify)
        # A connection lost without a word (a network cut) shows only when it is used.
        self._check_interval = check_interval
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._stop = asyncio.Event()
        # Failed tries since the listener last listened; while any, the workers only poll.
        self._failures = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                connection = await self._connect()
            except Exception as exc:  # the listener must outlive the database
                self._lost(exc)
            else:
                try:
                    await self._listen(connection)
                except Exception as exc:
                    self._lost(exc)
                finally:
                    await self._close(connection)
            if self._failures:
                await self._pause(self._backoff())

    async def _connect(self) -> Any:
        args, kwargs = self._connect_args
        return await asyncpg.connect(*args, **kwargs, timeout=self._timeout)

    async def _listen(self, connection: Any) -> None:
        """LISTEN on every channel, then wait until stopped or the connection is lost."""
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _connection: closed.set())
        for name in self._wakes:
            await connection.add_listener(name, self._heard)
        log.info(
            "wake_listener_listening",
            listener=self._name,
            channels=len(self._wakes),
            restored=bool(self._failures),
        )
        self._failures = 0
        self._wake_all()
        while not self._stop.is_set():
            await self._pause(self._check_interval, closed)
            if closed.is_set():
                raise ConnectionResetError("the listener's connection was closed")
            if not self._stop.is_set():
                await connection.fetchval("SELECT 1", timeout=self._timeout)

    def _heard(self, _connection: Any, _pid: int, channel: str, _payload: str) -> None:
        for wake in self._wakes.get(channel, ()):
            wake()

    def _wake_all(self) -> None:
        for wakes in self._wakes.values():
            for wake in wakes:
                wake()

    def _lost(self, exc: Exception) -> None:
        """Say once that the workers are down to their poll, not at every failed reconnect."""
        if not self._failures:
            log.warning("wake_listener_lost", listener=self._name, error_type=type(exc).__name__)
        self._failures += 1

    async def _pause(self, seconds: float, closed: asyncio.Event | None = None) -> None:
        """Wait ``seconds``, or less if stopped (or ``closed`` is set) meanwhile."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        if closed is not None:
            waits.append(asyncio.ensure_future(closed.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def _backoff(self) -> float:
        ceiling = min(self._max_backoff, 0.25 * 2 ** min(self._failures, 16))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    async def _close(self, connection: Any) -> None:
        try:
            await connection.close(timeout=self._timeout)
        except Exception:
            connection.terminate()


@asynccontextmanager
async def listening(
    engine: AsyncEngine, workers: Iterable[Wakeable], *, name: str, enabled: bool
) -> AsyncIterator[WakeListener | None]:
    """Wake ``workers`` by notification for the duration of the block (an app's lifespan),
    where ``enabled`` and the database can send them; None where they only poll."""
    if not enabled or not can_listen(engine):
        yield None
        return
    async with running(WakeListener(engine, workers, name=name), name) as listener:
        yield listener
