"""How a trace crosses what is not a request: an outbox row, and a batch serving many callers."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.shared.batching import Batcher
from services.shared.tracing import TRACEPARENT_LENGTH, current_traceparent, job_span


def provider_and_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_a_row_written_outside_any_trace_carries_none() -> None:
    assert current_traceparent() is None


def test_a_job_continues_the_trace_of_the_request_that_wrote_its_row() -> None:
    provider, exporter = provider_and_exporter()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/referrals") as request:
        written = current_traceparent()
    assert written is not None
    assert len(written) == TRACEPARENT_LENGTH

    with job_span(tracer, "outbox_jobs route", written, **{"outbox.job_id": 1}):
        pass

    job = next(s for s in exporter.get_finished_spans() if s.name == "outbox_jobs route")
    assert job.context is not None
    assert job.context.trace_id == request.get_span_context().trace_id
    assert job.parent is not None
    assert job.parent.span_id == request.get_span_context().span_id


def test_a_job_whose_row_carries_no_trace_starts_its_own() -> None:
    provider, exporter = provider_and_exporter()
    with job_span(provider.get_tracer("test"), "outbox_jobs route", None):
        pass
    (job,) = exporter.get_finished_spans()
    assert job.parent is None


async def test_a_batch_for_one_caller_is_in_its_trace_and_one_for_several_links_to_each() -> None:
    provider, exporter = provider_and_exporter()
    tracer = provider.get_tracer("test")
    seen: list[trace.SpanContext] = []

    async def run(items: list[int]) -> list[int]:
        seen.append(trace.get_current_span().get_span_context())
        await asyncio.sleep(0)
        return items

    batcher: Batcher[int, int] = Batcher(run, name="teams.assignments", tracer=tracer)

    async def call(item: int) -> trace.SpanContext:
        with tracer.start_as_current_span(f"caller {item}") as caller:
            assert await batcher(item) == item
            return caller.get_span_context()

    alone = await call(0)
    together = await asyncio.gather(call(1), call(2))

    assert seen[0] == alone  # the batch of one ran in its caller's span
    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "batch teams.assignments"]
    assert batch.context is not None
    assert seen[1].span_id == batch.context.span_id
    assert batch.parent is None
    assert {link.context.span_id for link in batch.links} == {c.span_id for c in together}
