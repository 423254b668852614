"""Prometheus metrics, the same in every service: requests and their latency by route template,
the database pool, outbox queues read at scrape time, and counts kept only once their
transaction commits.

Each app has a registry of its own (``ServiceMetrics.registry``), never the process-wide default:
the three services' apps run in one process in the tests, and each is scraped on its own
``GET /metrics``, which needs a token with the ``metrics:read`` scope like every other route.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

# The text format every Prometheus server reads (the names here need none of 1.0.0's escaping).
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE
from prometheus_client.registry import Collector
from sqlalchemy import event, exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, aliased
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.shared.auth import Principal, requires
from services.shared.outbox import JobStatus, OutboxJobColumns, waiting_statuses
from services.shared.state import ServiceState, state_of

# The key of a session's ``info`` that holds its service's metrics (see ``create_sessionmaker``).
SESSION_METRICS = "metrics"
_PENDING = "metrics_pending"

# Latency buckets (seconds): a referral's POST with ``Prefer: wait`` may take several seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# A scrape storm reads the database at most this often.
READINGS_CACHE = timedelta(seconds=5)

# The route of a request that matched none, so that probing for paths adds no label values.
UNMATCHED_ROUTE = "unmatched"


class ServiceMetrics:
    """A service's registry and the metrics every service has; a service subclasses it for its
    own counters."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.readings = ScrapeReadings()
        self.registry.register(self.readings)
        self.pool = PoolCollector()
        self.registry.register(self.pool)

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Report ``engine``'s connection pool (done when the lifespan opens it)."""
        self.pool.engine = engine


class PoolCollector(Collector):
    """The database pool's connections in use, and its size, read as Prometheus collects."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None

    def collect(self) -> Iterable[Metric]:
        if self.engine is None:
            return []
        pool: Any = self.engine.sync_engine.pool
        in_use = GaugeMetricFamily(
            "db_pool_connections_in_use", "Database connections checked out of the pool"
        )
        size = GaugeMetricFamily("db_pool_size", "Connections the database pool keeps open")
        overflow = GaugeMetricFamily(
            "db_pool_max_overflow", "Connections the pool may open beyond its size for a burst"
        )
        # SQLite's pools keep no count of their own: they report nothing rather than a zero.
        checked_out = getattr(pool, "checkedout", None)
        pool_size = getattr(pool, "size", None)
        if checked_out is None or pool_size is None:
            return []
        in_use.add_metric([], float(checked_out()))
        size.add_metric([], float(pool_size()))
        overflow.add_metric([], float(getattr(pool, "_max_overflow", 0)))
        return [in_use, size, overflow]


Reader = Callable[[AsyncSession, datetime], Awaitable[list[Metric]]]


class ScrapeReadings(Collector):
    """Gauges read from the database when scraped: the readers run in one session, at most
    once every ``READINGS_CACHE`` on the service's clock; between reads the last values are
    served, so that however many scrapers ask, the database answers a few queries."""

    def __init__(self) -> None:
        self._readers: list[Reader] = []
        self._values: list[Metric] = []
        self._read_at: datetime | None = None

    def add(self, reader: Reader) -> None:
        self._readers.append(reader)

    async def refresh(self, state: ServiceState) -> None:
        now = state.clock()
        fresh = self._read_at is not None and timedelta(0) <= now - self._read_at < READINGS_CACHE
        if fresh or not self._readers:
            return
        values: list[Metric] = []
        async with state.sessionmaker() as session:
            for reader in self._readers:
                values.extend(await reader(session, now))
            await session.rollback()
        self._values = values
        self._read_at = now

    def collect(self) -> Iterable[Metric]:
        return list(self._values)


def outbox_reader(queues: Mapping[str, type[OutboxJobColumns]]) -> Reader:
    """Per queue: jobs due now, and how long the oldest of them has been due."""

    async def read(session: AsyncSession, now: datetime) -> list[Metric]:
        depth = GaugeMetricFamily(
            "outbox_due_jobs", "Jobs due now and not yet done, per outbox queue", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "outbox_oldest_due_age_seconds",
            "How long the oldest job free to run has been due, per outbox queue (0 when none)",
            labels=["queue"],
        )
        for queue, model in queues.items():
            count, oldest = await due_summary(session, model, now)
            depth.add_metric([queue], float(count))
            age.add_metric([queue], (now - oldest).total_seconds() if oldest else 0.0)
        return [depth, age]

    return read


async def due_summary(
    session: AsyncSession, model: type[OutboxJobColumns], now: datetime
) -> tuple[int, datetime | None]:
    """How many jobs of ``model`` are due, and when the oldest one free to run fell due. A job
    waiting in order behind an earlier one of its key (a webhook endpoint that is down, say)
    is due but not free: it says nothing about whether the workers keep up."""
    table: Any = model
    due = (table.status == JobStatus.PENDING, table.next_attempt_at <= now)
    count = await session.scalar(select(func.count()).select_from(model).where(*due))
    free = select(func.min(table.next_attempt_at)).where(*due)
    key = model.__in_order_of__
    if key is not None:
        earlier: Any = aliased(model)
        free = free.where(
            ~exists().where(
                getattr(earlier, key) == getattr(table, key),
                earlier.status.in_(waiting_statuses(model.__failed_blocks__)),
                earlier.id < table.id,
            )
        )
    oldest: datetime | None = await session.scalar(free)
    return int(count or 0), oldest


def count_after_commit(session: AsyncSession, counter: Counter, **labels: str) -> None:
    """Add one to ``counter`` when ``session``'s transaction commits; nothing if it rolls
    back. A session that carries no metrics (a command line's) counts nothing."""
    sync: Session = session.sync_session
    pending: list[Any] | None = sync.info.get(_PENDING)
    if pending is None:
        pending = sync.info[_PENDING] = []
        event.listen(sync, "after_commit", _apply_pending)
        event.listen(sync, "after_rollback", _drop_pending)
    pending.append(counter.labels(**labels) if labels else counter)


def metrics_of(session: AsyncSession) -> Any:
    """The service metrics ``session``'s sessionmaker was given, or None."""
    return session.sync_session.info.get(SESSION_METRICS)


def _apply_pending(session: Session) -> None:
    pending: list[Any] = session.info.get(_PENDING, [])
    for child in pending:
        child.inc()
    pending.clear()


def _drop_pending(session: Session) -> None:
    session.info.get(_PENDING, []).clear()


class RequestMetrics:
    """Counts each request and times it, labelled by its route's template (``/v1/referrals/
    {referral_id}``), never the raw path, so no identifier becomes a label value."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(template, method, str(status)).inc()
            elapsed = time.perf_counter() - started
            self.metrics.latency.labels(template, method).observe(elapsed)


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this service",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def scrape(
    request: Request, principal: Annotated[Principal, requires("metrics:read")]
) -> Response:
    state = state_of(request.app, ServiceState)
    await state.metrics.readings.refresh(state)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE)
