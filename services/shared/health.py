"""Liveness and readiness probes: the only routes that need no token.

``/readyz`` says whether this process can serve: its database answers. ``/readyz?workers=1``
says also whether the service's background work is being done: a worker of each kind the
settings name has beaten recently (in any process), and no outbox job free to run has waited
too long. The second is for a workers' own probe and for monitoring, never for the probe of a
process behind a Service: one dead worker pod must not take every API pod out of it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import text

from services.shared.heartbeats import last_beats, stale_kinds
from services.shared.metrics import due_summary
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
    "/readyz",
    summary="Readiness: the database answers (with workers=1: and the workers keep up)",
    responses=problem_responses(NotReady),
)
async def readiness(
    request: Request, workers: Annotated[bool, Query(description="Check the workers too")] = False
) -> dict[str, str]:
    state = state_of(request.app, ServiceState)
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        raise NotReady("The database is not reachable.") from None
    if workers:
        await _check_workers(state)
    return {"status": "ready"}


async def _check_workers(state: ServiceState) -> None:
    settings = state.settings
    now = state.clock()
    try:
        async with state.sessionmaker() as session:
            beats = {}
            if state.heartbeat_model is not None:
                beats = await last_beats(session, state.heartbeat_model)
            oldest = {
                queue: (await due_summary(session, model, now))[1]
                for queue, model in state.queues.items()
            }
    except Exception:
        raise NotReady("The database is not reachable.") from None
    stale = stale_kinds(
        beats,
        settings.readiness_worker_kinds,
        now,
        timedelta(seconds=settings.worker_stale_seconds),
    )
    if stale:
        raise NotReady(f"No worker has beaten recently for: {', '.join(stale)}.")
    limit = timedelta(seconds=settings.readiness_outbox_max_age_seconds)
    behind = sorted(queue for queue, due in oldest.items() if due is not None and now - due > limit)
    if behind:
        raise NotReady(f"Work has waited too long in: {', '.join(behind)}.")
