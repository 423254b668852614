"""A database connection that dies under a request (a restart, a failover) gives a 503 problem,
never a 500, and loses nothing: the pool replaces its connections and a retry succeeds."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from services.shared.problems import install_problem_handlers
from services.spa.referrals.models import Referral
from tests import factories
from tests.stack import Stack


def _failing_app(*, invalidated: bool) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise DBAPIError(
            "SELECT 1", None, ConnectionResetError(), connection_invalidated=invalidated
        )

    return app


async def test_a_lost_connection_is_a_503_problem_with_retry_after() -> None:
    transport = httpx.ASGITransport(app=_failing_app(invalidated=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/fails")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "urn:spa-platform:problem:database-unavailable"


async def test_any_other_database_error_stays_a_fault_of_ours() -> None:
    app = _failing_app(invalidated=False)
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
