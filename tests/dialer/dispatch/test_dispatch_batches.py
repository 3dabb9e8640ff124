"""The worker's group commit: deliveries that arrive together are reserved in one batch
(one transaction, the cases locked in id order) and recorded together, yet each job keeps
its own outcome, and one failing job does not sink the others."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from adapters.errors import RetryLater
from adapters.ports import Delivery
from dialer.db.models import AttemptRow
from dialer.dispatch import pacing, redecide
from dialer.dispatch.record import Recorder
from dialer.dispatch.reserve import Reserver
from strategy import engine
from tests.databases import Database
from tests.dialer.dispatch.test_dispatch_concurrency import _racing_jobs
from tests.dialer.dispatch_world import INSIDE, World, mid_tier_strategy, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(
        database, start=INSIDE, strategy=mid_tier_strategy(case_cap=3, spacing_minutes=None)
    ) as w:
        yield w


async def _deliveries(world: World, cases: int, cps: float = 1000) -> list[Delivery]:
    await world.add_cases(cases)
    cid = await world.campaign(cps=cps)
    await world.plan(cid)
    return [Delivery(job) for job in world.queue.pending()]


async def test_deliveries_arriving_together_are_reserved_and_recorded_in_batches(
    world: World,
) -> None:
    deliveries = await _deliveries(world, 12)
    assert len(deliveries) == 12
    dispatcher = world.dispatcher()
    await asyncio.gather(*(dispatcher(d) for d in deliveries))
    assert [a.state for a in await world.attempts()] == ["sent"] * 12
    assert world.dials() == 12
    reserve_batches, reserved, record_batches, recorded, _ = dispatcher.batch_counts()
    assert (reserved, recorded) == (12, 12)
    assert reserve_batches < 12 and record_batches < 12  # gathered, not one by one
    # a second delivery of each (a redelivery, a duplicate) dials nothing
    await asyncio.gather(*(dispatcher(Delivery(d.job, redelivered=True)) for d in deliveries))
    assert world.dials() == 12


async def test_a_job_that_fails_to_decide_does_not_sink_its_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = await _deliveries(world, 6)
    doomed = deliveries[2].job.case_id
    real = engine.decide

    def decide(case: Any, *args: Any) -> Any:
        if case.id == doomed:
            raise ZeroDivisionError("a bug that only this case meets")
        return real(case, *args)

    monkeypatch.setattr(redecide, "decide", decide)
    dispatcher = world.dispatcher()
    results = await asyncio.gather(*(dispatcher(d) for d in deliveries), return_exceptions=True)
    assert isinstance(results[2], ZeroDivisionError)  # nacked: the broker redelivers it
    assert [r for i, r in enumerate(results) if i != 2] == [None] * 5
    states = {str(a.case_id): a.state for a in await world.attempts()}
    assert states.pop(doomed) == "queued"  # untouched, dialled by a later delivery
    assert set(states.values()) == {"sent"}
    assert world.dials() == 5
    monkeypatch.undo()
    await dispatcher(deliveries[2])
    assert world.dials() == 6


async def test_a_batch_that_fails_as_a_whole_is_tried_job_by_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = await _deliveries(world, 5)
    real = Reserver._try_batch
    sizes: list[int] = []

    async def try_batch(self: Reserver, items: Sequence[Any]) -> Any:
        sizes.append(len(items))
        if len(items) > 1:
            raise RuntimeError("say, a constraint one of them broke")
        return await real(self, items)

    monkeypatch.setattr(Reserver, "_try_batch", try_batch)
    dispatcher = world.dispatcher()
    await asyncio.gather(*(dispatcher(d) for d in deliveries))
    assert sizes[0] == 5 and sizes[1:] == [1] * 5
    assert [a.state for a in await world.attempts()] == ["sent"] * 5
    assert world.dials() == 5


async def test_two_jobs_of_one_case_in_a_batch_are_decided_one_after_the_other(
    world: World,
) -> None:
    """The case cap is 3: of 5 calls to one case arriving together, 3 go, 2 are refused,
    whatever the batching (each decision sees the reservations before it)."""
    (case_id,) = await world.add_cases(1)
    cid = await world.campaign(cps=1000)
    jobs = await _racing_jobs(world, case_id, cid, 5)
    dispatcher = world.dispatcher()
    await asyncio.gather(*(dispatcher(Delivery(j)) for j in jobs))
    states = sorted(a.state for a in await world.attempts())
    assert states == ["refused"] * 2 + ["sent"] * 3
    assert world.dials() == 3


async def test_a_batch_takes_consecutive_slots_up_to_max_wait_and_the_rest_wait(
    world: World,
) -> None:
    cid = await world.campaign(cps=10)
    now = world.clock()
    async with world.maker() as session:
        claim = await pacing.claim(session, cid, 10, 30, None, now, timedelta(seconds=2))
        await session.commit()
    interval = pacing.slot_interval(10)
    assert len(claim.slots) == 20 and claim.paced == 10 and claim.busy == 0
    assert [s.at for s in claim.slots] == [now + interval * i for i in range(20)]
    assert claim.next_free == now + interval * 20
    async with world.maker() as session:  # the next batch starts where this one ended
        again = await pacing.claim(session, cid, 10, 5, None, now, timedelta(seconds=3))
        await session.commit()
    assert [s.at for s in again.slots] == [now + interval * i for i in range(20, 25)]
    assert all(s.pushed for s in again.slots)


async def test_a_batch_stays_within_the_in_progress_limit(world: World) -> None:
    await world.add_cases(5)
    cid = await world.campaign(cps=100, max_in_progress=2)
    await world.plan(cid)
    deliveries = [Delivery(job) for job in world.queue.pending()]
    dispatcher = world.dispatcher()
    results = await asyncio.gather(*(dispatcher(d) for d in deliveries), return_exceptions=True)
    assert world.dials() == 2
    busy = [r for r in results if isinstance(r, RetryLater)]
    assert len(busy) == 3 and all("in-progress" in r.reason for r in busy)
    async with world.maker() as session:  # their final callbacks arrive
        await session.execute(
            update(AttemptRow)
            .where(AttemptRow.state == "sent")
            .values(state="completed", updated_at=world.clock())
        )
        await session.commit()
    waiting = [d for d, r in zip(deliveries, results, strict=True) if r is not None]
    again = await asyncio.gather(*(dispatcher(d) for d in waiting), return_exceptions=True)
    assert world.dials() == 4
    assert sum(isinstance(r, RetryLater) for r in again) == 1


async def test_a_failed_batch_of_sent_records_is_recorded_one_by_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = await _deliveries(world, 4)

    async def record_sent_batch(self: Recorder, sent: Sequence[Any]) -> Any:
        raise RuntimeError("say, a deadlock with a status callback's transaction")

    monkeypatch.setattr(Recorder, "record_sent_batch", record_sent_batch)
    dispatcher = world.dispatcher()
    await asyncio.gather(*(dispatcher(d) for d in deliveries))
    attempts = await world.attempts()
    assert [a.state for a in attempts] == ["sent"] * 4
    assert all(a.provider_sid for a in attempts)
    assert world.dials() == 4


async def test_a_dial_later_than_its_slot_allows_takes_a_fresh_slot(world: World) -> None:
    """The event loop wakes the job 100 ms after its slot, once: it gives the slot up and
    dials on the next one, on time. (Late on every slot of a campaign at its rate, it
    would keep taking fresh ones: it never dials late there.)"""
    (delivery,) = await _deliveries(world, 1, cps=5)
    dispatcher = world.dispatcher()
    overshoots = [timedelta(milliseconds=100)]

    async def late_sleep(seconds: float) -> None:
        world.clock.advance(
            timedelta(seconds=seconds) + (overshoots.pop() if overshoots else timedelta(0))
        )

    dispatcher.ctx.sleep = late_sleep
    cid = uuid.UUID(delivery.job.campaign_id or "")
    for _ in range(3):  # the campaign is at its rate: its next free slot is ahead
        await pacing.take_slot(world.maker, cid, 5, world.clock, timedelta(seconds=2))
    await dispatcher(delivery)
    assert world.dials() == 1
    assert dispatcher.late == 1


async def test_a_dial_late_on_every_slot_gives_up_after_three_when_the_rate_allows(
    world: World,
) -> None:
    """Woken 300 ms late every time (longer than a slot): the fresh slots are free when
    taken (the campaign is below its rate then); after three, it dials late."""
    (delivery,) = await _deliveries(world, 1, cps=5)
    dispatcher = world.dispatcher()

    async def late_sleep(seconds: float) -> None:
        world.clock.advance(timedelta(seconds=seconds) + timedelta(milliseconds=300))

    dispatcher.ctx.sleep = late_sleep
    cid = uuid.UUID(delivery.job.campaign_id or "")
    await pacing.take_slot(world.maker, cid, 5, world.clock, timedelta(seconds=2))
    await dispatcher(delivery)
    assert world.dials() == 1
    assert dispatcher.late == 3
