"""The routing service application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.routing.audit import AuditEvent, AuditHead
from services.routing.catalogue import CATALOGUE
from services.routing.decisions.api import router
from services.routing.decisions.clients import TeamsClient
from services.routing.rule_sets.api import router as rule_sets_router
from services.routing.rule_sets.service import RuleBook, ensure_county_default
from services.routing.settings import RoutingSettings
from services.routing.state import RoutingState
from services.shared.app import build_app, service_resources
from services.shared.clock import Clock, system_clock
from services.shared.http import ServiceClient
from services.shared.state import state_of


def create_app(
    settings: RoutingSettings,
    *,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = state_of(app, RoutingState)
        async with service_resources(
            app, settings, mounts=mounts, audit_models=(AuditEvent, AuditHead)
        ):
            state.rule_book = RuleBook()
            await ensure_county_default(state.sessionmaker, clock())
            state.teams = TeamsClient(
                ServiceClient(state.http, settings.teams_url, "teams", state.tracing.tracer)
            )
            yield

    app = build_app(
        catalogue=CATALOGUE,
        service="routing",
        settings=settings,
        lifespan=lifespan,
        clock=clock,
        state=RoutingState(),
        audit_model=AuditEvent,
        span_exporter=span_exporter,
        description="Triage rules and routing decisions.",
    )
    app.include_router(router)
    app.include_router(rule_sets_router)
    return app


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory``."""
    return create_app(RoutingSettings(), clock=system_clock)
