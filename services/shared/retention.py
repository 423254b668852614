"""Removing rows that are kept only for a while: each service names its kinds of row and when
one is past keeping (a ``Rule``); ``prune`` deletes them in small batches, each its own
transaction, so that no delete holds locks for long, and a run stopped half-way has lost
nothing it should have kept. Care records and audit records are never among them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from services.shared.clock import Clock
from services.shared.db import create_engine, create_sessionmaker

# Rows a batch deletes: small enough for a short lock, large enough to finish in few trips.
BATCH_SIZE = 2000


@dataclass(frozen=True)
class Rule:
    """One kind of row: its model, and which of its rows are past keeping at ``now``."""

    name: str
    model: type[DeclarativeBase]
    expired: Callable[[datetime], ColumnElement[bool]]


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: Sequence[Rule],
    now: datetime,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """Rows removed (or, on a dry run, that would be) under each rule, in the rules' order:
    a rule whose rows others refer to comes after the rules for those others."""
    counts: dict[str, int] = {}
    for rule in rules:
        if dry_run:
            counts[rule.name] = await _count(sessionmaker, rule, now)
        else:
            counts[rule.name] = await _delete(sessionmaker, rule, now, batch_size)
    return counts


async def _count(sessionmaker: async_sessionmaker[AsyncSession], rule: Rule, now: datetime) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(rule.model).where(rule.expired(now))
        return int(await session.scalar(query) or 0)


async def _delete(
    sessionmaker: async_sessionmaker[AsyncSession], rule: Rule, now: datetime, batch_size: int
) -> int:
    (key,) = inspect(rule.model).primary_key
    removed = 0
    while True:
        batch = select(key).where(rule.expired(now)).order_by(key).limit(batch_size)
        async with sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(rule.model)
                .where(key.in_(batch))
                .execution_options(synchronize_session=False)
            )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        removed += count
        if count < batch_size:
            return removed


def add_prune_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "prune",
        help="delete what is past its retention (see the <P>_RETENTION_* settings); "
        "prints the rows removed of each kind",
    )
    command.add_argument(
        "--dry-run", action="store_true", help="count what would be removed, remove nothing"
    )


async def prune_database(url: str, rules: Sequence[Rule], clock: Clock, *, dry_run: bool) -> int:
    """The ``prune`` command: prints one line of JSON with the count of each kind."""
    engine = create_engine(url, clock=clock)
    try:
        counts = await prune(create_sessionmaker(engine), rules, clock(), dry_run=dry_run)
    finally:
        await engine.dispose()
    print(json.dumps({"would_remove" if dry_run else "removed": counts}))
    return 0
