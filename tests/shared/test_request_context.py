"""Request ids, the canonical log line, and errors that never leak internals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.logging import RequestContextMiddleware, configure_logging
from services.shared.problems import install_problem_handlers
from services.spa.referrals.models import Referral
from tests import factories
from tests.stack import Stack


@pytest.fixture
async def failing_app() -> AsyncIterator[httpx.AsyncClient]:
    configure_logging("INFO", "json")
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="test")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT * FROM referrals WHERE nhs_number = '9990001235'")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_an_unexpected_error_is_a_bare_500_problem(
    failing_app: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await failing_app.get("/boom")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Internal error"
    assert "SELECT" not in response.text
    assert "9990001235" not in response.text
    logged = capsys.readouterr().out
    assert "RuntimeError" in logged
    assert "9990001235" not in logged
    assert "SELECT" not in logged


async def test_request_id_is_echoed_when_given_and_made_when_not(stack: Stack) -> None:
    async with stack.raw("spa") as spa:
        given = await spa.get("/healthz", headers={"X-Request-ID": "cad-incident-42"})
        made = await spa.get("/healthz")
        unsafe = await spa.get("/healthz", headers={"X-Request-ID": "has spaces and\ttabs"})

    assert given.headers["x-request-id"] == "cad-incident-42"
    assert len(made.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "has spaces and\ttabs"


async def test_one_canonical_line_per_request(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    async with stack.raw("teams") as teams:
        await teams.get("/healthz", headers={"X-Request-ID": "probe-1"})

    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    completed = [
        line
        for line in lines
        if line["event"] == "request_completed" and line["request_id"] == "probe-1"
    ]
    assert len(completed) == 1
    line = completed[0]
    assert (line["service"], line["method"], line["path"], line["status"]) == (
        "teams",
        "GET",
        "/healthz",
        200,
    )
    assert isinstance(line["duration_ms"], float)


@pytest.mark.parametrize(
    ("failure", "status"),
    [(ConnectionError("database went away"), 503), (RuntimeError("a fault of ours"), 500)],
    ids=["database gone", "our fault"],
)
async def test_a_failed_commit_is_never_answered_201(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, failure: Exception, status: int
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise failure

    await stack.token("gp-system")  # fetched before every commit fails
    async with stack.client("spa", "gp-system") as spa:
        monkeypatch.setattr(AsyncSession, "commit", failing_commit)
        response = await spa.post("/v1/referrals", json=factories.referral())
        monkeypatch.undo()
        stored = await stack.count_rows("spa", Referral)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "location" not in response.headers
    assert stored == 0
