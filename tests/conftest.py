from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.spa.identity.keys import write_new_key
from tests.databases import (
    create_postgres_databases,
    create_sqlite_databases,
    drop_postgres_databases,
    postgres_admin_url,
)
from tests.stack import Stack, register_clients, running_stack


@pytest.fixture(autouse=True)
def _collect_garbage_per_test() -> Iterator[None]:
    """Collect each test's garbage at its end, so that database connections the pool finalises
    are closed with their own test rather than reported, at random, in a later one."""
    yield
    gc.collect()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Set aside everything imported so far: each test's collection then walks only what the
    tests themselves made, which keeps the per-test collection cheap."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def issuer_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("issuer") / "issuer-key.pem"
    write_new_key(path)
    return path


@pytest.fixture(scope="session")
def postgres_urls() -> Iterator[dict[str, str]]:
    """Three fresh, migrated PostgreSQL databases for this run, dropped at its end."""
    with postgres_admin_url() as admin_url:
        if admin_url is None:
            if os.environ.get("CI"):
                pytest.fail("CI needs TEST_DATABASE_URL (or a Docker engine) for PostgreSQL")
            pytest.skip("no PostgreSQL: set TEST_DATABASE_URL or start a Docker engine")
        urls = create_postgres_databases(admin_url)
        try:
            asyncio.run(register_clients(urls["spa"]))
            yield urls
        finally:
            drop_postgres_databases(admin_url, urls)


@pytest.fixture(scope="session")
def sqlite_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    urls = create_sqlite_databases(tmp_path_factory.mktemp("sqlite"))
    asyncio.run(register_clients(urls["spa"]))
    return urls


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database_urls(request: pytest.FixtureRequest) -> dict[str, str]:
    """Both backends: PostgreSQL in production, SQLite as the embedded default."""
    fixture = "postgres_urls" if request.param == "postgresql" else "sqlite_urls"
    urls: dict[str, str] = request.getfixturevalue(fixture)
    return urls


@pytest.fixture
async def stack(postgres_urls: dict[str, str], issuer_key_file: Path) -> AsyncIterator[Stack]:
    async with running_stack(postgres_urls, issuer_key_file) as running:
        yield running


@pytest.fixture
async def any_stack(
    any_database_urls: dict[str, str], issuer_key_file: Path
) -> AsyncIterator[Stack]:
    async with running_stack(any_database_urls, issuer_key_file) as running:
        yield running
