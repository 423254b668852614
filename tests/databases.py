"""Fresh databases for a test run: PostgreSQL from TEST_DATABASE_URL (or a testcontainers
PostgreSQL where a Docker engine answers), and SQLite files, each migrated once per session."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, make_url, text

from services.routing.models import Base as RoutingBase
from services.shared.audit import GENESIS
from services.shared.db import create_engine
from services.shared.migrations import upgrade_url
from services.spa.models import Base as SpaBase
from services.teams.models import Base as TeamsBase

SERVICES = ("spa", "routing", "teams")
METADATA: dict[str, MetaData] = {
    "spa": SpaBase.metadata,
    "routing": RoutingBase.metadata,
    "teams": TeamsBase.metadata,
}
# Registered once per session and kept between tests; everything else is emptied.
KEPT_TABLES = {"clients", "alembic_version"}


def _docker_answers() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env()
    except Exception:
        return False
    try:
        client.ping()
    except Exception:
        return False
    finally:
        client.close()
    return True


@contextmanager
def postgres_admin_url() -> Iterator[str | None]:
    """A URL of a PostgreSQL database we may create other databases from, or None."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    if not _docker_answers():
        yield None
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
        yield container.get_connection_url()


async def _execute_autocommit(admin_url: str, statement: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def create_postgres_databases(admin_url: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    urls = {}
    for service in SERVICES:
        name = f"t_{suffix}_{service}"
        asyncio.run(_execute_autocommit(admin_url, f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        asyncio.run(upgrade_url(url, service))
        urls[service] = url
    return urls


def drop_postgres_databases(admin_url: str, urls: dict[str, str]) -> None:
    for url in urls.values():
        name = make_url(url).database
        asyncio.run(
            _execute_autocommit(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


def create_sqlite_databases(directory: Path) -> dict[str, str]:
    urls = {}
    for service in SERVICES:
        url = f"sqlite+aiosqlite:///{directory / f'{service}.db'}"
        asyncio.run(upgrade_url(url, service))
        urls[service] = url
    return urls


async def empty_tables(url: str, service: str) -> None:
    """Remove every row a previous test left, keeping the registered clients."""
    tables = [t for t in METADATA[service].sorted_tables if t.name not in KEPT_TABLES]
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            # DELETE beats TRUNCATE on tables this small; the circular reference between
            # localities and teams (out-of-hours service) is cut first.
            if "localities" in {table.name for table in tables}:
                await connection.execute(text("UPDATE localities SET out_of_hours_team_id = NULL"))
            for table in reversed(tables):
                await connection.execute(table.delete())
            # The audit chain starts again from its empty head, as after the migration.
            await connection.execute(
                text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
                {"genesis": GENESIS},
            )
    finally:
        await engine.dispose()
