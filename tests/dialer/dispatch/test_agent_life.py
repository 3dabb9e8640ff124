"""A collector's life outside the API: the worker's holds and releases are audited like
any move, the reconciler lets go of the agent of a call it reclaims or finalises, and
the worker's periodic work moves an agent past the wrap-up limit away, once, with the
wrap-up still owed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters.errors import AmbiguousError, PermanentError, PermanentErrorKind
from dialer.db.engine import build_sessionmaker
from dialer.db.models import AgentRow, AttemptRow, AuditRow, ContactPointRow
from dialer.db.repositories import agents as agent_rows
from dialer.dispatch.agents import send_away_overdue
from dialer.dispatch.reconciler import reconcile
from dialer.dispatch.runtime import Runtime
from dialer.domain.agents import WRAP_UP_OVERDUE, AgentState
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, mid_tier_strategy, open_world
from tests.dialer.support import settings_for


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(
        database, start=INSIDE, strategy=mid_tier_strategy(spacing_minutes=None)
    ) as w:
        yield w


async def _one_progressive_call(world: World) -> tuple[AttemptRow, str]:
    """One available collector and one planned progressive call; its number."""
    await world.add_cases(1)
    async with world.maker() as session:
        row = await agent_rows.ensure(session, "collector-0", "available", world.clock())
        row.endpoint = "client:collector-0"
        await session.commit()
    cid = await world.campaign(cps=100, mode="progressive")
    await world.plan(cid)
    (attempt,) = await world.attempts(state="queued")
    async with world.maker() as session:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        return attempt, point.value


async def _agent(world: World) -> AgentRow:
    async with world.maker() as session:
        (row,) = (await session.scalars(select(AgentRow))).all()
        return row


async def _moves(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    """The agent's audited moves: (action, actor, detail), oldest first."""
    async with world.maker() as session:
        rows = await session.scalars(
            select(AuditRow).where(AuditRow.entity == "agent").order_by(AuditRow.id)
        )
        return [(r.action, r.actor, r.detail) for r in rows]


async def test_the_workers_hold_and_release_are_audited_like_any_move(world: World) -> None:
    attempt, number = await _one_progressive_call(world)
    world.telephony.fail_next(number, PermanentError("unreachable", kind=PermanentErrorKind.OTHER))
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    assert (await world.attempts(id=attempt.id))[0].state == "failed"
    moves = await _moves(world)
    assert [(action, actor) for action, actor, _ in moves] == [
        ("agent.reserved", "dialer"),
        ("agent.available", "dialer"),
    ]
    held, freed = (detail for _, _, detail in moves)
    assert held["before"] == {"state": "available", "attempt_id": None}
    assert held["after"]["attempt_id"] == str(attempt.id)
    assert freed["before"] == {"state": "reserved", "attempt_id": str(attempt.id)}
    assert freed["after"]["attempt_id"] is None


async def test_an_agent_held_for_a_reservation_whose_lease_ran_out_is_freed(
    world: World,
) -> None:
    attempt, _ = await _one_progressive_call(world)
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    assert (await _agent(world)).state == "reserved"
    # As if its worker had died after the reservation, before its fence.
    async with world.maker() as session:
        await session.execute(
            update(AttemptRow)
            .where(AttemptRow.id == attempt.id)
            .values(
                state="reserved",
                provider_sid=None,
                sent_at=None,
                lease_until=world.clock() - timedelta(seconds=1),
            )
        )
        await session.commit()
    report = await reconcile(world.maker, world.telephony, world.clock())
    assert report.moved.get("not_sent") == 1
    agent = await _agent(world)
    assert (agent.state, agent.attempt_id) == ("available", None)
    assert (await _moves(world))[-1][:2] == ("agent.available", "reconciler")


async def test_an_agent_held_for_a_call_found_never_placed_is_freed(world: World) -> None:
    attempt, number = await _one_progressive_call(world)
    world.telephony.fail_next(number, AmbiguousError("read timeout"))
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    assert (await world.attempts(id=attempt.id))[0].state == "unknown"
    assert (await _agent(world)).state == "reserved"  # the call may yet exist
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=2))
    assert report.moved.get("not_sent") == 1
    agent = await _agent(world)
    assert (agent.state, agent.attempt_id) == ("available", None)
    assert (await _moves(world))[-1][:2] == ("agent.available", "reconciler")


async def test_an_agent_held_for_a_call_the_provider_failed_is_freed(world: World) -> None:
    _, number = await _one_progressive_call(world)
    world.telephony.fail_next(number, AmbiguousError("502 on create"), after_acting=True)
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    (sid,) = world.telephony.placed
    world.telephony.set_call_status(sid, "failed")
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=2))
    assert report.moved == {"failed": 1}
    assert (await _agent(world)).state == "available"


async def test_the_collector_of_a_call_the_reconciler_finds_ended_owes_wrap_up(
    world: World,
) -> None:
    attempt, _ = await _one_progressive_call(world)
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    agent = await _agent(world)
    async with world.maker() as session:  # bridged; then the final callback is lost
        assert await agent_rows.move(
            session, agent.id, AgentState.ON_CALL, actor="dialer", now=world.clock()
        )
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == attempt.id).values(state="in_progress")
        )
        await session.commit()
    (sid,) = world.telephony.placed
    world.telephony.set_call_status(sid, "completed")
    later = world.clock() + timedelta(hours=3)
    report = await reconcile(world.maker, world.telephony, later)
    assert report.moved == {"completed": 1}
    agent = await _agent(world)
    assert (agent.state, agent.attempt_id) == ("wrap_up", attempt.id)
    assert agent.wrap_up_due_at is not None
    assert (await _moves(world))[-1][:2] == ("agent.wrap_up", "reconciler")


async def _owing(world: World) -> AgentRow:
    """A collector whose call ended, wrap-up owed within two minutes."""
    await _one_progressive_call(world)
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    agent = await _agent(world)
    async with world.maker() as session:
        for target, values in (
            (AgentState.ON_CALL, {}),
            (AgentState.WRAP_UP, {"wrap_up_due_at": world.clock() + timedelta(minutes=2)}),
        ):
            assert await agent_rows.move(
                session, agent.id, target, actor="dialer", now=world.clock(), values=values
            )
        await session.commit()
    return await _agent(world)


async def test_the_worker_moves_an_agent_past_the_wrap_up_limit_away_still_owing_it(
    world: World, database: Database
) -> None:
    owing = await _owing(world)
    runtime = Runtime(
        settings_for(database),
        world.engine,
        world.maker,
        world.queue,
        world.telephony,
        world.mailer,
        world.clock,
    )
    await runtime.reconcile_once()
    assert (await _agent(world)).state == "wrap_up"  # within the limit
    world.clock.advance(timedelta(minutes=3))
    await runtime.reconcile_once()
    agent = await _agent(world)
    assert (agent.state, agent.attempt_id) == ("away", owing.attempt_id)
    assert agent.wrap_up_due_at is not None  # still owed: filed before the next call
    action, actor, detail = (await _moves(world))[-1]
    assert (action, actor, detail["reason"]) == ("agent.away", "dialer", WRAP_UP_OVERDUE)
    assert detail["before"]["state"] == "wrap_up"
    await runtime.reconcile_once()  # nothing more to do
    assert [m[0] for m in await _moves(world)].count("agent.away") == 1


async def test_several_workers_move_an_overdue_agent_away_once(world: World) -> None:
    await _owing(world)
    later = world.clock() + timedelta(minutes=3)
    makers = (
        [build_sessionmaker(world.engine) for _ in range(4)]
        if world.postgres
        else [world.maker] * 4
    )
    moved = await asyncio.gather(*(send_away_overdue(m, later) for m in makers))
    assert sum(moved) == 1
    assert [m[0] for m in await _moves(world)].count("agent.away") == 1
    assert (await _agent(world)).state == "away"


async def test_an_agent_in_another_state_is_not_moved_by_the_limit(world: World) -> None:
    owing = await _owing(world)
    async with world.maker() as session:
        assert await agent_rows.move(
            session, owing.id, AgentState.OFFLINE, actor="agent:x", now=world.clock()
        )
        await session.commit()
    assert await send_away_overdue(world.maker, world.clock() + timedelta(minutes=3)) == 0
    agent = await _agent(world)
    # offline keeps the wrap-up owed (the call's record must still be filed)
    assert (agent.state, agent.attempt_id) == ("offline", owing.attempt_id)
    assert agent.wrap_up_due_at is not None
