"""The in-process job queue: the embedded default, with the same contract as RabbitMQ.

Jobs wait in a heap ordered by `not_before`; a handler's verdict acks, delays or
dead-letters them exactly as the RabbitMQ adapter does. Nothing survives a restart: that
is the price of needing no broker (the outbox republishes what was not yet handled).

Tests need no sleeping: inject a `ManualClock` and call `drain(until=...)`, which hands
over every job due by then in order of due time, moving the clock to each job's due
instant first, so jobs retried with a delay run again inside the same drain when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from adapters.errors import PermanentJobError, RetryLater
from adapters.ports import DeadLetter, Delivery, Job, JobHandler, JobQueue

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; callable like `utc_now`."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def advance_to(self, instant: datetime) -> None:
        """Move forward to `instant`; never backwards."""
        self._now = max(self._now, instant)


@dataclass(slots=True)
class _Entry:
    job: Job
    delivery_count: int = 0
    retries: int = 0
    redelivered: bool = False


class InProcessJobQueue(JobQueue):
    def __init__(self, *, clock: Clock = utc_now, delivery_limit: int = 5) -> None:
        if delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        self._clock = clock
        self._delivery_limit = delivery_limit
        self._heap: list[tuple[datetime, int, _Entry]] = []
        self._seq = itertools.count()
        self._dead: list[DeadLetter] = []
        self._handler: JobHandler | None = None
        self._runner: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._closed = False

    # --- the port ----------------------------------------------------------------------
    async def publish(self, jobs: Sequence[Job]) -> None:
        if self._closed:
            raise RuntimeError("queue is closed")
        for job in jobs:
            self._push(job.not_before, _Entry(job))
        self._wakeup.set()

    async def consume(self, handler: JobHandler, concurrency: int) -> None:
        """Run jobs in the background as they fall due on the clock (real waiting)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._handler = handler
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(concurrency), name="inprocess-queue")

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self._dead[:limit]

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        wanted = None if message_ids is None else set(message_ids)
        kept: list[DeadLetter] = []
        moved = 0
        for dead in self._dead:
            if dead.job is not None and (wanted is None or dead.message_id in wanted):
                self._push(dead.job.not_before, _Entry(dead.job))
                moved += 1
            else:
                kept.append(dead)
        self._dead = kept
        self._wakeup.set()
        return moved

    async def close(self) -> None:
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # --- for tests and the embedded worker ---------------------------------------------
    async def drain(self, until: datetime | None = None, handler: JobHandler | None = None) -> int:
        """Hand every job due by `until` (default: the clock's now) to the handler, one at a
        time, in order of due time, including jobs that fall due during the drain through
        retries. Returns the number of deliveries made."""
        run = handler or self._handler
        if run is None:
            raise RuntimeError("drain() needs a handler: pass one or call consume() first")
        limit = until or self._clock()
        count = 0
        while self._heap and self._heap[0][0] <= limit:
            due, _, entry = heapq.heappop(self._heap)
            if isinstance(self._clock, ManualClock):
                self._clock.advance_to(due)
            await self._deliver(run, entry, max(due, self._clock()))
            count += 1
        if isinstance(self._clock, ManualClock):
            self._clock.advance_to(limit)
        return count

    def pending(self) -> list[Job]:
        """Jobs waiting (not yet due or not yet handled), soonest first."""
        return [entry.job for _, _, entry in sorted(self._heap, key=lambda item: item[:2])]

    def next_due(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def in_hand(self) -> int:
        """Jobs handed to the handler and not yet finished (consume's running jobs)."""
        return len(self._running)

    # --- internals -----------------------------------------------------------------------
    def _push(self, due: datetime, entry: _Entry) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), entry))

    async def _deliver(self, handler: JobHandler, entry: _Entry, now: datetime) -> None:
        entry.delivery_count += 1
        delivery = Delivery(
            job=entry.job,
            redelivered=entry.redelivered,
            delivery_count=entry.delivery_count,
            retries=entry.retries,
        )
        try:
            await handler(delivery)
        except RetryLater as verdict:
            job = replace(entry.job, not_before=max(entry.job.not_before, now + verdict.delay))
            self._push(job.not_before, _Entry(job, retries=entry.retries + 1))
        except PermanentJobError as exc:
            await self._bury(entry, "rejected", now, exc)
        except Exception as exc:
            if entry.delivery_count >= self._delivery_limit:
                await self._bury(entry, "delivery_limit", now, exc)
            else:
                log.warning("job %s failed, redelivering: %r", entry.job.attempt_id, exc)
                entry.redelivered = True
                self._push(now, entry)

    async def _bury(self, entry: _Entry, reason: str, now: datetime, exc: BaseException) -> None:
        log.error("job %s dead-lettered (%s): %r", entry.job.attempt_id, reason, exc)
        dead = DeadLetter(
            message_id=entry.job.attempt_id,
            job=entry.job,
            reason=reason,
            died_at=now,
            raw=entry.job.to_json(),
        )
        try:
            await self.keep_dead_letter(dead, repr(exc))
        except Exception:  # never lose it: keep it here, where this process can replay it
            log.exception("job %s: could not keep its dead letter; held in memory", dead.message_id)
            self._dead.append(dead)

    async def keep_dead_letter(self, dead: DeadLetter, error: str) -> None:
        """Where a dead letter goes: this process's memory. A subclass may keep it where
        every process sees it (the service keeps it in its database)."""
        self._dead.append(dead)

    async def _run(self, concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)
        while True:
            self._wakeup.clear()
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                await slots.acquire()
                due, _, entry = heapq.heappop(self._heap)
                task = asyncio.create_task(self._run_one(entry, max(due, now), slots))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            wait = None
            if self._heap:
                wait = max(0.0, (self._heap[0][0] - self._clock()).total_seconds())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def _run_one(self, entry: _Entry, now: datetime, slots: asyncio.Semaphore) -> None:
        try:
            assert self._handler is not None
            await self._deliver(self._handler, entry, now)
        finally:
            slots.release()
            self._wakeup.set()
