"""The spa service application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.shared.app import build_app, service_resources
from services.shared.auth import KeySet, StaticKeySet
from services.shared.clock import Clock, system_clock
from services.shared.hardening import RateLimits
from services.shared.heartbeats import Heartbeat
from services.shared.http import ServiceClient
from services.shared.outbox import OutboxBatchWorker, OutboxJobColumns, OutboxWorker, running
from services.shared.state import state_of
from services.shared.wake_listener import listening
from services.spa.audit import AuditEvent, AuditHead
from services.spa.catalogue import CATALOGUE
from services.spa.console.app import install as install_console
from services.spa.fhir.api import router as fhir_router
from services.spa.fhir.edge import FhirEdge
from services.spa.fhir.mapping import load_mapping
from services.spa.fhir.replies import Replier
from services.spa.heartbeats import WorkerHeartbeat
from services.spa.identity.api import router as identity_router
from services.spa.identity.keys import SigningKeys
from services.spa.metrics import SpaMetrics
from services.spa.queue.api import router as queue_router
from services.spa.readings import response_clocks
from services.spa.referrals.api import router as referrals_router
from services.spa.referrals.changes_api import router as changes_router
from services.spa.referrals.clients import RoutingClient, TeamsClient
from services.spa.referrals.clock_keeper import ClockKeeper, timer_jobs
from services.spa.referrals.clocks import load_policy
from services.spa.referrals.models import OutboxJob, ReferralTimer
from services.spa.referrals.routing_job import ReferralRouter, referral_jobs
from services.spa.referrals.waiting import StatusWatch
from services.spa.reports.api import router as reports_router
from services.spa.settings import SpaSettings
from services.spa.state import SpaState
from services.spa.wakeups import Wakeups
from services.spa.webhooks import addresses
from services.spa.webhooks.api import publish_catalogue
from services.spa.webhooks.api import router as webhooks_router
from services.spa.webhooks.delivery import Deliverer, delivery_client
from services.spa.webhooks.fanout import Dispatcher
from services.spa.webhooks.models import WebhookEvent, WebhookMessage
from services.spa.webhooks.service import UrlPolicy

# The outbox queues whose depth and age the metrics and readiness report, by table.
QUEUES: dict[str, type[OutboxJobColumns]] = {
    model.__tablename__: model for model in (OutboxJob, ReferralTimer, WebhookEvent, WebhookMessage)
}


def create_app(
    settings: SpaSettings,
    *,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = state_of(app, SpaState)
        keys: KeySet | None = None
        if settings.issuer_enabled:
            state.signing_keys = SigningKeys.from_files(settings.issuer_key_files)
            state.hash_checks = asyncio.Semaphore(settings.concurrent_secret_checks)
            state.token_limits = {
                "client": RateLimits(settings.token_rate_limit, settings.rate_limit_storage_uri),
                "address": RateLimits(
                    settings.token_address_rate_limit, settings.rate_limit_storage_uri
                ),
            }
            if not settings.auth_jwks_url:
                keys = StaticKeySet(state.signing_keys.jwks())
        async with service_resources(
            app, settings, mounts=mounts, keys=keys, audit_models=(AuditEvent, AuditHead)
        ):
            state.status_watch = StatusWatch()
            state.clock_policy = policy = load_policy(settings.clock_policy_file)
            state.bars_mapping = load_mapping(settings.bars_mapping_file)
            teams = TeamsClient(
                ServiceClient(state.http, settings.teams_url, "teams", state.tracing.tracer)
            )
            state.wakeups = wakeups = Wakeups()
            router = ReferralRouter(
                RoutingClient(
                    ServiceClient(state.http, settings.routing_url, "routing", state.tracing.tracer)
                ),
                teams,
                policy,
                clock=clock,
            )
            worker = OutboxWorker(
                state.sessionmaker,
                OutboxJob,
                referral_jobs(state.sessionmaker, router, state.status_watch.changed),
                service="spa",
                tracer=state.tracing.tracer,
                in_order_of="referral_id",
                failed_blocks=False,
                clock=clock,
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.outbox_poll_interval_seconds,
                lease_seconds=settings.outbox_lease_seconds,
            )
            if not settings.background_workers:
                # Serving the API only: the workers run in processes of their own.
                state.webhook_url_policy = _url_policy(settings)
                yield
                return
            state.clock_keeper = keeper = ClockKeeper(teams, policy, clock)
            timers = OutboxWorker(
                state.sessionmaker,
                ReferralTimer,
                timer_jobs(state.sessionmaker, keeper, state.status_watch.changed),
                service="spa",
                tracer=state.tracing.tracer,
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.timer_poll_interval_seconds,
                lease_seconds=settings.outbox_lease_seconds,
                clock=clock,
            )
            async with (
                _webhooks(app, settings, clock) as (dispatcher, deliverer),
                running(worker, "spa-routing-worker"),
                running(timers, "spa-timers"),
                running(dispatcher, "spa-webhook-dispatcher"),
                running(deliverer, "spa-webhook-deliverer"),
                # Not the timers: they fall due with time, and their poll finds them.
                listening(
                    state.engine,
                    (worker, dispatcher, deliverer),
                    name="spa-wake-listener",
                    enabled=settings.outbox_listen,
                ) as listener,
                running(
                    Heartbeat(
                        state.sessionmaker,
                        WorkerHeartbeat,
                        {
                            "routing": worker,
                            "timers": timers,
                            "webhook-dispatcher": dispatcher,
                            "webhook-deliverer": deliverer,
                        },
                        clock=clock,
                        interval=settings.heartbeat_interval_seconds,
                    ),
                    "spa-heartbeat",
                ),
            ):
                state.worker = worker
                state.timers = timers
                state.wake_listener = listener
                wakeups.routing.attach(worker)
                wakeups.deliveries.attach(deliverer)
                wakeups.timers.attach(timers)
                yield

    metrics = SpaMetrics()
    metrics.readings.add(response_clocks)
    app = build_app(
        catalogue=CATALOGUE,
        service="spa",
        settings=settings,
        lifespan=lifespan,
        clock=clock,
        state=SpaState(),
        audit_model=AuditEvent,
        span_exporter=span_exporter,
        description="Single Point of Access: referral intake and lifecycle; the built-in token issuer.",
        metrics=metrics,
        queues=QUEUES,
        heartbeat_model=WorkerHeartbeat,
    )
    if settings.issuer_enabled:
        app.include_router(identity_router)
    app.include_router(referrals_router)
    app.include_router(changes_router)
    app.include_router(queue_router)
    app.include_router(reports_router)
    app.include_router(webhooks_router)
    app.include_router(fhir_router)
    if settings.console_enabled:
        install_console(app)
    # Outermost: every answer under /FHIR/R4, whoever gave it, is FHIR's (see fhir/edge.py).
    app.add_middleware(FhirEdge)
    publish_catalogue(app)
    return app


@asynccontextmanager
async def _webhooks(
    app: FastAPI, settings: SpaSettings, clock: Clock
) -> AsyncIterator[tuple[OutboxBatchWorker, OutboxWorker]]:
    """The two webhook workers, and their own HTTP client: subscribers' endpoints are not our
    services, so no service credentials, no redirects, and a timeout of their own."""
    state = state_of(app, SpaState)
    state.webhook_url_policy = policy = _url_policy(settings)
    async with delivery_client(policy.allowed) as http:
        deliver = Deliverer(
            state.sessionmaker,
            http,
            clock=clock,
            per_endpoint=settings.webhook_per_endpoint_concurrency,
            allow_http_hosts=settings.webhook_allow_http_hosts,
            allowed_networks=policy.allowed,
            disable_after=timedelta(hours=settings.webhook_disable_after_hours),
            timeout=settings.webhook_timeout_seconds,
            lease=timedelta(seconds=settings.webhook_timeout_seconds * 4),
        )
        deliverer = OutboxWorker(
            state.sessionmaker,
            WebhookMessage,
            deliver,
            service="spa",
            tracer=state.tracing.tracer,
            batch_size=settings.webhook_batch_size,
            max_in_flight=4 * settings.webhook_batch_size,
            claim_filter=deliver.claim_filter,
            # A referral's webhook events leave for each endpoint one at a time, in order, and a
            # BaRS sender's replies likewise; one given up (after a day of tries) holds back none
            # of the later ones.
            in_order_of="in_order_of",
            failed_blocks=False,
            poll_interval=settings.webhook_poll_interval_seconds,
            lease_seconds=settings.webhook_timeout_seconds * 4,
            clock=clock,
        )
        dispatcher = OutboxBatchWorker(
            state.sessionmaker,
            WebhookEvent,
            {"dispatch": Dispatcher(clock, repliers=[Replier(settings.bars_target_identifier)])},
            service="spa",
            tracer=state.tracing.tracer,
            in_order_of="referral_id",
            clock=clock,
            batch_size=settings.webhook_batch_size,
            poll_interval=settings.webhook_poll_interval_seconds,
            then=deliverer.notify,
        )
        state.webhook_dispatcher = dispatcher
        state.webhook_deliverer_worker = deliverer
        yield dispatcher, deliverer


def _url_policy(settings: SpaSettings) -> UrlPolicy:
    """Where subscribers' endpoints may be: checked when one subscribes and at each delivery."""
    allowed = addresses.networks(settings.webhook_allowed_networks)
    return UrlPolicy(settings.webhook_allow_http_hosts, allowed)


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory``."""
    return create_app(SpaSettings(), clock=system_clock)
