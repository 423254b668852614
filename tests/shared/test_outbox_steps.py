"""The outbox contract: the worker runs the step of a job's kind and marks the job done with
the step's work, puts it off on ``RetryLater``, fails it on ``GiveUp`` after the queue's hook,
and never runs a job another claim has finished."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.outbox import Claim, GiveUp, OutboxWorker, RetryLater, Steps
from services.spa.webhooks.models import WebhookEvent
from tests.stack import Stack


async def _job(stack: Stack, kind: str) -> int:
    # The app's own dispatcher works this table too: stopped first, or it could take the job.
    dispatcher = stack.apps["spa"].state.webhook_dispatcher
    dispatcher.stop()
    await dispatcher.stopped()
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        row = WebhookEvent(kind=kind, event_type="test.event", referral_id=uuid.uuid4())
        session.add(row)
        await session.flush()
        return row.id


async def _row(stack: Stack, job_id: int) -> WebhookEvent:
    async with stack.apps["spa"].state.sessionmaker() as session:
        row: WebhookEvent | None = await session.scalar(
            select(WebhookEvent).where(WebhookEvent.id == job_id)
        )
        assert row is not None
        return row


async def _run_once(stack: Stack, steps: Steps[WebhookEvent]) -> None:
    sessionmaker = stack.apps["spa"].state.sessionmaker
    worker = OutboxWorker(sessionmaker, WebhookEvent, steps, service="spa", clock=stack.clock)
    await worker.run_once()


async def test_a_step_that_returns_is_done_with_its_work(stack: Stack) -> None:
    job_id = await _job(stack, "test")
    finished: list[int] = []

    async def step(session: AsyncSession, job: WebhookEvent) -> None:
        job.event_type = "test.worked"

    sessionmaker = stack.apps["spa"].state.sessionmaker
    steps = Steps(
        sessionmaker, WebhookEvent, {"test": step}, after_commit=lambda j: finished.append(j.id)
    )
    await _run_once(stack, steps)
    row = await _row(stack, job_id)

    assert (row.status, row.event_type, row.last_error) == ("done", "test.worked", None)
    assert finished == [job_id]


async def test_retry_later_puts_the_job_off_with_its_reason(stack: Stack) -> None:
    job_id = await _job(stack, "test")

    async def step(session: AsyncSession, job: WebhookEvent) -> None:
        raise RetryLater("teams")

    sessionmaker = stack.apps["spa"].state.sessionmaker
    await _run_once(stack, Steps(sessionmaker, WebhookEvent, {"test": step}))
    row = await _row(stack, job_id)

    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "teams")
    assert row.next_attempt_at > stack.clock()


async def test_give_up_fails_the_job_after_the_queues_hook_and_drops_the_steps_work(
    stack: Stack,
) -> None:
    job_id = await _job(stack, "test")
    finished: list[int] = []

    async def step(session: AsyncSession, job: WebhookEvent) -> None:
        job.event_type = "test.half.done"
        raise GiveUp("routing_refused_422")

    async def hand_over(session: AsyncSession, job: WebhookEvent, reason: GiveUp) -> None:
        job.data = {"handed_over": reason.reason}

    sessionmaker = stack.apps["spa"].state.sessionmaker
    steps = Steps(
        sessionmaker,
        WebhookEvent,
        {"test": step},
        on_give_up=hand_over,
        after_commit=lambda j: finished.append(j.id),
    )
    await _run_once(stack, steps)
    row = await _row(stack, job_id)

    assert (row.status, row.last_error) == ("failed", "routing_refused_422")
    assert row.event_type == "test.event"  # the step's unfinished work is not kept
    assert row.data == {"handed_over": "routing_refused_422"}
    assert finished == [job_id]


async def test_a_job_of_a_kind_nobody_handles_fails_and_is_not_retried(stack: Stack) -> None:
    job_id = await _job(stack, "nobody")

    async def step(session: AsyncSession, job: WebhookEvent) -> None:
        raise AssertionError("not this kind")

    sessionmaker = stack.apps["spa"].state.sessionmaker
    await _run_once(stack, Steps(sessionmaker, WebhookEvent, {"test": step}))
    row = await _row(stack, job_id)

    assert (row.status, row.last_error) == ("failed", "unknown_kind_nobody")


async def test_a_job_finished_by_an_earlier_claim_is_not_run_again(stack: Stack) -> None:
    job_id = await _job(stack, "test")
    ran: list[int] = []

    async def step(session: AsyncSession, job: WebhookEvent) -> None:
        ran.append(job.id)

    sessionmaker = stack.apps["spa"].state.sessionmaker
    steps = Steps(sessionmaker, WebhookEvent, {"test": step})
    await _run_once(stack, steps)
    await steps(await _claim_of(stack, job_id))  # a second claim whose lease had lapsed

    assert ran == [job_id]


async def _claim_of(stack: Stack, job_id: int) -> Claim:
    row = await _row(stack, job_id)
    return Claim(row.id, row.attempts, row.request_id)
