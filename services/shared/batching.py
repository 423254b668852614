"""One batch operation serving many concurrent callers: a group commit, for any work.

Each caller awaits its own item; the items that arrive while a batch is being run are gathered
and run together as the next batch. Under load, N callers cost a handful of round trips instead
of N; alone, a caller waits for one round trip, as it would have anyway.

A batch runs under its callers' request id when they share one; a batch for several requests
gets an id of its own (which the calls it makes carry to other services), and a named batcher
logs which request ids it served, so each case can still be followed through every log.
Traces likewise: a batch runs in its callers' span when they share one, else in a span of its
own linked to each caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

import structlog
from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, SpanContext, Tracer

from services.shared.tracing import serving_span

log = structlog.get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """``await batcher(item)`` returns ``run(items)[i]`` for the batch its item went in.

    ``run`` gets the items in the order they came and returns one result for each. If it
    raises, every caller of that batch gets the exception (so each can retry its own item).
    """

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 500,
        name: str | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        # A batch for several traces gets a span of its own, linked to each.
        self._tracer = tracer or NoOpTracer()
        # Named: each batch serving several requests logs their ids (calls to other services).
        self._name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._callers: list[tuple[str | None, str | None]] = []  # request id, service
        self._spans: list[SpanContext] = []  # each caller's span, for the batch's trace
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        bound = structlog.contextvars.get_contextvars()
        self._callers.append((bound.get("request_id"), bound.get("service")))
        self._spans.append(trace.get_current_span().get_span_context())
        if self._task is None:
            # In a context of its own: not the first caller's (its request id, say).
            self._task = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                # One turn of the loop first, so that callers woken together share a batch.
                await asyncio.sleep(0)
                batch = self._waiting[: self._max_batch]
                callers = self._callers[: self._max_batch]
                spans = self._spans[: self._max_batch]
                del self._waiting[: self._max_batch], self._callers[: self._max_batch]
                del self._spans[: self._max_batch]
                self._bind(callers)
                with serving_span(self._tracer, f"batch {self._name or 'work'}", spans):
                    await self._run_batch(batch)
        finally:
            self._task = None
            # Cancelled (the process is stopping): nobody may be left waiting for ever.
            stranded, self._waiting, self._callers, self._spans = self._waiting, [], [], []
            for _, future in stranded:
                future.cancel()

    def _bind(self, callers: list[tuple[str | None, str | None]]) -> None:
        """The batch's request id (and service) for its log lines and outgoing calls."""
        ids = _distinct(request_id for request_id, _ in callers)
        service = next((service for _, service in callers if service), None)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=_batch_request_id(ids))
        if service is not None:
            structlog.contextvars.bind_contextvars(service=service)
        if self._name is not None and len(ids) > 1:
            log.info("batch_started", batch=self._name, items=len(callers), for_request_ids=ids)

    async def _run_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if len(results) != len(batch):
            error = RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its caller may have given up (cancelled)
                future.set_result(result)


@contextlib.contextmanager
def serving(name: str, request_ids: Iterable[str | None]) -> Iterator[None]:
    """One call made for several requests (a batch of jobs), under their request id if they
    share one, else a new one, whose log line names the requests it serves (as a ``Batcher``'s
    batch does)."""
    ids = _distinct(request_ids)
    with structlog.contextvars.bound_contextvars(request_id=_batch_request_id(ids)):
        if len(ids) > 1:
            log.info("batch_started", batch=name, items=len(ids), for_request_ids=ids)
        yield


def _distinct(request_ids: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(request_id for request_id in request_ids if request_id))


def _batch_request_id(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else uuid.uuid4().hex
