"""Liveness and readiness probes: the only routes that need no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from services.shared.problems import TYPE_PREFIX, Problem, problem_responses
from services.shared.state import ServiceState, state_of


class NotReady(Problem):
    type = TYPE_PREFIX + "not-ready"
    title = "The service cannot serve requests yet"
    status = 503


router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is serving")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Readiness: the database answers", responses=problem_responses(NotReady)
)
async def readiness(request: Request) -> dict[str, str]:
    engine = state_of(request.app, ServiceState).engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        raise NotReady("The database is not reachable.") from None
    return {"status": "ready"}
