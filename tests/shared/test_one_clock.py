"""One clock: no table fills in a time from any clock but the service's own.

The source is checked by ruff (banned-api TID251 in pyproject.toml: ``datetime.now``,
``date.today``, ``time.time`` and ``func.now`` anywhere but services/shared/clock.py); this
checks what ruff cannot see, the tables' column defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, MetaData

from services.routing.models import Base as RoutingBase
from services.shared.clock import clock_default
from services.shared.db import UTCDateTime, create_engine
from services.spa.models import Base as SpaBase
from services.teams.models import Base as TeamsBase

METADATA = {"spa": SpaBase.metadata, "routing": RoutingBase.metadata, "teams": TeamsBase.metadata}
WALL_CLOCK_SQL = ("now(", "current_timestamp", "current_date", "localtimestamp", "clock_timestamp")


def _columns(metadata: MetaData) -> list[Column[object]]:
    return [column for table in metadata.tables.values() for column in table.columns]


@pytest.mark.parametrize("service", METADATA)
def test_no_column_takes_the_database_clock(service: str) -> None:
    offending = [
        str(column)
        for column in _columns(METADATA[service])
        if column.server_default is not None
        and any(word in str(column.server_default.arg).lower() for word in WALL_CLOCK_SQL)  # type: ignore[attr-defined]
    ]

    assert offending == []


@pytest.mark.parametrize("service", METADATA)
def test_every_time_column_default_reads_the_injected_clock(service: str) -> None:
    defaults = [
        (str(column), getattr(getattr(column, attribute), "arg", None))
        for column in _columns(METADATA[service])
        if isinstance(column.type, UTCDateTime)
        for attribute in ("default", "onupdate")
        if getattr(column, attribute) is not None
    ]
    wrong = [
        name for name, arg in defaults if getattr(arg, "__wrapped__", arg) is not clock_default
    ]

    assert defaults, "the check found no time column with a default"
    assert wrong == []


async def test_an_engine_without_a_clock_refuses_to_make_a_time_up(tmp_path: object) -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(TeamsBase.metadata.create_all)
            with pytest.raises(Exception, match="no clock"):
                await connection.execute(
                    TeamsBase.metadata.tables["organisations"].insert().values(code="X1", name="x")
                )
    finally:
        await engine.dispose()


async def test_an_engine_fills_times_from_its_own_clock() -> None:
    fixed = datetime(2031, 2, 3, 4, 5, tzinfo=UTC)
    engine = create_engine("sqlite+aiosqlite:///:memory:", clock=lambda: fixed)
    table = TeamsBase.metadata.tables["organisations"]
    try:
        async with engine.begin() as connection:
            await connection.run_sync(TeamsBase.metadata.create_all)
            await connection.execute(table.insert().values(code="X1", name="x"))
            row = (await connection.execute(table.select())).one()
    finally:
        await engine.dispose()

    assert (row.created_at, row.updated_at) == (fixed, fixed)
