"""The batch worker does a batch of database-only jobs in its claim's transaction; a job that
fails is put off alone, the rest are done, and one key's jobs stay in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.outbox import BatchDone, OutboxBatchWorker
from services.spa.webhooks.models import WebhookEvent
from tests.stack import Stack


async def _events(stack: Stack, keys: list[uuid.UUID]) -> list[int]:
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        rows = [WebhookEvent(kind="dispatch", event_type="test.event", referral_id=k) for k in keys]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def _states(stack: Stack, ids: list[int]) -> dict[int, Any]:
    async with stack.apps["spa"].state.sessionmaker() as session:
        rows = await session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(ids)))
        return {row.id: row for row in rows}


async def _stop_dispatcher(stack: Stack) -> None:
    dispatcher = stack.apps["spa"].state.webhook_dispatcher
    dispatcher.stop()
    await dispatcher.stopped()


async def test_a_failing_job_is_put_off_alone_and_its_keys_later_jobs_wait(stack: Stack) -> None:
    await _stop_dispatcher(stack)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = await _events(stack, [a, b, c, a])  # the second of key a must wait for the first
    bad = ids[0]
    batches: list[list[int]] = []

    async def handle(session: AsyncSession, batch: list[WebhookEvent]) -> BatchDone:
        batches.append([job.id for job in batch])
        if any(job.id == bad for job in batch):
            raise RuntimeError("this job cannot be done")
        return BatchDone()

    worker = OutboxBatchWorker(
        stack.apps["spa"].state.sessionmaker,
        WebhookEvent,
        {"dispatch": handle},
        service="spa",
        in_order_of="referral_id",
        clock=stack.clock,
        batch_size=10,
    )
    claimed = await worker.run_once()
    states = await _states(stack, ids)

    assert batches[0] == ids[:3]  # one job per key: a's second waits for its first
    assert claimed == 3  # the batch failed; taken alone, a's first was put off, b and c done
    assert [states[i].status for i in ids] == ["pending", "done", "done", "pending"]
    assert states[bad].attempts == 1
    assert states[bad].last_error == "RuntimeError"
    assert states[bad].next_attempt_at > stack.clock()
    assert await worker.run_once() == 0  # a's first is put off; its second still waits


async def test_two_workers_never_take_the_same_job(stack: Stack) -> None:
    await _stop_dispatcher(stack)
    ids = await _events(stack, [uuid.uuid4() for _ in range(30)])
    seen: list[int] = []

    async def handle(session: AsyncSession, batch: list[WebhookEvent]) -> BatchDone:
        await asyncio.sleep(0.01)  # hold the claim while the other worker looks
        seen.extend(job.id for job in batch)
        return BatchDone(made_work=True)

    woken = []
    workers = [
        OutboxBatchWorker(
            stack.apps["spa"].state.sessionmaker,
            WebhookEvent,
            {"dispatch": handle},
            service="spa",
            clock=stack.clock,
            batch_size=4,
            then=lambda: woken.append(1),
        )
        for _ in range(2)
    ]
    while len(seen) < len(ids):
        claimed = await asyncio.gather(*(worker.run_once() for worker in workers))
        assert sum(claimed) > 0

    assert sorted(seen) == sorted(ids)
    assert woken  # told after each commit that made work
