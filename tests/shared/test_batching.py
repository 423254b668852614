"""Many callers, one batch: each gets its own result, and a failure reaches every caller of
the batch it hit."""

from __future__ import annotations

import asyncio

import pytest
import structlog
import structlog.testing

from services.shared.batching import Batcher


async def test_callers_of_one_turn_share_a_batch_and_each_gets_its_own_result() -> None:
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [item * 2 for item in items]

    batcher = Batcher(double)
    first = await asyncio.gather(*(batcher(item) for item in range(10)))
    # Callers arriving while a batch runs go in the next one together.
    running = asyncio.gather(*(batcher(item) for item in range(10, 13)))
    await asyncio.sleep(0.001)
    later = asyncio.gather(*(batcher(item) for item in range(13, 16)))
    assert first == [item * 2 for item in range(10)]
    assert await running == [20, 22, 24]
    assert await later == [26, 28, 30]
    assert batches == [list(range(10)), [10, 11, 12], [13, 14, 15]]


async def test_a_batch_never_exceeds_its_limit() -> None:
    sizes: list[int] = []

    async def echo(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher = Batcher(echo, max_batch=4)
    assert await asyncio.gather(*(batcher(item) for item in range(10))) == list(range(10))
    assert sizes == [4, 4, 2]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs() -> None:
    async def flaky(items: list[int]) -> list[int]:
        if 0 in items:
            raise ConnectionError("database gone")
        return items

    batcher = Batcher(flaky)
    results = await asyncio.gather(*(batcher(item) for item in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await batcher(7) == 7


async def test_a_wrong_number_of_results_is_an_error_not_a_mix_up() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Batcher(short)
    with pytest.raises(RuntimeError, match="gave 1 results"):
        await asyncio.gather(batcher(1), batcher(2))


async def test_a_caller_that_gives_up_does_not_break_the_others() -> None:
    async def slow(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        return items

    batcher = Batcher(slow)
    impatient = asyncio.ensure_future(batcher(1))
    patient = asyncio.ensure_future(batcher(2))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == 2
    assert impatient.cancelled()


async def test_a_batch_runs_under_its_callers_request_id_or_names_the_ones_it_served() -> None:
    seen: list[object] = []

    async def run(items: list[str]) -> list[str]:
        seen.append(structlog.contextvars.get_contextvars().get("request_id"))
        return items

    batcher = Batcher(run, name="test.batch")

    async def call(item: str, request_id: str) -> str:
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return await batcher(item)

    with structlog.testing.capture_logs() as logs:
        await asyncio.gather(call("a", "rid-one"), call("b", "rid-one"))
        await asyncio.gather(call("c", "rid-two"), call("d", "rid-three"))

    assert seen[0] == "rid-one"  # one request's items: its own id goes on
    assert seen[1] not in ("rid-two", "rid-three")  # several: an id of the batch's own
    assert [(line["event"], line["for_request_ids"]) for line in logs] == [
        ("batch_started", ["rid-two", "rid-three"])
    ]
