"""The schema comes only from the migrations, and they match the models, on both databases."""

from __future__ import annotations

import sqlite3
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


# Rows as the first revision stores them, with every foreign key in use, so that the later
# revisions' table rewrites (SQLite copies, drops and renames a table to alter it) meet data.
FIRST_REVISION_ROWS = {
    # Two decisions for one triage, as a retry recorded them before requests were keyed.
    "routing": [
        "INSERT INTO decisions (id, referral_id, requested_by, facts, rule_set_version, rule_id, pathway, priority,"
        " reason, trace, team_outcome, team_explanation, escalations, created_at, updated_at) VALUES ('00000000000000000000000000000021',"
        " '00000000000000000000000000000001', 'spa', '{}', 'v1', 'r', 'advice', 5, 'why', '[]', 'no_assignment', '[]',"
        " '[]', '2026-01-01', '2026-01-01')",
        "INSERT INTO decisions (id, referral_id, requested_by, facts, rule_set_version, rule_id, pathway, priority,"
        " reason, trace, team_outcome, team_explanation, escalations, created_at, updated_at) VALUES ('00000000000000000000000000000022',"
        " '00000000000000000000000000000001', 'spa', '{}', 'v1', 'r', 'advice', 5, 'why', '[]', 'no_assignment', '[]',"
        " '[]', '2026-01-01', '2026-01-01')",
    ],
    "spa": [
        "INSERT INTO clients (id, client_id, name, secret_hash, scopes, audiences, channels, created_at, updated_at)"
        " VALUES ('00000000-0000-0000-0000-00000000000c', 'gp', 'GP', 'x', '[]', '[]', '[]', '2026-01-01', '2026-01-01')",
        "INSERT INTO referrals (id, status, channel, urgency, needs, red_flags, nhs_number_verification, date_of_birth,"
        " safeguarding, consent, referrer_client_id, created_at, updated_at) VALUES ('00000000-0000-0000-0000-000000000001',"
        " 'routed', 'gp', 'routine', '[]', '[]', '03', '1940-01-01', '{}', '{}', 'gp', '2026-01-01', '2026-01-01')",
        "INSERT INTO referral_events (referral_id, at, event_type, actor, detail)"
        " VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 'received', 'gp', '{}')",
        "INSERT INTO referral_assignments (id, referral_id, kind, team_id, team_code, team_name, team_type, assignment_id,"
        " status, created_at) VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001',"
        " 'care', '00000000-0000-0000-0000-000000000003', 't', 'T', 'plmdt', '00000000-0000-0000-0000-000000000004',"
        " 'assigned', '2026-01-01')",
    ],
    "teams": [
        "INSERT INTO localities (id, code, name, operating_model, postcode_districts, created_at, updated_at)"
        " VALUES ('00000000-0000-0000-0000-000000000011', 'north', 'North', 'A', '[]', '2026-01-01', '2026-01-01')",
        "INSERT INTO practices (id, ods_code, name, postcode, locality_id, created_at, updated_at) VALUES"
        " ('00000000-0000-0000-0000-000000000012', 'M91001', 'P', 'XW1 2AB', '00000000-0000-0000-0000-000000000011',"
        " '2026-01-01', '2026-01-01')",
        "INSERT INTO teams (id, code, name, team_type, locality_id, created_at, updated_at) VALUES"
        " ('00000000-0000-0000-0000-000000000013', 'p1', 'P1', 'plmdt', '00000000-0000-0000-0000-000000000011',"
        " '2026-01-01', '2026-01-01')",
        "INSERT INTO team_practices (team_id, practice_id) VALUES ('00000000-0000-0000-0000-000000000013',"
        " '00000000-0000-0000-0000-000000000012')",
        "INSERT INTO assignments (id, referral_id, team_id, kind, urgency, status, assigned_by, details, created_at,"
        " updated_at) VALUES ('00000000-0000-0000-0000-000000000014', '00000000-0000-0000-0000-000000000001',"
        " '00000000-0000-0000-0000-000000000013', 'care', 'routine', 'assigned', 'spa', '{}', '2026-01-01', '2026-01-01')",
    ],
}


@pytest.mark.parametrize("service", sorted(FIRST_REVISION_ROWS))
def test_sqlite_upgrades_a_database_that_holds_data(tmp_path: Path, service: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'with-data.db'}"
    config = alembic_config(service, url)
    command.upgrade(config, "0001")
    with sqlite3.connect(tmp_path / "with-data.db") as connection:
        for statement in FIRST_REVISION_ROWS[service]:
            connection.execute(statement)

    command.upgrade(config, "head")

    with sqlite3.connect(tmp_path / "with-data.db") as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        counts = {
            table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608 - names from sqlite_master
            for table in tables
        }
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    assert not [table for table in tables if table.startswith("_alembic_tmp")]
    # Besides the rows put in, only what migrations seed: the version, the audit chain's head.
    seeded = counts.get("alembic_version", 0) + counts.get("audit_head", 0)
    assert sum(counts.values()) - seeded == len(FIRST_REVISION_ROWS[service])
