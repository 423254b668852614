"""The database unavailable or busy (a restart, a failover, no connection free, a deadlock) gives a
503 problem, never a 500, and loses nothing: the pool replaces dead connections and a retry with
the same Idempotency-Key tells whether the referral was stored."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.shared.problems import install_problem_handlers
from services.spa.referrals.models import Referral
from tests import factories
from tests.stack import Stack


def _failing_app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise error

    return app


def _from_driver(error: Exception) -> DBAPIError:
    """As SQLAlchemy's asyncpg adapter raises it: a DBAPI error raised from the driver's."""
    try:
        try:
            raise error
        except Exception as cause:
            raise RuntimeError(str(cause)) from cause
    except RuntimeError as adapted:
        return DBAPIError("SELECT 1", None, adapted)


UNAVAILABLE = {
    "connection lost": DBAPIError(
        "SELECT 1", None, ConnectionResetError(), connection_invalidated=True
    ),
    "operational error": OperationalError("SELECT 1", None, Exception("database is locked")),
    "too many clients": _from_driver(asyncpg.exceptions.TooManyConnectionsError("too many")),
    "starting up": _from_driver(asyncpg.exceptions.CannotConnectNowError("starting up")),
    "deadlock": _from_driver(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")),
    "pool exhausted": PoolTimeout("QueuePool limit reached"),
    "server refused": ConnectionRefusedError("connection refused"),
}


@pytest.mark.parametrize("kind", UNAVAILABLE)
async def test_the_database_unavailable_or_busy_is_a_503_problem_with_retry_after(
    kind: str,
) -> None:
    transport = httpx.ASGITransport(app=_failing_app(UNAVAILABLE[kind]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/fails")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["type"] == "urn:spa-platform:problem:database-unavailable"
    assert "Idempotency-Key" in problem["detail"]  # it does not claim that nothing was stored


FAULTS_OF_OURS = {
    "undefined table": _from_driver(asyncpg.exceptions.UndefinedTableError("no such table")),
    "unique violation": IntegrityError("INSERT", None, Exception("duplicate key")),
}


@pytest.mark.parametrize("kind", FAULTS_OF_OURS)
async def test_any_other_database_error_stays_a_fault_of_ours(kind: str) -> None:
    app = _failing_app(FAULTS_OF_OURS[kind])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/fails")

    assert response.status_code == 500


async def _drop_connections(database_url: str) -> int:
    """Terminate every server connection to the database of ``database_url``."""
    url = make_url(database_url)
    admin = await asyncpg.connect(
        user=url.username, host=url.host, port=url.port, database="postgres"
    )
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
    finally:
        await admin.close()
    return int(dropped)


async def test_after_the_database_drops_every_connection_a_retried_referral_is_kept_once(
    stack: Stack,
) -> None:
    body = factories.referral()
    key = str(uuid.uuid4())
    async with stack.client("spa", "gp-system", idempotency_keys=False) as spa:
        first = await spa.post(
            "/v1/referrals", json=factories.referral(), headers={"Idempotency-Key": "warm-up"}
        )
        assert first.status_code == 201  # the pool holds connections now
        assert await _drop_connections(str(stack.apps["spa"].state.settings.database_url)) > 0

        answers = []
        for _ in range(3):
            response = await spa.post("/v1/referrals", json=body, headers={"Idempotency-Key": key})
            answers.append(response)
            if response.status_code != 503:
                break

    assert [r.status_code for r in answers][-1] == 201, [r.text for r in answers]
    for refused in answers[:-1]:
        assert refused.json()["type"] == "urn:spa-platform:problem:database-unavailable"
    assert await stack.count_rows("spa", Referral) == 2
