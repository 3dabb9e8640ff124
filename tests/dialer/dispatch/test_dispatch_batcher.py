"""Group commit (`dialer.dispatch.batcher.Batcher`): items submitted together are handled
together, each caller gets its own item's result or error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from dialer.dispatch.batcher import Batcher


class Recorder:
    def __init__(self, fail_on: int | None = None, explode: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.explode = explode
        self.release = asyncio.Event()
        self.release.set()

    async def flush(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.explode:
            raise RuntimeError("the whole batch failed")
        return [ValueError(i) if i == self.fail_on else i * 10 for i in items]


async def test_items_submitted_together_are_flushed_as_one_batch() -> None:
    rec = Recorder()
    batcher: Batcher[int, int] = Batcher(rec.flush, max_size=64, linger=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert rec.batches == [list(range(10))]
    assert (batcher.batches, batcher.items) == (1, 10)


async def test_a_lone_item_is_flushed_at_once_and_batches_never_exceed_max_size() -> None:
    rec = Recorder()
    batcher: Batcher[int, int] = Batcher(rec.flush, max_size=4, linger=10.0)
    async with asyncio.timeout(1):  # never waits for the 10 s linger when idle
        assert await batcher.submit(7) == 70
        results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert all(len(b) <= 4 for b in rec.batches)
    assert sorted(i for b in rec.batches[1:] for i in b) == list(range(10))


async def test_items_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    rec = Recorder()
    rec.release.clear()
    batcher: Batcher[int, int] = Batcher(rec.flush, max_size=64, linger=0.001, max_flushes=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert rec.batches == [[1]]  # one flush at a time: the others wait for it
    rec.release.set()
    assert await first == 10
    assert [await f for f in later] == [20, 30, 40]
    assert rec.batches == [[1], [2, 3, 4]]


async def test_one_items_error_reaches_only_its_caller() -> None:
    rec = Recorder(fail_on=3)
    batcher: Batcher[int, int] = Batcher(rec.flush, max_size=64, linger=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 10, 20, 40]
    assert isinstance(results[3], ValueError)
    assert len(rec.batches) == 1


async def test_a_failed_flush_fails_every_item_of_its_batch_and_the_next_batch_runs() -> None:
    rec = Recorder(explode=True)
    batcher: Batcher[int, int] = Batcher(rec.flush, max_size=64, linger=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    rec.explode = False
    assert await batcher.submit(5) == 50


def test_sizes_must_be_positive() -> None:
    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        return list(items)

    with pytest.raises(ValueError):
        Batcher(flush, max_size=0, linger=0.0)


async def test_an_item_whose_caller_gave_up_before_its_batch_is_not_flushed() -> None:
    rec = Recorder()
    rec.release.clear()
    batcher: Batcher[int, int] = Batcher(rec.flush, max_size=64, linger=0.001, max_flushes=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(batcher.submit(2))
    kept = asyncio.ensure_future(batcher.submit(3))
    await asyncio.sleep(0.01)
    gone.cancel()
    rec.release.set()
    assert (await first, await kept) == (10, 30)
    assert rec.batches == [[1], [3]]
