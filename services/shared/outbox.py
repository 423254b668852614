"""A transactional outbox: work written in the same transaction as the change that needs it,
done afterwards by a worker, retried until it succeeds.

A job is claimed by pushing its ``next_attempt_at`` past a lease (with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so replicas never claim the same job; SQLite has a single writer). The work
happens outside the claim's transaction; if the process dies mid-job the lease lapses and the job
runs again, so handlers must be idempotent.

The contract a handler keeps (``Steps``): it is a step function registered for a job kind,
``async def step(session, job)``. The worker loads the job, calls the step, and marks the job
done in the transaction that completes the step's work, so "done" and the work's effects commit
together. A step that cannot finish now raises ``RetryLater`` (the job is put off with backoff);
one that no retry can help raises ``GiveUp`` (the job fails, and the queue's own hook hands the
work to people). Any other exception is a fault: logged and retried like ``RetryLater``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import structlog
from opentelemetry.trace import NoOpTracer, Tracer
from sqlalchemy import BigInteger, ColumnElement, Index, Integer, Select, String, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, aliased, declared_attr, mapped_column

from services.shared.clock import Clock, clock_default
from services.shared.db import Timestamped, UTCDateTime
from services.shared.tracing import TRACEPARENT_LENGTH, batch_span, job_span

log = structlog.get_logger(__name__)

MAX_BACKOFF_SECONDS = 300.0


class JobStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (claimed ones too: a claim is a lease)
    DONE = "done"
    FAILED = "failed"  # given up: kept for people to look at, never retried on its own


class OutboxJobColumns(Timestamped):
    """The columns every outbox table has; a service adds what its jobs refer to."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
    last_error: Mapped[str | None] = mapped_column(String(64))
    # The request that created the job, so that one case can be followed through every log.
    request_id: Mapped[str | None] = mapped_column(String(128))
    # The W3C traceparent of the span that wrote the job (services.shared.tracing), so the
    # worker that does it continues that trace; None when nothing was being traced.
    traceparent: Mapped[str | None] = mapped_column(String(TRACEPARENT_LENGTH))

    # The column whose jobs run one at a time, in order (the worker's ``in_order_of``), if any.
    __in_order_of__: ClassVar[str | None] = None
    # Whether a failed job holds back the later ones of its key too (the worker's default for
    # ``failed_blocks``, and what the metrics count as work that is free to run).
    __failed_blocks__: ClassVar[bool] = False

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        table: str = cls.__tablename__  # type: ignore[attr-defined]
        # Due jobs in claim order, so a claim reads the first few and stops.
        indexes = [Index(f"ix_{table}_due", "status", "next_attempt_at", "id")]
        if cls.__in_order_of__ is not None:
            # "Does an earlier job of this key still wait?", asked of each candidate by a claim:
            # one index probe, however long the queue.
            indexes.append(Index(f"ix_{table}_waiting", cls.__in_order_of__, "status", "id"))
        return tuple(indexes)


def waiting_statuses(failed_blocks: bool) -> tuple[str, ...]:
    """The statuses of an earlier job that hold a later one of its key back."""
    return (JobStatus.PENDING, JobStatus.FAILED) if failed_blocks else (JobStatus.PENDING,)


class _Identified(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def request_id(self) -> str | None: ...


def job_request_id(job: _Identified) -> str:
    """The request id a job's log lines and writes carry: the request that made the job, else
    the job's own, so a case can be followed through every log."""
    return job.request_id or f"job-{job.id}"


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter, capped: accepted work is retried for ever."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(attempts, 16))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


class RetryLater(Exception):
    """Raised by a step: the job cannot be done now (a service is down, an earlier change has
    not arrived yet); the worker puts it off with backoff. ``reason`` is kept on the job and
    logged, so it names a cause (``teams``, ``spa_answered_409``), never a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GiveUp(Exception):
    """Raised by a step: no retry can do this job (another service refused it for good). The
    job fails with ``reason``, and the queue's ``on_give_up`` puts the work where people see
    it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claim:
    """A job a worker claimed: its id, the tries counted so far (this one included), and the
    request that made it, so its log lines follow the case."""

    id: int
    attempts: int
    request_id: str | None
    kind: str | None = None
    traceparent: str | None = None


# What an ``OutboxWorker`` runs for each claim: ``Steps`` for ordinary jobs, or a handler that
# manages its own transactions (webhook delivery records outcomes in batches).
Handler = Callable[[Claim], Awaitable[None]]

Job = TypeVar("Job", bound=OutboxJobColumns)

Step = Callable[[AsyncSession, Job], Awaitable[None]]
GiveUpStep = Callable[[AsyncSession, Job, GiveUp], Awaitable[None]]
# A step for many jobs of one kind at once: it does the work of those it can and returns their
# ids, leaving its last writes uncommitted (the worker marks those jobs done in the same
# commit); the jobs it leaves are done one at a time by the kind's ``Step``.
BatchedStep = Callable[[AsyncSession, list[Job]], Awaitable[set[int]]]


class Steps(Generic[Job]):
    """The handler of a queue whose jobs are done one at a time: the step registered for the
    job's kind runs with a session; the job is marked done in the transaction that ends the
    step, failed (after ``on_give_up``, in a transaction of its own) when the step gives up.

    A step may commit along the way (no transaction is to stay open across a call to another
    service); each such commit must leave work that a retry of the whole step repeats
    harmlessly. ``after_commit`` runs once the job is done or given up (to tell waiters)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Job],
        steps: Mapping[str, Step[Job]],
        *,
        on_give_up: GiveUpStep[Job] | None = None,
        after_commit: Callable[[Job], None] | None = None,
        batched: Mapping[str, BatchedStep[Job]] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model = model
        self._steps = dict(steps)
        self._on_give_up = on_give_up
        self._after_commit = after_commit
        self._batched = dict(batched or {})
        if not self._batched.keys() <= self._steps.keys():
            raise ValueError("a batched step needs a step for the jobs it leaves")

    @property
    def batched_kinds(self) -> frozenset[str]:
        """The kinds whose jobs ``batch`` takes together."""
        return frozenset(self._batched)

    async def batch(self, claims: list[Claim]) -> list[Claim]:
        """Offer the claimed jobs to their kinds' batched steps; the claims left to be done one
        at a time (by ``__call__``)."""
        model: Any = self._model
        done: list[Job] = []
        async with self._sessionmaker() as session:
            pending = await session.scalars(
                select(model)
                .where(model.id.in_([claim.id for claim in claims]))
                .where(model.status == JobStatus.PENDING)
                .order_by(model.id)
            )
            by_kind: dict[str, list[Job]] = {}
            for job in pending:
                if job.kind in self._batched:
                    by_kind.setdefault(job.kind, []).append(job)
            for kind, jobs in by_kind.items():
                finished = await self._batched[kind](session, jobs)
                done.extend(job for job in jobs if job.id in finished)
            for job in done:
                job.status = JobStatus.DONE
                job.last_error = None
            await session.commit()
        for job in done:
            with structlog.contextvars.bound_contextvars(request_id=job_request_id(job)):
                log.info("outbox_job_done", job_id=job.id, kind=job.kind, batch=len(claims))
            if self._after_commit is not None:
                self._after_commit(job)
        finished_ids = {job.id for job in done}
        return [claim for claim in claims if claim.id not in finished_ids]

    async def __call__(self, claim: Claim) -> None:
        async with self._sessionmaker() as session:
            job = await session.get(self._model, claim.id)
            if job is None or job.status != JobStatus.PENDING:
                return  # finished by an earlier claim whose lease had lapsed
            kind = job.kind
            try:
                step = self._steps.get(kind)
                if step is None:
                    raise GiveUp(f"unknown_kind_{kind}")
                await step(session, job)
            except GiveUp as given_up:
                await session.rollback()
                await self._give_up(session, claim, given_up)
                return
            job.status = JobStatus.DONE
            job.last_error = None
            await session.commit()
        log.info("outbox_job_done", job_id=claim.id, kind=kind)
        if self._after_commit is not None:
            self._after_commit(job)

    async def _give_up(self, session: AsyncSession, claim: Claim, given_up: GiveUp) -> None:
        job = await session.get(self._model, claim.id, populate_existing=True)
        if job is None or job.status != JobStatus.PENDING:
            return
        if self._on_give_up is not None:
            await self._on_give_up(session, job, given_up)
        job.status = JobStatus.FAILED
        job.last_error = given_up.reason[:64]
        await session.commit()
        log.error("outbox_job_given_up", job_id=claim.id, kind=job.kind, reason=given_up.reason)
        if self._after_commit is not None:
            self._after_commit(job)


def due_jobs(
    model: type[Job],
    now: datetime,
    limit: int,
    *,
    in_order_of: str | None = None,
    waiting_statuses: tuple[str, ...] = (JobStatus.PENDING,),
    condition: ColumnElement[bool] | None = None,
) -> Select[Any]:
    """The jobs of ``model`` due at ``now``, oldest first, locked for the caller's transaction
    and passing over those another transaction has locked. With ``in_order_of``, a job waits
    while an earlier one with the same value of that column is in ``waiting_statuses``, so at
    most one job per value is due at a time."""
    table: Any = model
    due = select(model).where(table.status == JobStatus.PENDING, table.next_attempt_at <= now)
    if in_order_of is not None:
        earlier: Any = aliased(model)
        due = due.where(
            ~exists().where(
                getattr(earlier, in_order_of) == getattr(table, in_order_of),
                earlier.status.in_(waiting_statuses),
                earlier.id < table.id,
            )
        )
    if condition is not None:
        due = due.where(condition)
    return (
        due.order_by(table.next_attempt_at, table.id).limit(limit).with_for_update(skip_locked=True)
    )


class _Loop:
    """What both workers share: the queue they work, a loop woken by ``notify`` or a poll and
    stopped by ``stop``, and putting off a job that failed."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[OutboxJobColumns],
        *,
        service: str,
        in_order_of: str | None,
        clock: Clock,
        batch_size: int,
        poll_interval: float,
        tracer: Tracer | None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model: Any = model
        self._service = service
        # Each job's span continues the trace of the request that wrote it.
        self._tracer = tracer or NoOpTracer()
        # Jobs sharing a value of this column run one at a time, oldest first; a failed job
        # holds back the later ones until someone resolves it.
        self._in_order_of = in_order_of
        # Due times are read on this clock, so a scheduled job (a timer) fires when it says.
        self._clock = clock
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._running = False

    def notify(self) -> None:
        """A job was committed: look now rather than at the next poll."""
        self._wake.set()

    @property
    def table(self) -> str:
        """The table of the queue this worker works (whose notifications wake it)."""
        return str(self._model.__tablename__)

    def stop(self) -> None:
        """Finish the work in hand, then return from ``run`` (no query is cut off mid-flight)."""
        self._stopping = True
        self._wake.set()

    async def stopped(self) -> None:
        """Wait until ``run`` has returned after ``stop``."""
        await self._stopped.wait()

    @property
    def is_running(self) -> bool:
        """Whether ``run`` is under way (a loop that failed, or stopped, is not)."""
        return self._running

    async def run(self) -> None:
        # _stopping is not reset here: a stop() that lands before the task first runs still holds.
        self._stopped.clear()
        self._running = True
        try:
            await self._loop()
        finally:
            self._running = False
            self._stopped.set()

    async def _loop(self) -> None:
        raise NotImplementedError

    async def _until_woken(self) -> None:
        """Wait for a notify or the poll interval, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
        self._wake.clear()

    async def _retry_later(self, job_id: int, error: str, attempts: int | None = None) -> None:
        """Put the job off with backoff; ``attempts`` is the tries its claim already counted,
        None when this failed try is still to be counted."""
        async with self._sessionmaker() as session, session.begin():
            job = await session.get(self._model, job_id)
            if job is None or job.status != JobStatus.PENDING:
                return
            if attempts is None:
                job.attempts += 1
                attempts = int(job.attempts)
            delay = backoff_seconds(attempts)
            job.next_attempt_at = self._clock() + timedelta(seconds=delay)
            job.last_error = error[:64]
        log.warning(
            "outbox_job_deferred",
            job_id=job_id,
            attempts=attempts,
            retry_in_s=round(delay, 2),
            error=error,
        )


class OutboxWorker(_Loop):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[OutboxJobColumns],
        handle: Handler,
        *,
        service: str,
        in_order_of: str | None = None,
        failed_blocks: bool | None = None,
        clock: Clock,
        batch_size: int = 16,
        max_in_flight: int | None = None,
        claim_filter: Callable[[], ColumnElement[bool] | None] | None = None,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(
            sessionmaker,
            model,
            service=service,
            in_order_of=in_order_of,
            clock=clock,
            batch_size=batch_size,
            poll_interval=poll_interval,
            tracer=tracer,
        )
        self._handle = handle
        # The claimed jobs of these kinds are offered to the handler together first.
        self._batch = handle if isinstance(handle, Steps) and handle.batched_kinds else None
        # Whether a failed job holds back later ones too, or only pending ones do (when a
        # failure has already been handed to people and later work must not wait on it).
        self._waiting_statuses = waiting_statuses(
            model.__failed_blocks__ if failed_blocks is None else failed_blocks
        )
        # Jobs running at once; the loop claims again once a quarter of them have finished.
        self._max_in_flight = max(max_in_flight or 2 * batch_size, batch_size)
        self._refill = max(1, self._max_in_flight // 4)
        self._room = asyncio.Event()
        # A condition the handler adds to each claim (say, to pass over the work it already
        # has enough of in hand).
        self._claim_filter = claim_filter
        self._lease = timedelta(seconds=lease_seconds)

    def stop(self) -> None:
        super().stop()
        self._room.set()

    async def _loop(self) -> None:
        # Jobs run as tasks of their own (the claimed jobs a handler takes together as one,
        # whose leftovers then run as tasks of their own), and the loop claims more as soon as
        # there is room: one slow job (a subscriber taking its full timeout, say) holds up no
        # other for longer than the batch it came in.
        in_flight: dict[asyncio.Task[Any], int] = {}  # task -> the jobs it runs

        def start(claims: list[Claim]) -> None:
            task: asyncio.Task[Any] = asyncio.create_task(
                self._run_batch(claims) if len(claims) > 1 else self._run_job(claims[0])
            )
            in_flight[task] = len(claims)
            task.add_done_callback(finished)

        def finished(task: asyncio.Task[Any]) -> None:
            in_flight.pop(task, None)
            if not task.cancelled():
                if task.exception() is not None:
                    # _run_job handles a job's own failure; this is a failure to record one.
                    log.error("outbox_job_crashed", error_type=type(task.exception()).__name__)
                elif isinstance(left := task.result(), list):
                    for claim in left:  # what a batch left, each job on its own
                        start([claim])
            if self._max_in_flight - sum(in_flight.values()) >= self._refill:
                self._room.set()

        try:
            await self._claim_while_running(in_flight, start)
            # Stopping: let the jobs in hand finish (and what their batches leave), so no query
            # is cut off mid-flight.
            while in_flight:
                await asyncio.gather(*list(in_flight), return_exceptions=True)
        except BaseException:
            # Cancelled: the jobs in hand are cancelled with us, and given a moment to unwind
            # before the resources they use are closed.
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.wait(list(in_flight), timeout=5)
            raise

    async def _claim_while_running(
        self,
        in_flight: dict[asyncio.Task[Any], int],
        start: Callable[[list[Claim]], None],
    ) -> None:
        while not self._stopping:
            room = self._max_in_flight - sum(in_flight.values())
            claimed: list[Claim] = []
            if room >= self._refill:
                try:
                    claimed = await self._claim(min(room, self._batch_size))
                except Exception as exc:  # the loop must outlive any one failure
                    log.error("outbox_cycle_failed", error_type=type(exc).__name__)
            for claims in self._runs(claimed):
                start(claims)
            if claimed and len(claimed) == min(room, self._batch_size) and room > len(claimed):
                continue  # a full batch and room for more: there may be more due now
            self._room.clear()
            if self._max_in_flight - sum(in_flight.values()) < self._refill:
                await self._room.wait()  # full: the next claim waits for room
                continue
            await self._until_woken()

    async def run_once(self) -> bool:
        """Claim the jobs that are due (one batch) and run them to the end; True when there
        were any."""
        claimed = await self._claim(self._batch_size)

        async def run(claims: list[Claim]) -> None:
            left = await self._run_batch(claims) if len(claims) > 1 else claims
            # Each in a task of its own (gather's), so its request id stays with it.
            await asyncio.gather(*(self._run_job(claim) for claim in left))

        await asyncio.gather(*(run(claims) for claims in self._runs(claimed)))
        return bool(claimed)

    def _runs(self, claimed: list[Claim]) -> list[list[Claim]]:
        """How the claimed jobs run: those the handler takes together as one run, each of the
        others on its own."""
        together = [c for c in claimed if self._batch and c.kind in self._batch.batched_kinds]
        if len(together) < 2:
            return [[claim] for claim in claimed]
        return [together, *([claim] for claim in claimed if claim not in together)]

    async def _run_batch(self, claims: list[Claim]) -> list[Claim]:
        """Offer the claims to the handler together; those it leaves (all of them, if the batch
        fails) are to be done one at a time, where each job's failure is its own."""
        assert self._batch is not None
        with (
            structlog.contextvars.bound_contextvars(service=self._service),
            batch_span(
                self._tracer,
                f"{self.table} batch",
                (claim.traceparent for claim in claims),
                **{"outbox.jobs": len(claims)},
            ),
        ):
            try:
                return await self._batch.batch(claims)
            except Exception as exc:
                log.warning("outbox_batch_failed", jobs=len(claims), error_type=type(exc).__name__)
                return claims

    async def _claim(self, limit: int) -> list[Claim]:
        now = self._clock()
        condition = self._claim_filter() if self._claim_filter is not None else None
        due = due_jobs(
            self._model,
            now,
            limit,
            in_order_of=self._in_order_of,
            waiting_statuses=self._waiting_statuses,
            condition=condition,
        )
        async with self._sessionmaker() as session, session.begin():
            jobs = await session.scalars(due)
            claimed = []
            for job in jobs:
                job.attempts += 1
                job.next_attempt_at = now + self._lease
                claimed.append(
                    Claim(job.id, job.attempts, job.request_id, job.kind, job.traceparent)
                )
            return claimed

    async def _run_job(self, claim: Claim) -> None:
        # Each job runs in its own task, so this binding stays with this job's log lines.
        structlog.contextvars.bind_contextvars(
            request_id=job_request_id(claim), service=self._service
        )
        try:
            with job_span(
                self._tracer,
                f"{self.table} {claim.kind}",
                claim.traceparent,
                **{"outbox.job_id": claim.id, "outbox.attempt": claim.attempts},
            ):
                await self._handle(claim)
        except RetryLater as later:
            await self._retry_later(claim.id, later.reason, claim.attempts)
        except Exception as exc:
            log.error("outbox_job_failed", job_id=claim.id, error_type=type(exc).__name__)
            await self._retry_later(claim.id, type(exc).__name__, claim.attempts)


@dataclass
class BatchDone:
    """What a batch step did: the jobs it put off, each with when to look at it again (the
    rest are done), and whether it made work for another queue."""

    later: dict[int, datetime] = field(default_factory=dict)
    made_work: bool = False


# A step for jobs that are only database work, done for a whole batch in one transaction.
BatchStep = Callable[[AsyncSession, list[Any]], Awaitable[BatchDone]]


class OutboxBatchWorker(_Loop):
    """For jobs that are only database work: claims a batch and does it in the same
    transaction, so a batch costs one transaction rather than one (and a claim) per job.

    The step registered for the jobs' kind gets the session and the claimed jobs, locked, and
    says which it put off (``BatchDone.later``); the worker marks the others done, and the
    commit makes the work and the claim one. When the step made work for someone else, ``then``
    is called after the commit (to wake that worker). If the batch fails, its jobs are done one
    at a time instead, and only a job that fails alone is put off (with backoff), so one bad
    job holds up no other."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[OutboxJobColumns],
        steps: Mapping[str, BatchStep],
        *,
        service: str,
        in_order_of: str | None = None,
        clock: Clock,
        batch_size: int = 64,
        poll_interval: float = 1.0,
        then: Callable[[], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(
            sessionmaker,
            model,
            service=service,
            in_order_of=in_order_of,
            clock=clock,
            batch_size=batch_size,
            poll_interval=poll_interval,
            tracer=tracer,
        )
        self._steps = dict(steps)
        self._then = then

    async def _loop(self) -> None:
        # This loop runs in a task of its own, so the binding stays with its log lines.
        structlog.contextvars.bind_contextvars(service=self._service)
        while not self._stopping:
            try:
                done = await self.run_once()
            except Exception as exc:  # the loop must outlive any one failure
                log.error("outbox_cycle_failed", error_type=type(exc).__name__)
                done = 0
            if done < self._batch_size:  # after a full batch, look again at once
                await self._until_woken()

    async def run_once(self) -> int:
        """Claim and do one batch of due jobs; how many were claimed."""
        claimed: list[int] = []
        try:
            return await self._claim_and_do(self._batch_size, claimed)
        except Exception as exc:
            log.error("outbox_batch_failed", error_type=type(exc).__name__)
        # Done alone, each job's failure is its own.
        done = 0
        while done < self._batch_size:
            claimed.clear()
            try:
                if not await self._claim_and_do(1, claimed):
                    break
            except Exception as exc:
                if not claimed:
                    raise  # the claim itself failed: the loop waits for the next poll
                log.error("outbox_job_failed", job_id=claimed[0], error_type=type(exc).__name__)
                await self._retry_later(claimed[0], type(exc).__name__)
            done += 1
        return done

    async def _claim_and_do(self, limit: int, claimed: list[int]) -> int:
        """Claim up to ``limit`` due jobs (their ids go into ``claimed``) and do them in the
        claim's transaction; how many there were."""
        made_work = False
        async with self._sessionmaker() as session, session.begin():
            jobs = list(await session.scalars(self._due(limit)))
            claimed.extend(job.id for job in jobs)
            by_kind: dict[str, list[Any]] = {}
            for job in jobs:
                by_kind.setdefault(job.kind, []).append(job)
            for kind, of_kind in by_kind.items():
                step = self._steps.get(kind)
                if step is None:
                    for job in of_kind:
                        job.status, job.last_error = JobStatus.FAILED, f"unknown_kind_{kind}"[:64]
                    log.error("outbox_job_given_up", kind=kind, jobs=len(of_kind))
                    continue
                with batch_span(
                    self._tracer,
                    f"{self.table} {kind}",
                    (job.traceparent for job in of_kind),
                    **{"outbox.jobs": len(of_kind)},
                ):
                    done = await step(session, of_kind)
                made_work = made_work or done.made_work
                for job in of_kind:
                    if job.id in done.later:
                        job.next_attempt_at = done.later[job.id]
                    else:
                        job.status = JobStatus.DONE
        if made_work and self._then is not None:
            self._then()
        return len(jobs)

    def _due(self, limit: int) -> Any:
        return due_jobs(self._model, self._clock(), limit, in_order_of=self._in_order_of)


class Wakeup:
    """Tells the worker of one queue, where it runs in this process, that work was committed.
    Where it runs in a process of its own there is none to tell here: on PostgreSQL the commit's
    notification wakes it (``services.shared.wake_listener``), elsewhere its next poll."""

    def __init__(self) -> None:
        self._worker: _Loop | None = None

    def attach(self, worker: _Loop) -> None:
        self._worker = worker

    def __call__(self) -> None:
        if self._worker is not None:
            self._worker.notify()


class Background(Protocol):
    """A loop that runs until told to stop: an outbox worker, the audit sealer."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


Worker = TypeVar("Worker", bound=Background)


@contextlib.asynccontextmanager
async def running(worker: Worker, name: str) -> AsyncIterator[Worker]:
    """Run ``worker`` in the background for the duration of the block (an app's lifespan); on
    the way out let it finish what it holds, cancelling it only if that takes too long."""
    task = asyncio.create_task(worker.run(), name=name)
    try:
        yield worker
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=10)
        except TimeoutError:
            log.warning("background_task_cancelled", worker=name)
