"""A backup of spa's database as deploy/README.md takes it (pg_dump -Fc) restores with
pg_restore into a new database that holds the referral, its timeline and audit trail intact,
and the schema's version, so the release that took the backup runs on it unmigrated."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from services.shared.audit import verify_database
from services.shared.clock import system_clock
from services.shared.db import create_engine
from services.shared.migrations import current_revisions, head_revisions
from services.spa.audit import AuditEvent, AuditHead
from tests.databases import _execute_autocommit
from tests.factories import referral
from tests.stack import Stack, post_referral

pytestmark = pytest.mark.skipif(
    shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
    reason="pg_dump and pg_restore (PostgreSQL's client programs) are not installed",
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _timeline(url: str, referral_id: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT r.status, e.event_type FROM referrals r"
                    " JOIN referral_events e ON e.referral_id = r.id"
                    " WHERE r.id = :id ORDER BY e.at, e.event_type"
                ),
                {"id": uuid.UUID(referral_id)},
            )
            return [(row.status, row.event_type) for row in rows]
    finally:
        await engine.dispose()


async def test_a_dump_restores_into_a_new_database_with_its_data_and_schema_version(
    stack: Stack, postgres_urls: dict[str, str], tmp_path: Path
) -> None:
    posted = await post_referral(stack, "gp-system", referral(needs=["fall"]))
    source = postgres_urls["spa"]
    before = await _timeline(source, posted["id"])
    assert before
    assert before[0][0] == "routed"

    dump = tmp_path / "spa.dump"
    await asyncio.to_thread(
        subprocess.run, ["pg_dump", "-Fc", "-f", str(dump), _libpq(source)], check=True
    )
    name = f"restored_{uuid.uuid4().hex[:10]}"
    admin = make_url(source).set(database="postgres").render_as_string(hide_password=False)
    await _execute_autocommit(admin, f'CREATE DATABASE "{name}"')
    restored = make_url(source).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(
            subprocess.run,
            ["pg_restore", "--no-owner", "--exit-on-error", "-d", _libpq(restored), str(dump)],
            check=True,
        )
        assert await _timeline(restored, posted["id"]) == before
        assert await current_revisions(restored) == head_revisions("spa")
        # The audit trail's hash chain came back unbroken.
        assert await verify_database(restored, AuditEvent, AuditHead, system_clock) == 0
    finally:
        await _execute_autocommit(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
