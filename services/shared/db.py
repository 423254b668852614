"""Database engines, sessions and the request's transaction.

The request edge owns the transaction: ``SessionDep`` commits after the handler returns and
before the response is sent, and rolls back on any error. Use-case functions only ``flush()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, Dialect, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.shared.clock import CLOCK_OPTION, Clock, clock_default
from services.shared.problems import Problem
from services.shared.state import ServiceState, state_of

# Stable constraint names so that migrations written on one database apply on the other.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=clock_default, onupdate=clock_default
    )


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# Pool settings that apply to a server database only.
POOL_SETTINGS = ("pool_size", "max_overflow", "pool_pre_ping", "pool_recycle")


def create_engine(
    url: str, *, clock: Clock | None = None, sqlite_foreign_keys: bool = True, **kwargs: Any
) -> AsyncEngine:
    """An engine for ``url``, carrying ``clock`` for the column defaults that fill in a time
    (an engine without one can read and write, but refuses to make a time up). On SQLite,
    transactions are begun explicitly (so DDL is transactional and savepoints work) and
    foreign keys are enforced unless asked otherwise."""
    if clock is not None:
        kwargs["execution_options"] = {**kwargs.get("execution_options", {}), CLOCK_OPTION: clock}
    pooling = {key: kwargs.pop(key) for key in POOL_SETTINGS if key in kwargs}
    if not is_sqlite(url):
        # Command lines and tools keep the test before use: they run rarely and briefly.
        pooling.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **pooling, **kwargs)
    # SQLite: one file, one writer at a time; the driver's own pool suits it.
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
    foreign_keys = "ON" if sqlite_foreign_keys else "OFF"

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would commit DDL as it goes; take it over.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={foreign_keys}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    def on_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock up front, so that a transaction that reads and then
        # writes waits its turn (busy_timeout) instead of failing on a stale snapshot.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    return engine


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; each one's ``info`` starts with ``info`` (a service's metrics)."""
    return async_sessionmaker(engine, expire_on_commit=False, info=info or {})


@asynccontextmanager
async def one_transaction(url: str, clock: Clock) -> AsyncIterator[AsyncSession]:
    """A single transaction on an engine of its own, disposed of after: for a command line."""
    engine = create_engine(url, clock=clock)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


_KEPT_ON_FAILURE = "kept_on_failure"


def keep_on_failure(session: AsyncSession, remake: Callable[[], object]) -> None:
    """Should the request fail with a problem, ``remake()`` is added and committed after its
    work is rolled back (a row that records the attempt rather than its effect)."""
    session.info.setdefault(_KEPT_ON_FAILURE, []).append(remake)


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker = state_of(request.app, ServiceState).sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except Problem:
            # A refusal or a conflict: the request's work is undone, but not what must be kept
            # whatever the answer (the audit trail: a denied access is exactly what an auditor
            # looks for), so handlers just raise.
            remakes = session.info.pop(_KEPT_ON_FAILURE, [])
            await session.rollback()
            if remakes:
                session.add_all([remake() for remake in remakes])
                await session.commit()
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


# scope="function": the commit runs when the handler returns, before the response is sent, so a
# failed commit becomes an error response instead of a 201 for data that was never stored.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
