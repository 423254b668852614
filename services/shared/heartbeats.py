"""Worker heartbeats: a process that runs background workers writes, every few seconds, one row
per worker it runs (its kind, the host and process id) with the time on the injected clock.
A worker whose loop has ended (it crashed, or stopped) is no longer beaten for, so a kind with
no recent row has no live worker anywhere. Readiness (``/readyz?workers=1``) and the metrics
read these rows; the retention job removes those of processes long gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import ColumnElement, Integer, String, UniqueConstraint, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from services.shared.clock import Clock
from services.shared.db import UTCDateTime
from services.shared.metrics import Reader

log = structlog.get_logger(__name__)

# A row not beaten for this long belongs to a process long gone (each start beats anew under
# its own process id): the retention job removes it.
GONE_AFTER = timedelta(days=1)


class HeartbeatColumns:
    """The columns of a service's ``worker_heartbeats`` table."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("kind", "host", "pid"),)


class Beating(Protocol):
    """A worker that says whether its loop is still running."""

    @property
    def is_running(self) -> bool: ...


class Heartbeat:
    """Beats every ``interval`` seconds for each of ``workers`` (kind to worker) still running."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[HeartbeatColumns],
        workers: Mapping[str, Beating],
        *,
        clock: Clock,
        interval: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model: Any = model
        self._workers = workers
        self._clock = clock
        self._interval = interval
        self._stop = asyncio.Event()
        self._host = socket.gethostname()[:255]
        self._pid = os.getpid()
        self._started_at = clock()

    async def beat(self) -> None:
        now = self._clock()
        kinds = [kind for kind, worker in self._workers.items() if worker.is_running]
        async with self._sessionmaker() as session, session.begin():
            for kind in kinds:
                mine = (
                    self._model.kind == kind,
                    self._model.host == self._host,
                    self._model.pid == self._pid,
                )
                changed = await session.execute(
                    update(self._model).where(*mine).values(beat_at=now)
                )
                if getattr(changed, "rowcount", 0) == 0:
                    session.add(
                        self._model(
                            kind=kind,
                            host=self._host,
                            pid=self._pid,
                            started_at=self._started_at,
                            beat_at=now,
                        )
                    )

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.beat()
            except Exception as exc:  # the next beat tries again; readiness sees the gap
                log.warning("heartbeat_failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)

    def stop(self) -> None:
        self._stop.set()


def gone(model: type[HeartbeatColumns], now: datetime) -> ColumnElement[bool]:
    """The rows of processes long gone, for the retention job."""
    table: Any = model
    condition: ColumnElement[bool] = table.beat_at < now - GONE_AFTER
    return condition


async def last_beats(session: AsyncSession, model: type[HeartbeatColumns]) -> dict[str, datetime]:
    """The latest beat of each worker kind, over every process."""
    table: Any = model
    rows = await session.execute(select(table.kind, func.max(table.beat_at)).group_by(table.kind))
    return {row[0]: row[1] for row in rows}


def stale_kinds(
    beats: Mapping[str, datetime], kinds: tuple[str, ...], now: datetime, threshold: timedelta
) -> list[str]:
    """The kinds among ``kinds`` with no beat within ``threshold`` of ``now``."""
    return [kind for kind in kinds if kind not in beats or now - beats[kind] > threshold]


def heartbeat_reader(model: type[HeartbeatColumns]) -> Reader:
    """For the metrics: seconds since each worker kind last beat anywhere."""

    async def read(session: AsyncSession, now: datetime) -> list[Metric]:
        age = GaugeMetricFamily(
            "worker_heartbeat_age_seconds",
            "Seconds since a worker of each kind last beat, in any process",
            labels=["kind"],
        )
        for kind, beat_at in sorted((await last_beats(session, model)).items()):
            age.add_metric([kind], (now - beat_at).total_seconds())
        return [age]

    return read
