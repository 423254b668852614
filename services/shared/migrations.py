"""Alembic glue shared by the three services' migration environments under
``services/migrations/``.

Each service has its own Alembic history and its own database; the schema comes only from these
migrations, never from ``metadata.create_all``. The histories ship inside the package, so an
installed copy migrates from any working directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.shared.db import UTCDateTime, create_engine, is_sqlite

MIGRATIONS_ROOT = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(service: str, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ROOT / service))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, service: str, revision: str = "head") -> None:
    """Bring ``engine``'s database to ``revision`` of ``service``'s history."""
    config = alembic_config(service)
    async with migration_connection(engine) as connection:
        await connection.run_sync(_upgrade_on, config, revision)


@asynccontextmanager
async def migration_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction for a whole migration. On SQLite the engine must not
    enforce foreign keys (altering a table there means copying it, dropping the original and
    renaming, which enforced keys refuse), so they are checked in full before the commit."""
    async with engine.begin() as connection:
        yield connection
        if connection.dialect.name == "sqlite":
            broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).first()
            if broken is not None:
                raise RuntimeError(f"the migration broke a foreign key of table {broken[0]}")


def _upgrade_on(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_url(url: str, service: str) -> None:
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        await upgrade(engine, service)
    finally:
        await engine.dispose()


def run_environment(context: Any, metadata: MetaData) -> None:
    """The body of every service's ``env.py``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(context, connection, metadata)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run migrations through the service's CLI")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(context, url, metadata))


async def _run_online(context: Any, url: str, metadata: MetaData) -> None:
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        async with migration_connection(engine) as connection:
            await connection.run_sync(lambda sync: _run_on(context, sync, metadata))
    finally:
        await engine.dispose()


def _run_on(context: Any, connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite(str(connection.engine.url)),
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our column types as plain SQLAlchemy types so migrations never import the app."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def head_revisions(service: str) -> set[str]:
    """The latest revisions of ``service``'s history in this code."""
    return set(ScriptDirectory.from_config(alembic_config(service)).get_heads())


async def current_revisions(url: str) -> set[str]:
    """The revisions the database at ``url`` is at (none before its first migration)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: set(MigrationContext.configure(sync).get_current_heads())
            )
    finally:
        await engine.dispose()
