"""Group commit: items submitted one at a time, handled together.

Each caller awaits its own item's result; a `Batcher` hands the items that are waiting to
its `flush` function as one batch (up to `max_size`), at most `max_flushes` batches at a
time. A batch starts at once when nothing is being flushed (a lone job is not held back);
while others are in flight it starts when `max_size` items wait or the oldest has waited
`linger` seconds, so the batches grow with the load. An item whose caller was cancelled
before its batch started is dropped. `flush` returns one result per item,
in order: a value, or an exception that is raised to that item's caller only. If `flush`
itself raises, every item of the batch gets that exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[Sequence[T]], Awaitable[list[R | BaseException]]]


class Batcher(Generic[T, R]):
    def __init__(
        self, flush: Flush[T, R], max_size: int, linger: float, max_flushes: int = 1
    ) -> None:
        if max_size < 1 or max_flushes < 1:
            raise ValueError("max_size and max_flushes must be at least 1")
        self._flush = flush
        self.max_size = max_size
        self.linger = linger
        self.max_flushes = max_flushes
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0
        self._timer: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # flushed so far, and how many items they held (for profiles)
        self.items = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        if not self._pending or self._running >= self.max_flushes:
            return  # a flush that ends kicks again
        if self._running == 0 or len(self._pending) >= self.max_size:
            if self._timer is not None:
                self._timer.cancel()
            # call_soon: the items submitted in this same turn of the loop join the batch
            self._timer = asyncio.get_running_loop().call_soon(self._start)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._start)

    def _start(self) -> None:
        self._timer = None
        if not self._pending or self._running >= self.max_flushes:
            return
        self._pending = [(i, f) for i, f in self._pending if not f.done()]  # callers gone
        batch = self._pending[: self.max_size]
        del self._pending[: self.max_size]
        if not batch:
            return
        self._running += 1
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._kick()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self._flush([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush gave {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # handed to every caller of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._running -= 1
            self._kick()
