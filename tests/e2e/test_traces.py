"""One trace follows a referral through the three services and across both outboxes; with
tracing off nothing is exported and the outbox rows carry no trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from starlette.background import BackgroundTask

from services.spa.referrals.models import OutboxJob as SpaOutboxJob
from services.spa.webhooks.models import WebhookEvent
from services.teams.caseloads.models import OutboxJob as TeamsOutboxJob
from tests import factories
from tests.stack import Stack, running_stack

SERVICES = ("spa", "routing", "teams")
Spans = dict[str, list[ReadableSpan]]


@pytest.fixture
def exporters() -> dict[str, InMemorySpanExporter]:
    return {service: InMemorySpanExporter() for service in SERVICES}


@pytest.fixture
async def traced_stack(
    postgres_urls: dict[str, str],
    issuer_key_file: Path,
    exporters: dict[str, InMemorySpanExporter],
) -> AsyncIterator[Stack]:
    overrides = {service: {"otel_enabled": True} for service in SERVICES}
    async with running_stack(
        postgres_urls, issuer_key_file, overrides=overrides, span_exporters=exporters
    ) as stack:
        yield stack


def finished(stack: Stack, exporters: dict[str, InMemorySpanExporter]) -> Spans:
    for app in stack.apps.values():
        app.state.tracing.provider.force_flush()
    return {service: list(exporter.get_finished_spans()) for service, exporter in exporters.items()}


async def exported(
    stack: Stack, exporters: dict[str, InMemorySpanExporter], service: str, name: str
) -> Spans:
    """Every span so far, once ``service`` has exported one named ``name``: a job's span ends
    just after the commit that the test sees, so it is waited for rather than assumed."""

    async def ended() -> Spans | None:
        spans = finished(stack, exporters)
        return spans if any(s.name == name for s in spans[service]) else None

    result: Spans = await stack.wait_for(ended, within=30)
    return result


def server_span(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    """The one span of a request the service answered. Called in-process (over the ASGI
    transport, in the caller's task) it is recorded as the caller's internal work, not as a
    server's: the instrumentation sees the caller's span already current."""
    found = [s for s in spans if s.kind is not SpanKind.CLIENT and s.name == name]
    assert len(found) == 1, sorted(s.name for s in spans if s.kind is not SpanKind.CLIENT)
    return found[0]


def in_trace(spans: Spans, trace_id: int) -> Spans:
    return {
        service: [s for s in of_service if s.context is not None and s.context.trace_id == trace_id]
        for service, of_service in spans.items()
    }


def trace_of(traceparent: str | None) -> int:
    assert traceparent is not None
    return int(traceparent.split("-")[1], 16)


async def routed(stack: Stack) -> dict[str, Any]:
    """A referral posted and routed (given time on a loaded machine)."""
    body = factories.referral(needs=["ltc_management"], practice="M91004")
    async with stack.client("spa", "gp-system") as spa:
        created = await spa.post("/v1/referrals", json=body)
        assert created.status_code == 201, created.text

        async def settled() -> dict[str, Any] | None:
            current: dict[str, Any] = (
                await spa.get(f"/v1/referrals/{created.json()['id']}")
            ).json()
            return current if current["status"] == "routed" else None

        referral: dict[str, Any] = await stack.wait_for(settled, within=30)
    return referral


async def test_one_trace_runs_from_the_post_through_routing_to_the_teams_assignment(
    traced_stack: Stack, exporters: dict[str, InMemorySpanExporter]
) -> None:
    await routed(traced_stack)
    async with traced_stack.client("teams", "team-app") as teams:
        located = await teams.get("/v1/locate", params={"district": "XW4"})
    assert located.status_code == 200, located.text
    spans = await exported(traced_stack, exporters, "spa", "outbox_jobs route")
    assert server_span(spans["teams"], "GET /v1/locate").attributes

    post = server_span(spans["spa"], "POST /v1/referrals")
    assert post.context is not None
    trace = in_trace(spans, post.context.trace_id)
    # The worker's span for the routing job is a child of the request that wrote the job.
    (job,) = [s for s in trace["spa"] if s.name == "outbox_jobs route"]
    assert job.kind is SpanKind.CONSUMER
    assert job.parent is not None
    assert job.parent.span_id == post.context.span_id
    # Then routing decides and teams takes the case, in the same trace, each reached by a
    # call spa made (its client span the parent of the callee's server span).
    decision = server_span(trace["routing"], "POST /v1/decisions/batch")
    resolution = server_span(trace["teams"], "POST /v1/resolutions")
    assignment = server_span(trace["teams"], "POST /v1/assignments/batch")
    for caller, callee in (("spa", decision), ("routing", resolution), ("spa", assignment)):
        calls = {
            s.context.span_id for s in trace[caller] if s.kind is SpanKind.CLIENT and s.context
        }
        assert callee.parent is not None
        assert callee.parent.span_id in calls
    # Each service's queries are in the trace; none records its parameters.
    for service in SERVICES:
        queries = [s for s in trace[service] if (s.attributes or {}).get("db.system")]
        assert queries, service
    # No query outside a request or job is traced (a worker's poll would be a trace a poll);
    # no URL recorded keeps its query string (a search may name a postcode district).
    for of_service in spans.values():
        for span in of_service:
            attributes = span.attributes or {}
            assert span.parent is not None or "db.system" not in attributes, span.name
            urls = [attributes.get(key) for key in ("http.url", "url.full", "http.target")]
            assert not any("?" in str(url) for url in urls if url), span.name
    # Each app's spans went to its own provider only: nothing doubled, nothing crossed over.
    for service, of_service in spans.items():
        assert {s.resource.attributes["service.name"] for s in of_service} == {service}
    assert not hasattr(BackgroundTask, "_otel_original_call")


async def test_the_webhook_events_carry_the_referrals_trace_and_their_dispatch_links_to_it(
    traced_stack: Stack, exporters: dict[str, InMemorySpanExporter]
) -> None:
    referral = await routed(traced_stack)
    spa = traced_stack.apps["spa"].state

    async def dispatched() -> list[WebhookEvent] | None:
        async with spa.sessionmaker() as session:
            events = list(
                await session.scalars(
                    select(WebhookEvent).where(WebhookEvent.referral_id == referral["id"])
                )
            )
        return events if events and all(e.status == "done" for e in events) else None

    events = await traced_stack.wait_for(dispatched, within=30)
    spans = await exported(traced_stack, exporters, "spa", "webhook_events dispatch")

    post = server_span(spans["spa"], "POST /v1/referrals")
    assert post.context is not None
    # Received (written by the POST) and routed (by the worker's job): both in the trace.
    assert {trace_of(event.traceparent) for event in events} == {post.context.trace_id}
    dispatches = [s for s in spans["spa"] if s.name == "webhook_events dispatch"]
    linked = {link.context.trace_id for s in dispatches for link in s.links}
    assert post.context.trace_id in linked


async def test_a_teams_change_reaches_spa_in_the_trace_of_the_request_that_made_it(
    traced_stack: Stack, exporters: dict[str, InMemorySpanExporter]
) -> None:
    referral = await routed(traced_stack)
    assignment_id = next(a["assignment_id"] for a in referral["assignments"] if a["kind"] == "care")
    async with traced_stack.client("teams", "team-app") as team:
        planned = traced_stack.clock().isoformat()
        accepted = await team.post(
            f"/v1/assignments/{assignment_id}/accept", json={"planned_first_contact_at": planned}
        )
    assert accepted.status_code == 200, accepted.text

    async def reported() -> bool:
        async with traced_stack.client("spa", "gp-system") as spa:
            current = (await spa.get(f"/v1/referrals/{referral['id']}")).json()
        return bool(current["status"] == "accepted")

    await traced_stack.wait_for(reported, within=30)
    spans = await exported(traced_stack, exporters, "teams", "outbox_jobs report")

    accept = server_span(spans["teams"], "POST /v1/assignments/{assignment_id}/accept")
    assert accept.context is not None
    trace = in_trace(spans, accept.context.trace_id)
    (job,) = [s for s in trace["teams"] if s.name == "outbox_jobs report"]
    assert job.parent is not None
    assert job.parent.span_id == accept.context.span_id
    update = server_span(trace["spa"], "POST /v1/referrals/{referral_id}/assignment-updates")
    assert update.parent is not None
    assert update.parent.span_id in {s.context.span_id for s in trace["teams"] if s.context}


async def test_with_tracing_off_nothing_is_exported_and_the_rows_carry_no_trace(
    postgres_urls: dict[str, str],
    issuer_key_file: Path,
    exporters: dict[str, InMemorySpanExporter],
) -> None:
    async with running_stack(postgres_urls, issuer_key_file, span_exporters=exporters) as stack:
        referral = await routed(stack)
        spa, teams = stack.apps["spa"].state, stack.apps["teams"].state
        async with spa.sessionmaker() as session:
            jobs = list(await session.scalars(select(SpaOutboxJob.traceparent)))
            events = list(await session.scalars(select(WebhookEvent.traceparent)))
        async with teams.sessionmaker() as session:
            reports = list(await session.scalars(select(TeamsOutboxJob.traceparent)))
        assert not stack.apps["spa"].state.tracing.enabled

    assert referral["team"]["code"] == "plmdt-north-2"
    assert jobs
    assert events
    assert set(jobs) | set(events) | set(reports) == {None}
    assert all(not exporter.get_finished_spans() for exporter in exporters.values())
