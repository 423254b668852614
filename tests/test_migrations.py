"""The schema comes only from the migrations, and they match the models, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from services.shared.migrations import alembic_config
from tests.databases import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_migrated_postgresql_matches_the_models(
    postgres_urls: dict[str, str], service: str
) -> None:
    # Raises when autogenerate would find a difference between the models and the database.
    command.check(alembic_config(service, postgres_urls[service]))


@pytest.mark.parametrize("service", SERVICES)
def test_sqlite_migrates_down_and_up_again_and_matches_the_models(
    tmp_path: Path, service: str
) -> None:
    config = alembic_config(service, f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}")
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
