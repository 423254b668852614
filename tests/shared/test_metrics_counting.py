"""Counts kept with a transaction: applied when it commits, dropped when it rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.shared.db import create_engine, create_sessionmaker
from services.shared.metrics import count_after_commit


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    yield engine
    await engine.dispose()


def _counter() -> Counter:
    return Counter("things", "things done", ["kind"], registry=CollectorRegistry())


def _value(counter: Counter, kind: str) -> float:
    """The count as a scrape of the counter's registry reads it."""
    registry = CollectorRegistry()
    registry.register(counter)
    return registry.get_sample_value("things_total", {"kind": kind}) or 0.0


async def test_a_count_waits_for_the_commit(engine: AsyncEngine) -> None:
    counter = _counter()
    async with create_sessionmaker(engine)() as session:
        await session.execute(text("SELECT 1"))
        count_after_commit(session, counter, kind="a")
        before = _value(counter, "a")
        await session.commit()

    assert (before, _value(counter, "a")) == (0, 1)


async def test_a_rolled_back_count_is_never_applied(engine: AsyncEngine) -> None:
    counter = _counter()
    async with create_sessionmaker(engine)() as session:
        await session.execute(text("SELECT 1"))
        count_after_commit(session, counter, kind="a")
        await session.rollback()
        # The retry in the same session commits: counted once, for the attempt that held.
        await session.execute(text("SELECT 1"))
        count_after_commit(session, counter, kind="b")
        await session.commit()

    assert (_value(counter, "a"), _value(counter, "b")) == (0, 1)


async def test_each_commit_applies_only_what_it_carried(engine: AsyncEngine) -> None:
    counter = _counter()
    async with create_sessionmaker(engine)() as session:
        for _ in range(3):
            await session.execute(text("SELECT 1"))
            count_after_commit(session, counter, kind="a")
            await session.commit()

    assert _value(counter, "a") == 3
