"""The in-process queue keeps the queue contract without a broker and without real time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.errors import PermanentJobError, RetryLater
from adapters.inprocess import InProcessJobQueue, ManualClock
from adapters.ports import Delivery, Job

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def job(attempt_id: str, not_before: datetime = T0) -> Job:
    return Job(attempt_id, case_id="case-1", campaign_id="camp-1", not_before=not_before)


class Recorder:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.seen: list[tuple[str, datetime, bool, int]] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.seen.append(
            (delivery.job.attempt_id, self.clock(), delivery.redelivered, delivery.retries)
        )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def test_job_not_handed_over_before_its_not_before(clock: ManualClock) -> None:
    queue = InProcessJobQueue(clock=clock)
    record = Recorder(clock)
    await queue.publish([job("later", T0 + timedelta(hours=2)), job("now", T0)])

    assert await queue.drain(handler=record) == 1
    assert [s[0] for s in record.seen] == ["now"]

    assert await queue.drain(until=T0 + timedelta(hours=2), handler=record) == 1
    assert record.seen[-1][:2] == ("later", T0 + timedelta(hours=2))


async def test_drain_hands_jobs_over_in_order_of_due_time(clock: ManualClock) -> None:
    queue = InProcessJobQueue(clock=clock)
    record = Recorder(clock)
    await queue.publish(
        [job("c", T0 + timedelta(minutes=3)), job("a", T0), job("b", T0 + timedelta(minutes=1))]
    )
    await queue.drain(until=T0 + timedelta(hours=1), handler=record)
    assert [s[0] for s in record.seen] == ["a", "b", "c"]
    assert clock() == T0 + timedelta(hours=1)


async def test_retry_later_runs_again_after_the_delay_and_counts_retries(
    clock: ManualClock,
) -> None:
    queue = InProcessJobQueue(clock=clock)
    seen: list[tuple[datetime, int]] = []

    async def handler(delivery: Delivery) -> None:
        seen.append((clock(), delivery.retries))
        if delivery.retries < 2:
            raise RetryLater(timedelta(minutes=5))

    await queue.publish([job("a")])
    await queue.drain(until=T0 + timedelta(minutes=7), handler=handler)
    assert seen == [(T0, 0), (T0 + timedelta(minutes=5), 1)]
    assert queue.next_due() == T0 + timedelta(minutes=10)

    await queue.drain(until=T0 + timedelta(minutes=10), handler=handler)
    assert seen[-1] == (T0 + timedelta(minutes=10), 2)
    assert queue.pending() == []


async def test_permanent_job_error_dead_letters_at_once(clock: ManualClock) -> None:
    queue = InProcessJobQueue(clock=clock)
    calls = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        raise PermanentJobError("case closed")

    await queue.publish([job("a")])
    await queue.drain(handler=handler)
    dead = await queue.dead_letters()
    assert calls == 1
    assert [(d.message_id, d.reason) for d in dead] == [("a", "rejected")]


async def test_failing_job_is_redelivered_flagged_until_the_delivery_limit(
    clock: ManualClock,
) -> None:
    queue = InProcessJobQueue(clock=clock, delivery_limit=3)
    deliveries: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        deliveries.append(delivery)
        raise RuntimeError("boom")

    await queue.publish([job("poison")])
    await queue.drain(handler=handler)
    assert [(d.redelivered, d.delivery_count) for d in deliveries] == [
        (False, 1),
        (True, 2),
        (True, 3),
    ]
    dead = await queue.dead_letters()
    assert [(d.message_id, d.reason) for d in dead] == [("poison", "delivery_limit")]
    assert queue.pending() == []


async def test_replayed_dead_letter_runs_again_and_leaves_the_dead_letters(
    clock: ManualClock,
) -> None:
    queue = InProcessJobQueue(clock=clock, delivery_limit=1)
    fail = True
    done: list[str] = []

    async def handler(delivery: Delivery) -> None:
        if fail:
            raise RuntimeError("dependency down")
        done.append(delivery.job.attempt_id)

    await queue.publish([job("a"), job("b")])
    await queue.drain(handler=handler)
    assert {d.message_id for d in await queue.dead_letters()} == {"a", "b"}

    fail = False
    assert await queue.replay_dead_letters(["b"]) == 1
    await queue.drain(handler=handler)
    assert done == ["b"]
    assert [d.message_id for d in await queue.dead_letters()] == ["a"]

    assert await queue.replay_dead_letters() == 1
    await queue.drain(handler=handler)
    assert done == ["b", "a"]
    assert await queue.dead_letters() == []


async def test_background_consumer_runs_due_jobs_with_bounded_concurrency() -> None:
    queue = InProcessJobQueue()  # real clock: jobs in the past are due at once
    running = 0
    peak = 0
    done: list[str] = []
    all_done = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        done.append(delivery.job.attempt_id)
        if len(done) == 6:
            all_done.set()

    await queue.consume(handler, concurrency=2)
    await queue.publish([job(f"j{i}") for i in range(6)])
    async with asyncio.timeout(5):
        await all_done.wait()
    await queue.close()
    assert sorted(done) == [f"j{i}" for i in range(6)]
    assert peak <= 2


async def test_a_job_in_the_handlers_hands_is_counted_until_it_is_done() -> None:
    """Nothing due (`next_due` is None) does not mean idle: a job taken off the queue is
    still being handled. The demo's simulated clock must not jump past it."""
    queue = InProcessJobQueue()
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        started.set()
        await release.wait()
        finished.set()

    await queue.consume(handler, concurrency=1)
    assert queue.in_hand() == 0
    await queue.publish([job("held")])
    async with asyncio.timeout(5):
        await started.wait()
    assert queue.next_due() is None and queue.in_hand() == 1
    release.set()
    async with asyncio.timeout(5):
        await finished.wait()
    await queue.close()  # waits for the running job
    assert queue.in_hand() == 0


def test_job_round_trips_through_json_with_a_version() -> None:
    original = Job("a1", "c1", None, T0, {"channel": "voice", "n": 3})
    raw = original.to_json()
    assert b'"v":1' in raw
    assert Job.from_json(raw) == original


@pytest.mark.parametrize("raw", [b"not json", b'{"v":99}', b'{"v":1,"case_id":"c"}', b"[]"])
def test_malformed_job_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Job.from_json(raw)


def test_naive_not_before_is_refused() -> None:
    with pytest.raises(ValueError):
        Job("a", "c", None, datetime(2025, 1, 1, 9, 0))
