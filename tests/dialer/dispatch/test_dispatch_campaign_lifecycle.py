"""A campaign's end and its start after the window: it becomes `done` by itself once
planned to the end with every attempt final, and one started after today's window has
closed plans for the next opening (shown in progress). SQLite and PostgreSQL, manual
clock, in-process queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from dialer.db.models import AttemptRow, CaseRow
from dialer.dispatch import lifecycle, planner, sql
from dialer.domain.attempts import AttemptState, advance
from dialer.services import campaigns
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world

# Tuesday 2026-12-01 13:00 in Shanghai: the 09:00-11:30 window closed two hours ago.
AFTERNOON = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
# Wednesday 09:00 in Shanghai: the next opening.
NEXT_OPENING = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database) as w:
        yield w


async def _finish_calls(world: World, outcome: str) -> None:
    """What the status callbacks do at the end of each call: sent -> completed."""
    async with world.maker() as session:
        for a in await world.attempts(state="sent"):
            target = advance(AttemptState(a.state), AttemptState.COMPLETED)
            assert target is AttemptState.COMPLETED
            await session.execute(
                update(AttemptRow)
                .where(AttemptRow.id == a.id)
                .values(state=target.value, result=outcome, updated_at=world.clock())
            )
        await session.commit()


async def _status(world: World, cid: uuid.UUID) -> str:
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
    return p.status


async def test_campaign_becomes_done_once_planned_and_every_attempt_is_final(
    world: World,
) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(3)
    cid = await world.campaign()
    await world.plan(cid)
    assert await lifecycle.finish_completed(world.maker, world.clock()) == []
    assert await _status(world, cid) == "running", "three jobs are still queued"
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    assert world.dials() == 3
    # sent but not finished: the calls are still outstanding
    assert await lifecycle.claim(world.maker, "planner-1", world.clock()) is None
    assert await _status(world, cid) == "running"
    await _finish_calls(world, "no_answer")
    # the planner loop's next claim closes it
    assert await lifecycle.claim(world.maker, "planner-1", world.clock()) is None
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
        row = await campaigns.get_campaign(session, cid)
    assert p.status == "done" and p.plan_done
    assert p.completed == 3 and p.completed_by_outcome == {"no_answer": 3}
    assert p.next_send_at is None
    assert row.finished_at == world.clock()


async def test_campaign_whose_attempts_were_all_refused_at_dispatch_is_done(
    world: World,
) -> None:
    world.clock.advance_to(INSIDE)
    case_ids = await world.add_cases(2)
    cid = await world.campaign()
    await world.plan(cid)
    async with world.maker() as session:  # both cases settle before their jobs run
        await session.execute(update(CaseRow).where(CaseRow.id.in_(case_ids)).values(balance=0))
        await session.commit()
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    assert world.dials() == 0
    assert await lifecycle.finish_completed(world.maker, world.clock()) == [cid]
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
    assert p.status == "done" and p.refused_at_dispatch == 2


async def test_paused_campaign_is_not_closed_even_when_nothing_is_outstanding(
    world: World,
) -> None:
    world.clock.advance_to(INSIDE)
    cid = await world.campaign()  # no cases at all: planned to the end at once
    await world.plan(cid)
    async with world.maker() as session:
        await campaigns.transition(session, cid, "paused", actor="test", now=world.clock())
    assert await lifecycle.finish_completed(world.maker, world.clock()) == []
    assert await _status(world, cid) == "paused"
    async with world.maker() as session:
        await campaigns.transition(session, cid, "running", actor="test", now=world.clock())
    assert await lifecycle.finish_completed(world.maker, world.clock()) == [cid]
    assert await _status(world, cid) == "done"


async def test_campaign_started_after_the_window_closed_plans_the_next_opening(
    world: World,
) -> None:
    world.clock.advance_to(AFTERNOON)
    await world.add_cases(3)
    cid = await world.campaign()
    await world.plan(cid)
    planned = await world.attempts()
    assert len(planned) == 3, "nothing is dropped because today's window has closed"
    assert {a.not_before for a in planned} == {NEXT_OPENING}
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
    assert p.status == "running" and p.plan_done and p.queued == 3
    assert p.next_send_at == NEXT_OPENING
    assert "campaign.window" not in p.refused_by_rule
    # nothing leaves before the window opens again, in the parties' zone
    handled = await world.queue.drain(NEXT_OPENING - timedelta(minutes=1), world.dispatcher())
    assert handled == 0 and world.dials() == 0
    await world.queue.drain(NEXT_OPENING + timedelta(minutes=5), world.dispatcher())
    assert world.dials() == 3
    sent = await world.attempts(state="sent")
    assert len(sent) == 3
    assert all(a.reserved_at is not None and a.reserved_at >= NEXT_OPENING for a in sent)
    assert await _status(world, cid) == "running"


async def test_reservation_moves_an_attempt_the_relay_queued_after_it_was_read(
    world: World,
) -> None:
    """The worker reads the attempt as planned; the outbox relay (which does not lock the
    case) marks it queued before the worker's update: the reservation still takes it, and
    a move the state machine forbids reports that nothing moved."""
    world.clock.advance_to(INSIDE)
    await world.add_cases(1)
    cid = await world.campaign()
    await planner.plan_campaign(world.maker, cid, world.clock)
    (attempt,) = await world.attempts()
    assert attempt.state == "planned"
    async with world.maker() as session:  # the relay publishes and commits meanwhile
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == attempt.id).values(state="queued")
        )
        await session.commit()
    async with world.maker() as session:
        conn = await session.connection()
        moved = await sql.move(
            conn, attempt.id, "planned", AttemptState.RESERVED, {"reserved_at": INSIDE}, INSIDE
        )
        await session.commit()
    assert moved
    (reserved,) = await world.attempts()
    assert reserved.state == "reserved" and reserved.reserved_at == INSIDE
    async with world.maker() as session:  # reserved -> reserved again: nothing moves
        conn = await session.connection()
        again = await sql.move(conn, attempt.id, "queued", AttemptState.RESERVED, {}, INSIDE)
        await session.commit()
    assert not again
