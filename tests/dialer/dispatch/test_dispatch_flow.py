"""Plan -> outbox -> queue -> worker -> provider, on SQLite and PostgreSQL with the
in-process queue and a manual clock (no sleeping)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from adapters.inprocess import InProcessJobQueue
from adapters.ports import Delivery
from dialer.db.models import CampaignRow, CaseRow, ContactPointRow, OutboxRow
from dialer.dispatch import outbox
from dialer.services import campaigns
from tests.databases import Database
from tests.dialer.dispatch_world import EARLY, INSIDE, World, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database) as w:
        yield w


async def test_planned_before_the_window_is_sent_when_it_opens_in_the_party_zone(
    world: World,
) -> None:
    await world.add_cases(3)
    cid = await world.campaign()
    await world.plan(cid)
    planned = await world.attempts()
    assert len(planned) == 3  # one voice attempt per case
    opens = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert {a.not_before for a in planned} == {opens}
    assert {a.state for a in planned} == {"queued"}
    assert all(a.template_key and a.disclosure == "full" for a in planned)
    async with world.maker() as session:
        unpublished = await session.scalars(
            select(OutboxRow).where(OutboxRow.published_at.is_(None))
        )
        assert list(unpublished) == []
    handled = await world.queue.drain(EARLY + timedelta(minutes=20), world.dispatcher())
    assert handled == 0 and world.dials() == 0, "nothing is dialled before 09:00 local"
    await world.queue.drain(opens + timedelta(minutes=5), world.dispatcher())
    assert world.dials() == 3
    sent = await world.attempts(state="sent")
    assert len(sent) == 3 and all(a.provider_sid and a.reserved_at for a in sent)
    assert all(a.reserved_at is not None and a.reserved_at >= opens for a in sent)
    assert all(a.allowed_by and a.profile == "cn-consumer" for a in sent)


async def test_every_job_delivered_twice_dials_once(world: World) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(4)
    cid = await world.campaign()
    await world.plan(cid)
    jobs = world.queue.pending()
    assert len(jobs) == 4
    await world.queue.publish(jobs)  # the relay crashed after the broker confirmed
    dispatcher = world.dispatcher()
    await world.queue.drain(INSIDE + timedelta(minutes=1), dispatcher)
    for job in jobs:  # and a redelivery of each after a lost ack
        await dispatcher(Delivery(job, redelivered=True, delivery_count=2))
    assert world.dials() == 4
    assert len(await world.attempts(state="sent")) == 4


async def test_opt_out_after_planning_refuses_the_queued_job(world: World) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(1)
    cid = await world.campaign()
    await world.plan(cid)
    (attempt,) = await world.attempts()
    async with world.maker() as session:  # STOP arrives after planning
        await session.execute(
            update(ContactPointRow)
            .where(ContactPointRow.id == attempt.contact_point_id)
            .values(opted_out=["voice"])
        )
        await session.commit()
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    assert world.dials() == 0
    (refused,) = await world.attempts()
    assert refused.state == "refused"
    assert refused.refusal is not None
    assert "optout.channel" in {r["rule"] for r in refused.refusal["reasons"]}


async def test_payment_after_planning_refuses_with_case_settled(world: World) -> None:
    world.clock.advance_to(INSIDE)
    (case_id,) = await world.add_cases(1)
    cid = await world.campaign()
    await world.plan(cid)
    async with world.maker() as session:  # the ledger reports the case paid off
        await session.execute(update(CaseRow).where(CaseRow.id == case_id).values(balance=0))
        await session.commit()
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    assert world.dials() == 0
    (refused,) = await world.attempts()
    assert refused.state == "refused"
    assert refused.refusal is not None
    assert {r["rule"] for r in refused.refusal["reasons"]} == {"case.settled"}
    async with world.maker() as session:
        progress = await campaigns.progress(session, cid)
    assert progress.refused_at_dispatch == 1 and progress.refused_by_rule["case.settled"] == 1


async def test_pause_holds_jobs_resume_sends_them_cancel_cancels_the_rest(world: World) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(4)
    cid = await world.campaign()
    await world.plan(cid)
    async with world.maker() as session:
        await campaigns.transition(session, cid, "paused", actor="t", now=world.clock())
    await world.queue.drain(INSIDE + timedelta(minutes=2), world.dispatcher())
    assert world.dials() == 0
    assert len(await world.attempts(state="queued")) == 4
    async with world.maker() as session:
        await campaigns.transition(session, cid, "running", actor="t", now=world.clock())
    jobs = world.queue.pending()
    first = jobs[0]
    await world.dispatcher()(Delivery(first))
    assert world.dials() == 1
    async with world.maker() as session:
        await campaigns.transition(session, cid, "cancelled", actor="t", now=world.clock())
        with pytest.raises(Exception, match="cannot become"):
            await campaigns.transition(session, cid, "running", actor="t", now=world.clock())
    await world.queue.drain(INSIDE + timedelta(hours=1), world.dispatcher())
    assert world.dials() == 1
    assert len(await world.attempts(state="cancelled")) == 3
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
        status = (await session.get(CampaignRow, cid, populate_existing=True)).status  # type: ignore[union-attr]
    assert status == "cancelled"
    assert (p.planned, p.dispatched, p.cancelled, p.in_progress) == (4, 1, 3, 1)


async def test_progress_counts_planned_queued_dispatched_and_refusals_by_rule(
    world: World,
) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(3)
    await world.add_cases(1, status="settled")  # not open: not in the campaign at all
    await world.add_cases(1, flags=["dispute"])
    cid = await world.campaign(channels=("voice", "sms"))
    await world.plan(cid)
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
    assert p.plan_done and p.cases_seen == 4
    # one call per case: the tier's 120 minutes between contacts with a party leave no
    # room for an SMS inside this morning's window (refusals of cases with an attempt
    # planned are not counted: they were not refused)
    assert p.planned == 3 and p.queued == 3
    assert {a.channel for a in await world.attempts()} == {"voice"}
    assert p.refused_by_rule == {"flag.dispute": 1}
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    async with world.maker() as session:
        p = await campaigns.progress(session, cid)
    assert p.dispatched == 3 and p.in_progress == 3 and p.queued == 0
    assert p.refused_at_dispatch == 0


async def test_a_restarted_in_process_queue_gets_the_waiting_jobs_back(world: World) -> None:
    world.clock.advance_to(INSIDE)
    await world.add_cases(3)
    cid = await world.campaign()
    await world.plan(cid)
    restarted = InProcessJobQueue(clock=world.clock)  # the process died: its heap is gone
    assert await outbox.requeue_waiting(world.maker, restarted) == 3
    await restarted.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    assert world.dials() == 3
    assert await outbox.requeue_waiting(world.maker, restarted) == 0
    await restarted.close()


async def _call_then_text(world: World, late: timedelta) -> tuple[datetime, datetime]:
    """One case, a voice and SMS campaign planned before the window: the call at 09:00,
    the text two hours later (the tier's spacing); the call goes out `late`."""
    await world.add_cases(1)
    cid = await world.campaign(channels=("voice", "sms"))
    await world.plan(cid)
    call, text = sorted(await world.attempts(), key=lambda a: a.at)
    assert (call.channel, text.channel) == ("voice", "sms")
    assert call.not_before is not None and text.not_before is not None
    assert text.not_before - call.not_before == timedelta(minutes=120)
    world.clock.advance_to(call.not_before + late)  # pacing, a busy worker: the call slips
    await world.queue.drain(world.clock(), world.dispatcher())
    return call.not_before + late, text.not_before


async def test_a_text_after_a_late_call_waits_out_the_spacing_instead_of_being_refused(
    world: World,
) -> None:
    called, planned = await _call_then_text(world, timedelta(minutes=20))
    await world.queue.drain(planned + timedelta(minutes=25), world.dispatcher())
    (text,) = await world.attempts(channel="sms")
    assert text.state == "sent", text.refusal
    assert text.at == called + timedelta(minutes=120)  # deferred to when the spacing passes
    assert world.dials() == 2


async def test_a_deferral_never_leaves_the_campaign_window(world: World) -> None:
    # The call slips 50 minutes: the spacing would pass at 11:50, after the 11:30 close.
    _, planned = await _call_then_text(world, timedelta(minutes=50))
    await world.queue.drain(planned + timedelta(hours=2), world.dispatcher())
    (text,) = await world.attempts(channel="sms")
    assert text.state == "refused"
    assert text.refusal is not None
    assert {r["rule"] for r in text.refusal["reasons"]} == {"spacing.party"}
    assert world.dials() == 1
