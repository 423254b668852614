"""Traces: OpenTelemetry spans for requests, calls to other services, queries and outbox jobs.

Off unless ``otel_enabled`` is set. Each app gets a tracer provider of its own, built from its
settings in ``create_app`` and handed to each instrumentation explicitly; nothing is installed
as OpenTelemetry's global provider and no library is patched process-wide, so several apps in
one process (the tests) never share or double their spans.

A trace crosses services in the W3C ``traceparent`` header (the FastAPI and httpx
instrumentations read and write it) and crosses the outbox in a column of the same name: a row
written by a request keeps the request's ``traceparent``, and the worker that does the job
continues that trace. A job done alone runs in a child span of its row's context; jobs done
together run in one span of its own trace, linked to each row's context (one span cannot have
several parents).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, NoOpTracer, SpanContext, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from starlette.background import BackgroundTask

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.shared.settings import ServiceSettings

# The only version of the header we write: "00-" 32 hex "-" 16 hex "-" 2 hex.
TRACEPARENT_LENGTH = 55
# Probes and scrapes are asked every few seconds (the orchestrator, Prometheus): a trace of
# each tells nothing.
UNTRACED_PATHS = "/healthz,/readyz,/metrics"
# URL attributes the instrumentations record: kept without their query string, which may
# carry a patient's postcode district or another search term.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")

_W3C = TraceContextTextMapPropagator()
_NO_METRICS = NoOpMeterProvider()  # metrics are Prometheus's, not the instrumentations'


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, for an outbox row written now; None when
    nothing is being traced (tracing off, or a span not sampled)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    value = carrier.get("traceparent")
    if value is None or len(value) > TRACEPARENT_LENGTH:
        return None
    return value


def _context_of(traceparent: str | None) -> Context | None:
    if not traceparent:
        return None
    context = _W3C.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _link_to(traceparent: str | None) -> Link | None:
    context = _context_of(traceparent)
    if context is None:
        return None
    return Link(trace.get_current_span(context).get_span_context())


@contextlib.contextmanager
def job_span(
    tracer: Tracer, name: str, traceparent: str | None, **attributes: str | int
) -> Iterator[None]:
    """A span around one outbox job, continuing the trace of the request that wrote it."""
    with tracer.start_as_current_span(
        name,
        context=_context_of(traceparent) or Context(),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ):
        yield


@contextlib.contextmanager
def batch_span(
    tracer: Tracer, name: str, traceparents: Iterable[str | None], **attributes: str | int
) -> Iterator[None]:
    """A span around jobs done together: a trace of its own, linked to each job's."""
    links = [link for link in map(_link_to, traceparents) if link is not None]
    with tracer.start_as_current_span(
        name, context=Context(), kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ):
        yield


@contextlib.contextmanager
def serving_span(tracer: Tracer, name: str, callers: Iterable[SpanContext]) -> Iterator[None]:
    """Around one piece of work done for several callers (a ``Batcher``'s batch), in a task
    of its own: in the callers' span where they share one, else in a span of its own trace
    linked to each caller's."""
    distinct = {(c.trace_id, c.span_id): c for c in callers if c.is_valid}
    if not distinct:
        yield
        return
    if len(distinct) == 1:
        (caller,) = distinct.values()
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(caller)))
        try:
            yield
        finally:
            otel_context.detach(token)
        return
    links = [Link(caller) for caller in distinct.values()]
    with tracer.start_as_current_span(name, context=Context(), links=links):
        yield


class _QueriesInTraces(NoOpTracer):
    """The tracer queries are traced by: a query belonging to no request or job (a worker's
    poll, the audit sealer's round) gets no span, since each would be a one-span trace, many
    a second, telling nothing. Only ``start_span`` is used by the SQLAlchemy instrumentation."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )


def _without_query(span: trace.Span) -> None:
    recorded: Any = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = recorded.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])


def _server_request_hook(span: trace.Span, scope: dict[str, Any]) -> None:
    if span.is_recording():
        _without_query(span)


async def _client_request_hook(span: trace.Span, request: object) -> None:
    if span.is_recording():
        _without_query(span)


@dataclass
class Tracing:
    """One app's tracing: its provider (None when off) and what it instruments."""

    provider: TracerProvider | None = None

    @classmethod
    def from_settings(
        cls, service: str, settings: ServiceSettings, exporter: SpanExporter | None = None
    ) -> Tracing:
        """Off unless ``otel_enabled``; spans go to ``exporter`` if given (the tests' in-memory
        one), else over OTLP/HTTP to ``otel_endpoint``."""
        if not settings.otel_enabled:
            return cls()
        resource = Resource.create(
            {
                SERVICE_NAME: settings.otel_service_name or service,
                SERVICE_NAMESPACE: "spa-platform",
            }
        )
        # A trace is sampled where it starts and followed everywhere it goes.
        sampler = ParentBased(TraceIdRatioBased(settings.otel_sample_ratio))
        provider = TracerProvider(resource=resource, sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(exporter or _otlp_exporter(settings)))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @property
    def tracer(self) -> Tracer:
        """The tracer for the app's own spans (outbox jobs); one that records nothing when off."""
        if self.provider is None:
            return NoOpTracer()
        return self.provider.get_tracer("services")

    def instrument_app(self, app: FastAPI) -> None:
        if self.provider is None:
            return
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            meter_provider=_NO_METRICS,
            excluded_urls=UNTRACED_PATHS,
            server_request_hook=_server_request_hook,
            exclude_spans=["receive", "send"],
        )
        _unpatch_background_tasks()

    def transport(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """``transport`` with a client span around each request and ``traceparent`` on it.
        Wrapping each client's transports (rather than instrumenting the client) leaves a
        transport shared by several clients, as the tests' in-process services are, as it is."""
        if self.provider is None:
            return transport
        return AsyncOpenTelemetryTransport(
            transport,
            tracer_provider=self.provider,
            meter_provider=_NO_METRICS,
            request_hook=_client_request_hook,
        )

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A span for each query on ``engine`` (its statement, never its parameters)."""
        if self.provider is None:
            return
        connections = _NO_METRICS.get_meter("sqlalchemy").create_up_down_counter("unused")
        # The listeners go with the engine when it is collected.
        EngineTracer(  # type: ignore[no-untyped-call]
            _QueriesInTraces(self.provider.get_tracer("sqlalchemy")),
            engine.sync_engine,
            connections,
        )

    def shutdown(self) -> None:
        """Send the spans still held, then stop: at the end of the app's lifespan."""
        if self.provider is not None:
            self.provider.shutdown()


def _otlp_exporter(settings: ServiceSettings) -> SpanExporter:
    # Imported only where traces are exported over OTLP.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = settings.otel_headers.get_secret_value() if settings.otel_headers else ""
    return OTLPSpanExporter(
        endpoint=settings.otel_endpoint,
        headers=dict(_header(item) for item in headers.split(",") if item.strip()),
        timeout=settings.otel_timeout_seconds,
    )


def _header(item: str) -> tuple[str, str]:
    name, _, value = item.partition("=")
    return name.strip(), value.strip()


def _unpatch_background_tasks() -> None:
    """The FastAPI instrumentation wraps Starlette's ``BackgroundTask`` for the whole process,
    with the tracer of the first app it instruments; undone at once, so no app's spans go
    through another's provider. Our background tasks are only wake-ups of local workers."""
    original = getattr(BackgroundTask, "_otel_original_call", None)
    if original is not None:
        BackgroundTask.__call__ = original  # type: ignore[method-assign]
        del BackgroundTask._otel_original_call  # type: ignore[attr-defined]
