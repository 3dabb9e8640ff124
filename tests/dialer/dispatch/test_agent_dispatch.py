"""Agent-mode campaigns at the worker: a progressive call is placed only with an agent
held for it, never two calls for one agent across workers, and predictive calls are
limited by the pacer fed from the floor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from adapters.errors import PermanentError, PermanentErrorKind
from adapters.inprocess import InProcessJobQueue
from adapters.ports import CallRequest, Delivery, Job
from dialer.db.engine import build_sessionmaker
from dialer.db.models import AgentRow, AttemptRow, ContactPointRow
from dialer.db.repositories import agents as agent_rows
from dialer.domain.agents import AgentState
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, mid_tier_strategy, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(
        database, start=INSIDE, strategy=mid_tier_strategy(spacing_minutes=None)
    ) as w:
        yield w


async def _agents(world: World, n: int, state: AgentState = AgentState.AVAILABLE) -> None:
    async with world.maker() as session:
        for i in range(n):
            await agent_rows.ensure(session, f"collector-{i}", state.value, world.clock())
        await session.commit()


async def _agent_rows(world: World) -> list[AgentRow]:
    async with world.maker() as session:
        return list((await session.scalars(select(AgentRow).order_by(AgentRow.name))).all())


def _requests(world: World) -> list[CallRequest]:
    return [r for calls in world.telephony.calls.values() for r in calls]


async def test_a_progressive_campaign_with_no_available_agent_dials_nobody(world: World) -> None:
    await world.add_cases(3)
    await _agents(world, 2, AgentState.AWAY)  # logged in, taking no calls
    cid = await world.campaign(cps=100, mode="progressive")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 0
    assert {a.state for a in await world.attempts()} == {"queued"}  # retried later
    assert {a.state for a in await _agent_rows(world)} == {"away"}


async def test_a_progressive_campaign_places_one_call_per_free_agent(world: World) -> None:
    await world.add_cases(4)
    await _agents(world, 2)
    cid = await world.campaign(cps=100, mode="progressive")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 2
    sent = {a.id for a in await world.attempts(state="sent")}
    assert len(sent) == 2 and len(await world.attempts(state="queued")) == 2
    held = await _agent_rows(world)
    assert {a.state for a in held} == {"reserved"}
    assert {a.attempt_id for a in held} == sent  # each agent holds one distinct call
    assert all(a.campaign_id == cid for a in held)
    # no machine detection with a collector: its silence would abandon live answers
    assert [r.machine_detection for r in _requests(world)] == [False, False]


async def test_an_ivr_campaign_keeps_machine_detection_and_needs_no_agent(world: World) -> None:
    await world.add_cases(2)
    cid = await world.campaign(cps=100)
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 2
    assert all(r.machine_detection for r in _requests(world))


async def _jobs(world: World, cid: uuid.UUID) -> list[Job]:
    """The campaign's queued jobs, taken out of a queue of their own (raced by hand)."""
    queue = InProcessJobQueue(clock=world.clock)
    await world.plan(cid, queue=queue)
    jobs = queue.pending()
    await queue.close()
    return jobs


async def test_no_agent_is_offered_two_calls_across_workers(world: World) -> None:
    await world.add_cases(8)
    await _agents(world, 3)
    cid = await world.campaign(cps=1000, mode="progressive")
    jobs = await _jobs(world, cid)
    assert len(jobs) == 8
    if world.postgres:  # separate workers, each with its own connection pool
        dispatchers = [world.dispatcher(maker=build_sessionmaker(world.engine)) for _ in jobs]
    else:
        dispatchers = [world.dispatcher()] * len(jobs)
    results = await asyncio.gather(
        *(d(Delivery(j)) for d, j in zip(dispatchers, jobs, strict=True)),
        return_exceptions=True,
    )
    assert world.dials() == 3
    assert sum(1 for r in results if r is not None) == 5  # RetryLater: no agent free
    held = await _agent_rows(world)
    sent = {a.id for a in await world.attempts(state="sent")}
    assert {a.state for a in held} == {"reserved"}
    assert sorted(str(a.attempt_id) for a in held) == sorted(str(s) for s in sent)


async def test_a_predictive_campaign_starts_one_call_per_free_agent_until_it_learns(
    world: World,
) -> None:
    await world.add_cases(6)
    await _agents(world, 2)
    cid = await world.campaign(cps=100, mode="predictive")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    # nothing learned yet: the pacer's floor, one ringing call per free agent; no agent
    # is held while a predictive call rings (it is taken when a person answers)
    assert world.dials() == 2
    assert {a.state for a in await _agent_rows(world)} == {"available"}
    assert [r.machine_detection for r in _requests(world)] == [False, False]


async def test_a_progressive_call_that_fails_to_dial_frees_its_agent(world: World) -> None:
    await world.add_cases(1)
    await _agents(world, 1)
    cid = await world.campaign(cps=100, mode="progressive")
    await world.plan(cid)
    (attempt,) = await world.attempts(state="queued")
    async with world.maker() as session:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        number = point.value
    world.telephony.fail_next(number, PermanentError("unreachable", kind=PermanentErrorKind.OTHER))
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    assert (await world.attempts(id=attempt.id))[0].state == "failed"
    (agent,) = await _agent_rows(world)
    assert (agent.state, agent.attempt_id) == ("available", None)  # no call: free again


async def test_the_worker_never_dials_a_preview_campaign_itself(world: World) -> None:
    await world.add_cases(2)
    await _agents(world, 2)
    cid = await world.campaign(cps=100, mode="preview")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 0
    assert {a.state for a in await world.attempts()} == {"queued"}
    assert {a.state for a in await _agent_rows(world)} == {"available"}


async def _history(world: World, cid: uuid.UUID, *, abandoned: bool) -> None:
    """The campaign's last hour, on a case of its own: 200 calls, one in four answered
    by a person (60 s of talk after 10 s of ringing; all abandoned when `abandoned`),
    the others unanswered after 25 s (the pacer goes beyond one call per free agent only
    while one more abandoned call keeps the hour under 3% x 0.85: 40 live answers)."""
    (case_id,) = await world.add_cases(1)
    async with world.maker() as session:
        point = await session.scalar(
            select(ContactPointRow).where(ContactPointRow.case_id == case_id)
        )
        assert point is not None
        rows = []
        for i in range(200):
            sent = INSIDE - timedelta(minutes=55) + timedelta(seconds=15 * i)
            person = i % 4 == 0
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "case_id": case_id,
                    "party_id": point.party_id,
                    "contact_point_id": point.id,
                    "channel": "voice",
                    "state": "completed",
                    "result": "right_party" if person else "no_answer",
                    "answered_by": None,
                    "duration_seconds": (0 if abandoned else 60) if person else None,
                    "abandoned_at": sent + timedelta(seconds=10) if person and abandoned else None,
                    "at": sent,
                    "sent_at": sent,
                    "updated_at": sent + timedelta(seconds=(70 if person else 25)),
                    "campaign_id": cid,
                }
            )
        await session.execute(insert(AttemptRow.__table__), rows)  # type: ignore[arg-type]
        await session.commit()


@pytest.mark.parametrize(("abandoned", "more"), [(False, True), (True, False)])
async def test_a_predictive_campaign_learns_its_ratio_from_its_ended_calls(
    world: World, abandoned: bool, more: bool
) -> None:
    await _agents(world, 4)
    cid = await world.campaign(cps=100, mode="predictive")
    await _history(world, cid, abandoned=abandoned)
    await world.add_cases(12)
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=3), world.dispatcher())
    # a quarter of the calls reach a person: more calls than free agents; with every
    # live answer abandoned over the hour, one per free agent only
    assert (world.dials() > 4) is more, world.dials()
    if not more:
        assert world.dials() == 4
