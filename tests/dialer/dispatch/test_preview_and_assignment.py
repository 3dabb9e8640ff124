"""Preview calls started at the desk go through the worker's decide gate and dispatch
path, bridged to the agent who started them; campaigns hold only their assigned agents."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from dialer.core.auth import Principal, Role
from dialer.core.errors import ConflictError
from dialer.db.models import AgentRow, ContactPointRow
from dialer.domain.agents import AgentState
from dialer.services import campaign_agents, keys, preview
from dialer.services.optouts import opt_out
from strategy.model import Channel
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, mid_tier_strategy, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(
        database, start=INSIDE, strategy=mid_tier_strategy(spacing_minutes=None)
    ) as w:
        yield w


async def _collectors(world: World, *names: str) -> dict[str, Principal]:
    """Agent keys and their agents, available at a browser endpoint."""
    out = {}
    async with world.maker() as session:
        for name in names:
            row, _ = await keys.create_key(
                session, role=Role.AGENT, name=name, actor="test", now=world.clock()
            )
            session.add(
                AgentRow(
                    name=name,
                    endpoint=f"client:{name}",
                    state=AgentState.AVAILABLE.value,
                    state_since=world.clock(),
                )
            )
            out[name] = Principal(row.id, name, Role.AGENT)
        await session.commit()
    return out


async def _agent(world: World, name: str) -> AgentRow:
    async with world.maker() as session:
        row = await session.scalar(select(AgentRow).where(AgentRow.name == name))
        assert row is not None
        return row


async def _preview_campaign(world: World, cases: int) -> uuid.UUID:
    await world.add_cases(cases)
    cid = await world.campaign(cps=100, mode="preview")
    await world.plan(cid)
    world.clock.advance(timedelta(seconds=30))  # every planned call is due
    return cid


async def test_a_started_preview_call_is_dialled_by_the_worker_for_that_agent(
    world: World,
) -> None:
    who = await _collectors(world, "ana", "bo")
    cid = await _preview_campaign(world, 2)
    async with world.maker() as session:
        offered = await preview.next_case(session, who["ana"], world.clock())
    case = offered["case"]
    assert case is not None and case["campaign"]["id"] == cid
    assert case["call"]["allowed_now"] is True and case["decision"]["allowed"]
    async with world.maker() as session:
        started = await preview.start(session, who["ana"], case["attempt_id"], world.clock())
    assert started["state"] == "reserved"
    ana = await _agent(world, "ana")
    assert (ana.state, ana.attempt_id, ana.campaign_id) == ("reserved", case["attempt_id"], cid)
    # the job staged at the start goes through the relay and the worker like any job
    await world.plan(cid)
    await world.queue.drain(world.clock() + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 1
    (sent,) = await world.attempts(state="sent")
    assert sent.id == case["attempt_id"]
    (request,) = [r for calls in world.telephony.calls.values() for r in calls]
    assert request.machine_detection is False  # a collector is waiting on the line
    assert len(await world.attempts(state="queued")) == 1  # the other still waits for a start
    assert (await _agent(world, "bo")).state == "available"
    # the case just started is no longer offered; the other one is
    async with world.maker() as session:
        nxt = await preview.next_case(session, who["bo"], world.clock())
    assert nxt["case"] is not None and nxt["case"]["attempt_id"] != case["attempt_id"]


async def test_a_second_agent_cannot_start_a_call_already_started(world: World) -> None:
    who = await _collectors(world, "ana", "bo")
    await _preview_campaign(world, 1)
    async with world.maker() as session:
        case = (await preview.next_case(session, who["ana"], world.clock()))["case"]
        await preview.start(session, who["ana"], case["attempt_id"], world.clock())
    async with world.maker() as session:
        assert (await preview.next_case(session, who["bo"], world.clock()))["case"] is None
        with pytest.raises(ConflictError):
            await preview.start(session, who["bo"], case["attempt_id"], world.clock())
    assert (await _agent(world, "bo")).state == "available"


async def test_a_started_call_refused_at_the_gate_frees_its_agent(world: World) -> None:
    who = await _collectors(world, "ana")
    cid = await _preview_campaign(world, 1)
    async with world.maker() as session:
        case = (await preview.next_case(session, who["ana"], world.clock()))["case"]
        await preview.start(session, who["ana"], case["attempt_id"], world.clock())
    (attempt,) = await world.attempts(id=case["attempt_id"])
    async with world.maker() as session:  # the debtor opts out before the worker decides
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        await opt_out(
            session, [point], Channel.VOICE, source="sms STOP", actor="test", now=world.clock()
        )
        await session.commit()
    await world.plan(cid)
    await world.queue.drain(world.clock() + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 0
    assert (await world.attempts(id=attempt.id))[0].state == "refused"
    ana = await _agent(world, "ana")
    assert (ana.state, ana.attempt_id) == ("available", None)


async def test_a_progressive_campaign_holds_only_its_assigned_agents(world: World) -> None:
    await _collectors(world, "ana", "bo", "cy")
    await world.add_cases(3)
    cid = await world.campaign(cps=100, mode="progressive")
    async with world.maker() as session:
        assigned = await campaign_agents.assign(
            session, cid, ["bo"], actor="supervisor:mei", now=world.clock()
        )
    assert [a.name for a in assigned] == ["bo"]
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 1  # one assigned agent: one call, though three are free
    assert (await _agent(world, "bo")).state == "reserved"
    assert {(await _agent(world, n)).state for n in ("ana", "cy")} == {"available"}


async def test_a_campaign_with_no_agent_assigned_is_worked_by_the_whole_floor(
    world: World,
) -> None:
    await _collectors(world, "ana", "bo")
    await world.add_cases(3)
    other = await world.campaign(cps=100, mode="progressive", start=False)
    async with world.maker() as session:  # assigned elsewhere: still on this floor
        await campaign_agents.assign(session, other, ["ana"], actor="test", now=world.clock())
    cid = await world.campaign(cps=100, mode="progressive")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 2
    assert {(await _agent(world, n)).state for n in ("ana", "bo")} == {"reserved"}


async def test_preview_cases_are_offered_only_to_the_campaigns_agents(world: World) -> None:
    who = await _collectors(world, "ana", "bo")
    cid = await _preview_campaign(world, 1)
    async with world.maker() as session:
        await campaign_agents.assign(session, cid, ["bo"], actor="test", now=world.clock())
    async with world.maker() as session:
        assert (await preview.next_case(session, who["ana"], world.clock()))["case"] is None
        offered = (await preview.next_case(session, who["bo"], world.clock()))["case"]
        assert offered is not None
        with pytest.raises(ConflictError):
            await preview.start(session, who["ana"], offered["attempt_id"], world.clock())


async def test_a_predictive_campaign_paces_from_its_assigned_agents_only(world: World) -> None:
    await _collectors(world, "ana", "bo", "cy")
    await world.add_cases(6)
    cid = await world.campaign(cps=100, mode="predictive")
    async with world.maker() as session:
        await campaign_agents.assign(session, cid, ["ana"], actor="test", now=world.clock())
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 1  # one call per free agent of its own, not three
