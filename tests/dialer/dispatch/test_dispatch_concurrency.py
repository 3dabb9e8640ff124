"""Caps, pacing and the in-progress limit hold when many workers race (invariant 2)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, update

from adapters.fakes import FakeTelephony
from adapters.ports import CallRequest, Delivery, Job, ProviderRef
from dialer.db.engine import build_sessionmaker
from dialer.db.models import AttemptRow, ContactPointRow, PartyRow
from dialer.dispatch import pacing
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, mid_tier_strategy, open_world


class TimedTelephony(FakeTelephony):
    """Records the clock's instant of every call placed."""

    def __init__(self, clock: object) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[datetime] = []

    async def place_call(self, request: CallRequest) -> ProviderRef:
        self.times.append(self.clock())  # type: ignore[operator]
        return await super().place_call(request)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(
        database, start=INSIDE, strategy=mid_tier_strategy(case_cap=3, spacing_minutes=None)
    ) as w:
        yield w


async def _racing_jobs(
    world: World, case_id: uuid.UUID, campaign_id: uuid.UUID, n: int
) -> list[Job]:
    """n queued calls to the debtor of one case, spread over the debtor's two numbers."""
    async with world.maker() as session:
        points = (
            await session.execute(
                ContactPointRow.__table__.select()  # type: ignore[attr-defined]
                .join(PartyRow.__table__, PartyRow.id == ContactPointRow.party_id)  # type: ignore[attr-defined]
                .where(ContactPointRow.case_id == case_id, PartyRow.role == "debtor")
            )
        ).all()
        rows = []
        for i in range(n):
            p = points[i % len(points)]
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "case_id": case_id,
                    "party_id": p.party_id,
                    "contact_point_id": p.id,
                    "channel": "voice",
                    "state": "queued",
                    "result": "pending",
                    "at": INSIDE,
                    "not_before": INSIDE,
                    "planned_at": INSIDE,
                    "campaign_id": campaign_id,
                }
            )
        await session.execute(insert(AttemptRow.__table__), rows)  # type: ignore[arg-type]
        await session.commit()
    return [Job(str(r["id"]), str(case_id), str(campaign_id), INSIDE) for r in rows]


async def test_workers_racing_on_one_case_never_exceed_its_cap(world: World) -> None:
    (case_id,) = await world.add_cases(1)
    cid = await world.campaign(cps=1000)
    jobs = await _racing_jobs(world, case_id, cid, 8)
    if world.postgres:  # separate workers, each with its own connection pool and cache
        makers = [build_sessionmaker(world.engine) for _ in jobs]
        dispatchers = [world.dispatcher(maker=m) for m in makers]
    else:  # SQLite is the one-process default: one worker, jobs run concurrently
        dispatchers = [world.dispatcher()] * len(jobs)
    deliveries = [Delivery(j) for j in jobs] + [Delivery(j, redelivered=True) for j in jobs]
    await asyncio.gather(*(dispatchers[i % len(jobs)](d) for i, d in enumerate(deliveries)))
    states = [a.state for a in await world.attempts()]
    assert states.count("sent") == 3, states  # the case cap: 3 attempts a day
    assert states.count("refused") == 5
    assert world.dials() == 3
    for a in await world.attempts(state="refused"):
        assert a.refusal is not None
        assert "cap.case.attempts" in {r["rule"] for r in a.refusal["reasons"]}


async def test_pacing_never_exceeds_the_rate_in_any_second_and_keeps_up_with_it(
    world: World,
) -> None:
    world.telephony = TimedTelephony(world.clock)
    await world.add_cases(40)
    cid = await world.campaign(cps=5)
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    times = sorted(world.telephony.times)
    assert len(times) == 40
    for i, t in enumerate(times):  # every one-second window starting at a dial
        in_window = [x for x in times[i:] if x < t + timedelta(seconds=1)]
        assert len(in_window) <= 5
    span = (times[-1] - times[0]).total_seconds()
    assert 39 / span >= 0.95 * 5, f"{39 / span:.2f} calls/s against 5"


async def test_pacing_slots_are_shared_by_workers(world: World) -> None:
    cid = await world.campaign(cps=10)
    now = world.clock()
    slots = []
    for _ in range(25):
        slot = await pacing.take_slot(world.maker, cid, 10, lambda: now, timedelta(seconds=2))
        slots.append(slot.at)
    taken = [s for s in slots if s is not None]
    assert len(taken) == 20, "no slot more than max_wait ahead is handed out"
    gaps = {round((b - a).total_seconds(), 4) for a, b in itertools.pairwise(taken)}
    assert gaps == {round(pacing.slot_interval(10).total_seconds(), 4)}


async def test_in_progress_limit_holds_until_an_attempt_finishes(world: World) -> None:
    await world.add_cases(5)
    cid = await world.campaign(cps=100, max_in_progress=2)
    await world.plan(cid)
    dispatcher = world.dispatcher()
    await world.queue.drain(INSIDE + timedelta(seconds=20), dispatcher)
    assert world.dials() == 2
    assert len(await world.attempts(state="queued")) == 3
    first = (await world.attempts(state="sent"))[0]
    async with world.maker() as session:  # its final callback arrives
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == first.id).values(state="completed")
        )
        await session.commit()
    await world.queue.drain(INSIDE + timedelta(seconds=40), dispatcher)
    assert world.dials() == 3


async def test_in_progress_limit_holds_when_workers_race(world: World) -> None:
    case_ids = await world.add_cases(6)
    cid = await world.campaign(cps=1000, max_in_progress=2)
    jobs = []
    for case_id in case_ids:
        jobs += await _racing_jobs(world, case_id, cid, 1)
    if world.postgres:
        dispatchers = [world.dispatcher(maker=build_sessionmaker(world.engine)) for _ in jobs]
    else:
        dispatchers = [world.dispatcher()] * len(jobs)
    results = await asyncio.gather(
        *(d(Delivery(j)) for d, j in zip(dispatchers, jobs, strict=True)),
        return_exceptions=True,
    )
    assert world.dials() == 2
    assert sum(1 for r in results if r is not None) == 4  # RetryLater: try again soon
