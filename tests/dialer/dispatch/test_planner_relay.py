"""The planner publishes through the outbox while it plans: every committed job reaches the
queue by the time `plan_campaign` returns, and a broker failure is raised to its caller with
the rows left for a later relay. The outbox's bulk insert (COPY on PostgreSQL) writes what
an executemany would."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from adapters.errors import QueueError
from adapters.inprocess import InProcessJobQueue
from adapters.ports import Job
from dialer.db.models import AttemptRow, CampaignRow, OutboxRow
from dialer.dispatch import lifecycle, outbox, planner
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database) as w:
        yield w


class RecordingQueue(InProcessJobQueue):
    """The in-process queue, recording each publish call's size."""

    def __init__(self, world: World) -> None:
        super().__init__(clock=world.clock)
        self.calls: list[int] = []

    async def publish(self, jobs: Sequence[Job]) -> None:
        self.calls.append(len(jobs))
        await super().publish(jobs)


class RefusingQueue(InProcessJobQueue):
    async def publish(self, jobs: Sequence[Job]) -> None:
        raise QueueError("broker unreachable")


async def _unpublished(world: World) -> int:
    async with world.maker() as session:
        return await outbox.pending_count(session)


async def test_every_planned_job_is_published_when_planning_returns(world: World) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(11)
    cid = await world.campaign()
    queue = RecordingQueue(world)
    report = await planner.plan_campaign(world.maker, cid, world.clock, queue=queue, batch=4)
    assert report.planned == 11 and report.done
    assert sum(queue.calls) == 11, "each job published once"
    assert sorted(j.attempt_id for j in queue.pending()) == sorted(
        str(a.id) for a in await world.attempts()
    )
    assert await _unpublished(world) == 0
    assert {a.state for a in await world.attempts()} == {"queued"}


async def test_a_broker_failure_is_raised_and_the_jobs_wait_in_the_outbox(world: World) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(5)
    cid = await world.campaign()
    with pytest.raises(QueueError):
        await planner.plan_campaign(
            world.maker, cid, world.clock, queue=RefusingQueue(clock=world.clock), batch=2
        )
    waiting = await _unpublished(world)
    assert waiting > 0
    assert {a.state for a in await world.attempts()} == {"planned"}
    # A later relay (the worker's) publishes them once the broker is back.
    world.clock.advance(timedelta(minutes=1))
    assert await outbox.relay_all(world.maker, world.queue, world.clock()) == waiting
    assert await _unpublished(world) == 0


async def test_bulk_insert_writes_what_an_executemany_would(world: World) -> None:
    now = world.clock()
    jobs = [Job(f"a-{i}", f"c-{i}", None, now + timedelta(minutes=i)) for i in range(3)]
    async with world.maker() as session:  # nothing run yet in this transaction
        await outbox.add_jobs(session, jobs, now)
        await session.commit()
    async with world.maker() as session:
        await session.scalar(select(func.count()).select_from(AttemptRow))  # one open
        await outbox.add_jobs(session, jobs[:1], now)
        await session.commit()
    async with world.maker() as session:
        rows = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
    assert [Job.from_document(r.job) for r in rows] == [*jobs, jobs[0]]
    assert {(r.created_at, r.available_at, r.published_at, r.publish_attempts) for r in rows} == {
        (now, now, None, 0)
    }


async def test_two_planners_racing_on_one_campaign_plan_each_case_once(world: World) -> None:
    if not world.postgres:
        pytest.skip("one planner process on SQLite: its lease is not a row lock there")
    world.clock.advance_to(INSIDE)
    await world.add_cases(23)
    cid = await world.campaign(window="00:00-24:00")
    start = world.clock()
    ticks = [0]

    def clock() -> datetime:  # a lease is expired by the next instant either planner reads
        ticks[0] += 1
        return start + (lifecycle.LEASE + timedelta(seconds=1)) * ticks[0]

    reports = await asyncio.gather(
        planner.plan_campaign(world.maker, cid, clock, owner="a", batch=3),
        planner.plan_campaign(world.maker, cid, clock, owner="b", batch=3),
    )
    attempts = await world.attempts()
    per_case = Counter(a.case_id for a in attempts)
    assert per_case and max(per_case.values()) == 1, "a case planned twice"
    assert sum(r.cases for r in reports) == 23
    async with world.maker() as session:
        row = await session.get(CampaignRow, cid)
        assert row is not None and row.plan_done and row.cases_seen == 23


async def test_the_relay_skips_an_attempt_a_worker_holds_instead_of_waiting_for_it(
    world: World,
) -> None:
    if not world.postgres:
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer")
    world.clock.advance_to(INSIDE)
    await world.add_cases(3)
    cid = await world.campaign()
    await planner.plan_campaign(world.maker, cid, world.clock)  # no queue: rows wait
    held_id = min(a.id for a in await world.attempts())
    queue = InProcessJobQueue(clock=world.clock)
    async with world.maker() as worker:  # a worker reserving that attempt, not committed
        locked = select(AttemptRow.id).where(AttemptRow.id == held_id).with_for_update()
        assert await worker.scalar(locked) == held_id
        # The relay finishes while the lock is still held: it never waited on it (the
        # timeout only bounds a failure; were it to wait, it would wait forever here).
        async with asyncio.timeout(30):
            published = await outbox.relay_all(world.maker, queue, world.clock())
        assert published == 3
        states = {a.id: a.state for a in await world.attempts()}
        await worker.rollback()
    assert states.pop(held_id) == "planned"  # dispatchable all the same
    assert set(states.values()) == {"queued"}
    assert len(queue.pending()) == 3 and await _unpublished(world) == 0
