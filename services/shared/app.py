"""What every service's ``create_app`` shares: logging, problems, probes, resources, OpenAPI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.shared import hardening
from services.shared.api_docs import docs_router
from services.shared.audit import AuditSealer
from services.shared.audit_api import audit_router
from services.shared.auth import KeySet, RemoteKeySet, TokenVerifier
from services.shared.clock import Clock
from services.shared.db import create_engine, create_sessionmaker
from services.shared.hardening import TooManyRequests
from services.shared.health import router as health_router
from services.shared.heartbeats import HeartbeatColumns, heartbeat_reader
from services.shared.http import create_http_client
from services.shared.logging import RequestContextMiddleware, configure_logging
from services.shared.metrics import SESSION_METRICS, RequestMetrics, ServiceMetrics, outbox_reader
from services.shared.metrics import router as metrics_router
from services.shared.openapi import Catalogue, Publication, finish, problem_content
from services.shared.outbox import OutboxJobColumns, running
from services.shared.problems import (
    PROBLEM_CONTENT_TYPE,
    AuthenticationRequired,
    BadRequest,
    ContentTooLarge,
    DatabaseUnavailable,
    InsufficientScope,
    UnsupportedMediaType,
    ValidationFailed,
    install_problem_handlers,
)
from services.shared.settings import ServiceSettings
from services.shared.state import ServiceState, state_of
from services.shared.strict_input import StrictInput, known_query, storable_path
from services.shared.tracing import Tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_app(
    *,
    service: str,
    settings: ServiceSettings,
    lifespan: Lifespan,
    description: str,
    clock: Clock,
    state: ServiceState,
    catalogue: Catalogue,
    audit_model: type[Any] | None = None,
    span_exporter: SpanExporter | None = None,
    metrics: ServiceMetrics | None = None,
    queues: Mapping[str, type[OutboxJobColumns]] | None = None,
    heartbeat_model: type[HeartbeatColumns] | None = None,
) -> FastAPI:
    """The app with what every service has; spans go to ``span_exporter`` where one is given
    and tracing is on (the tests'), else to the collector the settings name. ``queues`` (by
    name) and ``heartbeat_model`` are what readiness and the metrics read of its workers."""
    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title=f"SPA platform: {service}",
        version="0.1.0",
        description=description,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # A path with a trailing slash is a 404 problem saying so, never a redirect.
        redirect_slashes=False,
        dependencies=[Depends(storable_path), Depends(known_query)],
    )
    # The service's typed state (services.shared.state): what the lifespan opens goes on it.
    app.state = state
    state.settings = settings
    state.clock = clock
    state.tracing = tracing = Tracing.from_settings(service, settings, span_exporter)
    state.metrics = metrics = metrics or ServiceMetrics(service)
    state.queues = dict(queues or {})
    state.heartbeat_model = heartbeat_model
    if state.queues:
        metrics.readings.add(outbox_reader(state.queues))
    if heartbeat_model is not None:
        metrics.readings.add(heartbeat_reader(heartbeat_model))
    install_problem_handlers(app)
    # Added before the body limit, so inside it: a body is read here only as far as it allows.
    app.add_middleware(StrictInput)
    hardening.install(app, settings)
    app.add_middleware(RequestContextMiddleware, service=service)
    # Outside the request context, so that its time and status are those the client saw.
    app.add_middleware(RequestMetrics, metrics=metrics)
    # Outermost, so that even the bare 500 of an unexpected failure carries them.
    app.add_middleware(hardening.SecurityHeaders)
    app.include_router(health_router)
    app.include_router(metrics_router)
    if audit_model is not None:
        app.include_router(audit_router(audit_model))
    _install_problem_openapi(
        app, catalogue, Publication(settings.public_base_url, settings.public_token_url)
    )
    if settings.openapi_enabled:
        app.include_router(docs_router(app, app.openapi, settings.public_token_url))
    # Outermost of all (the instrumentation wraps the whole stack, whenever it is built).
    tracing.instrument_app(app)
    return app


@asynccontextmanager
async def service_resources(
    app: FastAPI,
    settings: ServiceSettings,
    *,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    keys: KeySet | None = None,
    audit_models: tuple[type[Any], type[Any]] | None = None,
) -> AsyncIterator[None]:
    """Engine, sessions, the one HTTP client and the token verifier, for the app's lifetime."""
    state = state_of(app, ServiceState)
    engine = create_engine(
        settings.database_url,
        clock=state.clock,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=settings.database_pool_pre_ping,
        pool_recycle=settings.database_pool_recycle_seconds,
    )
    state.tracing.instrument_engine(engine)
    http = create_http_client(settings, mounts, clock=state.clock, traced=state.tracing.transport)
    if keys is None:
        if not settings.auth_jwks_url:
            raise RuntimeError("auth_jwks_url is required to verify tokens")
        keys = RemoteKeySet(settings.auth_jwks_url, http)
    state.engine = engine
    state.sessionmaker = create_sessionmaker(engine, info={SESSION_METRICS: state.metrics})
    state.metrics.watch_pool(engine)
    state.http = http
    state.verifier = TokenVerifier(
        keys,
        clock=state.clock,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithms=settings.auth_algorithms,
        leeway_seconds=settings.auth_leeway_seconds,
        scope_claims=settings.auth_scope_claims,
        client_id_claims=settings.auth_client_id_claims,
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            if audit_models is not None:
                sealer = AuditSealer(
                    state.sessionmaker,
                    *audit_models,
                    interval=settings.audit_seal_interval_seconds,
                )
                state.audit_sealer = await stack.enter_async_context(
                    running(sealer, "audit-sealer")
                )
            yield
    finally:
        await http.aclose()
        await engine.dispose()
        state.tracing.shutdown()


_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["in", "field", "reason"],
                "properties": {
                    "in": {"type": "string"},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def _install_problem_openapi(app: FastAPI, catalogue: Catalogue, publication: Publication) -> None:
    """Document errors as they are sent: problem+json, with 401/403 on every secured operation;
    then the catalogue's names, descriptions and headers (services.shared.openapi)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["ProblemDetails"] = _PROBLEM_SCHEMA
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                _problem_answers(operation)
        finish(document, catalogue, publication)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_answers(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    # Validation answers are problems, except where an operation declared its 422 in a media
    # type of its own (FHIR's OperationOutcome).
    declared = set(responses.get("422", {}).get("content", {}))
    if "422" in responses and declared <= {"application/json", PROBLEM_CONTENT_TYPE}:
        responses["422"] = problem_content(ValidationFailed)
    if operation.get("security"):
        responses.setdefault("401", problem_content(AuthenticationRequired))
        responses.setdefault("403", problem_content(InsufficientScope))
        responses.setdefault("429", problem_content(TooManyRequests))
        # Every secured operation reads the database, whose connection can drop.
        responses.setdefault("503", problem_content(DatabaseUnavailable))
    if "requestBody" in operation:
        # A body that cannot be read at all (not UTF-8, say), one too large, or one declared
        # in another charset.
        responses.setdefault("400", problem_content(BadRequest))
        responses.setdefault("413", problem_content(ContentTooLarge))
        responses.setdefault("415", problem_content(UnsupportedMediaType))
