"""The teams service application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.shared.app import build_app, service_resources
from services.shared.clock import Clock, system_clock
from services.shared.heartbeats import Heartbeat
from services.shared.http import ServiceClient
from services.shared.outbox import OutboxWorker, running
from services.shared.state import state_of
from services.shared.wake_listener import listening
from services.teams.audit import AuditEvent, AuditHead
from services.teams.caseloads.api import router as caseloads_router
from services.teams.caseloads.models import OutboxJob
from services.teams.caseloads.reporting import report_jobs
from services.teams.catalogue import CATALOGUE
from services.teams.directory.admin_api import router as admin_router
from services.teams.directory.api import router
from services.teams.heartbeats import WorkerHeartbeat
from services.teams.openreferral.api import router as openreferral_router
from services.teams.settings import TeamsSettings
from services.teams.state import TeamsState


def create_app(
    settings: TeamsSettings,
    *,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = state_of(app, TeamsState)
        async with service_resources(
            app, settings, mounts=mounts, audit_models=(AuditEvent, AuditHead)
        ):
            spa = ServiceClient(state.http, settings.spa_url, "spa", state.tracing.tracer)
            worker = OutboxWorker(
                state.sessionmaker,
                OutboxJob,
                report_jobs(state.sessionmaker, spa),
                service="teams",
                tracer=state.tracing.tracer,
                in_order_of="assignment_id",
                clock=clock,
                poll_interval=settings.outbox_poll_interval_seconds,
            )
            async with (
                running(worker, "teams-assignment-reporter"),
                listening(
                    state.engine,
                    (worker,),
                    name="teams-wake-listener",
                    enabled=settings.outbox_listen,
                ) as listener,
                running(
                    Heartbeat(
                        state.sessionmaker,
                        WorkerHeartbeat,
                        {"assignment-reporter": worker},
                        clock=clock,
                        interval=settings.heartbeat_interval_seconds,
                    ),
                    "teams-heartbeat",
                ),
            ):
                state.worker = worker
                state.wake_listener = listener
                yield

    app = build_app(
        catalogue=CATALOGUE,
        service="teams",
        settings=settings,
        lifespan=lifespan,
        clock=clock,
        state=TeamsState(),
        audit_model=AuditEvent,
        span_exporter=span_exporter,
        description="Directory of localities, practices and teams; team caseloads.",
        queues={OutboxJob.__tablename__: OutboxJob},
        heartbeat_model=WorkerHeartbeat,
    )
    app.include_router(router)
    app.include_router(caseloads_router)
    app.include_router(admin_router)
    app.include_router(openreferral_router)
    return app


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory``."""
    return create_app(TeamsSettings(), clock=system_clock)
