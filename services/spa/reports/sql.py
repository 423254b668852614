"""SQL the reports need that PostgreSQL and SQLite spell differently, compiled per dialect.

Times are stored in UTC on both: PostgreSQL as ``timestamptz``, SQLite as ISO text.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, Float
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class WeekStart(FunctionElement[date]):
    """The Monday (a date, in UTC) of the week a time falls in."""

    type = Date()
    inherit_cache = True


class SecondsBetween(FunctionElement[float]):
    """Seconds from the first time to the second (NULL if either is), to the millisecond."""

    type = Float()
    inherit_cache = True


def _arguments(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(WeekStart)
@compiles(SecondsBetween)
def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"{type(element).__name__} is written for PostgreSQL and SQLite only")


@compiles(WeekStart, "postgresql")
def _week_start_postgresql(element: WeekStart, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = _arguments(element, compiler, **kw)
    # date_trunc's weeks start on Monday (ISO 8601); the zone makes the day a UTC one.
    return f"CAST(date_trunc('week', {moment} AT TIME ZONE 'UTC') AS DATE)"


@compiles(WeekStart, "sqlite")
def _week_start_sqlite(element: WeekStart, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = _arguments(element, compiler, **kw)
    # Back six days, then on to the next Monday (weekday 1), or stay on one.
    return f"date({moment}, '-6 days', 'weekday 1')"


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"CAST(EXTRACT(EPOCH FROM ({end}) - ({start})) AS DOUBLE PRECISION)"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _arguments(element, compiler, **kw)
    # julianday() keeps whole milliseconds: rounded to them, the difference is exact.
    return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"
