"""The reconciler's look-ups (issue 19, items 3 and 4): a text without a provider id is
looked up by recipient and date, found -> its state, never sent -> `not_sent` and planned
again as a call is; a failure the reconciler concludes by itself stays correctable; a call
silent past its expected length is fetched and its in-progress place freed once it ended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from adapters.errors import AmbiguousError
from adapters.ports import CallInfo, SmsRequest
from dialer.db.models import AttemptRow, ContactPointRow
from dialer.dispatch import outbox, pacing
from dialer.dispatch.lookups import end_silent_calls
from dialer.dispatch.reconciler import REPLAN_NOTE, reconcile
from dialer.domain.attempts import INFERRED_FAILURE
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world

SILENT = timedelta(minutes=3)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database, start=INSIDE) as w:
        yield w


async def _planned(world: World, channel: str, n: int = 1, **campaign: object) -> list[str]:
    """n planned and queued attempts on `channel`; the numbers they go to."""
    await world.add_cases(n)
    cid = await world.campaign(channels=(channel,), **campaign)  # type: ignore[arg-type]
    await world.plan(cid)
    async with world.maker() as session:
        numbers = []
        for attempt in await world.attempts(channel=channel):
            point = await session.get(ContactPointRow, attempt.contact_point_id)
            assert point is not None
            numbers.append(point.value)
        return numbers


def texts(world: World) -> int:
    return sum(len(v) for v in world.telephony.sms.values())


async def test_a_text_whose_create_never_reached_the_provider_is_planned_again(
    world: World,
) -> None:
    (to,) = await _planned(world, "sms")
    world.telephony.fail_next(to, AmbiguousError("read timeout"))
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    (attempt,) = await world.attempts()
    assert attempt.state == "unknown" and texts(world) == 0
    later = world.clock() + timedelta(minutes=2)
    report = await reconcile(world.maker, world.telephony, later)
    # Today: failed, final, never sent. Now: looked up, found never sent, planned again.
    assert report.moved == {"not_sent": 1} and report.replanned == 1
    by_state = {a.state: a for a in await world.attempts()}
    assert sorted(by_state) == ["not_sent", "planned"]
    assert by_state["planned"].channel == "sms"
    assert by_state["planned"].notes == f"{REPLAN_NOTE}{by_state['not_sent'].id} was never placed"
    await outbox.relay_all(world.maker, world.queue, later)
    await world.queue.drain(later + timedelta(seconds=1), world.dispatcher())
    assert texts(world) == 1
    assert sorted(a.state for a in await world.attempts()) == ["not_sent", "sent"]


async def test_a_text_sent_although_its_response_was_lost_is_found_and_not_sent_again(
    world: World,
) -> None:
    (to,) = await _planned(world, "sms")
    world.telephony.fail_next(to, AmbiguousError("502 on create"), after_acting=True)
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    (sid,) = world.telephony.messages
    world.telephony.set_message_status(sid, "delivered")
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=2))
    assert report.moved == {"completed": 1} and report.replanned == 0
    (attempt,) = await world.attempts()
    assert (attempt.state, attempt.provider_sid) == ("completed", sid)
    assert texts(world) == 1


async def test_a_text_another_attempt_claims_is_not_taken_for_this_one(world: World) -> None:
    (to,) = await _planned(world, "sms")
    world.telephony.fail_next(to, AmbiguousError("read timeout"))
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    (attempt,) = await world.attempts()
    # A message to the same number that another attempt already holds, sent since.
    world.telephony.now = world.clock()
    ref = await world.telephony.send_sms(SmsRequest("other", to, "x"))
    async with world.maker() as session:
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == attempt.id).values(notes="mine")
        )
        clone = AttemptRow(
            case_id=attempt.case_id,
            party_id=attempt.party_id,
            contact_point_id=attempt.contact_point_id,
            channel="sms",
            state="sent",
            result="pending",
            provider_sid=ref.id,
            at=attempt.at,
        )
        session.add(clone)
        await session.commit()
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=2))
    assert report.moved == {"not_sent": 1}


async def test_a_call_silent_past_its_expected_length_is_ended_and_frees_its_place(
    world: World,
) -> None:
    numbers = await _planned(world, "voice", n=3, max_in_progress=2)
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    sent = await world.attempts(state="sent")
    assert len(sent) == 2 and world.dials() == 2, "the in-progress limit holds the third"
    campaign = sent[0].campaign_id
    assert campaign is not None
    ended, live = sent
    assert ended.provider_sid and live.provider_sid
    world.telephony.set_call_status(ended.provider_sid, "completed")  # its callbacks were lost
    world.telephony.set_call_status(live.provider_sid, "in-progress")
    # Not silent long enough yet: nothing is fetched or moved.
    early = await end_silent_calls(
        world.maker, world.telephony, INSIDE + timedelta(minutes=2), silent_after=SILENT
    )
    assert early.examined == 0
    later = INSIDE + timedelta(minutes=4)
    report = await end_silent_calls(world.maker, world.telephony, later, silent_after=SILENT)
    assert report.examined == 2 and report.ended == {"completed": 1}
    row = next(a for a in await world.attempts() if a.id == ended.id)
    assert (row.state, row.provider_status, row.result) == ("completed", "completed", "no_answer")
    assert next(a for a in await world.attempts() if a.id == live.id).state == "sent"
    async with world.maker() as session:
        assert await pacing.in_progress(session, campaign) == 1
    # The freed place goes to the third call, well before the 30-minute stuck timeout.
    world.clock.advance_to(later)
    await world.queue.drain(later + timedelta(seconds=5), world.dispatcher())
    assert world.dials() == 3 and len(numbers) == 3


async def test_a_failure_the_reconciler_concluded_is_marked_and_twilio_failures_are_not(
    world: World,
) -> None:
    await _planned(world, "sms", n=2)
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    gone, failed = await world.attempts()
    assert gone.provider_sid and failed.provider_sid
    del world.telephony.messages[gone.provider_sid]  # the provider knows nothing of it
    world.telephony.set_message_status(failed.provider_sid, "failed", 30008)
    stuck = timedelta(minutes=30)
    await reconcile(world.maker, world.telephony, world.clock() + stuck + SILENT, stuck_after=stuck)
    rows = {a.id: a for a in await world.attempts()}
    assert (rows[gone.id].state, rows[gone.id].error_code) == ("failed", INFERRED_FAILURE)
    assert rows[failed.id].state == "failed"
    assert rows[failed.id].error_code != INFERRED_FAILURE


async def test_a_text_left_reserved_by_a_killed_worker_is_looked_up_and_planned_again(
    world: World,
) -> None:
    """A worker SIGKILLed between the reservation and the send leaves the text reserved."""
    await _planned(world, "sms")
    (attempt,) = await world.attempts()
    async with world.maker() as session:
        await session.execute(
            update(AttemptRow)
            .where(AttemptRow.id == attempt.id)
            .values(state="reserved", reserved_at=world.clock())
        )
        await session.commit()
    soon = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=1))
    assert soon.examined == 0, "a worker may still be sending it"
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=6))
    assert report.moved == {"not_sent": 1} and report.replanned == 1
    assert sorted(a.state for a in await world.attempts()) == ["not_sent", "planned"]


async def test_a_silent_call_whose_callback_comes_during_the_look_up_is_moved_once(
    world: World,
) -> None:
    await _planned(world, "voice")
    await world.queue.drain(INSIDE + timedelta(seconds=5), world.dispatcher())
    (attempt,) = await world.attempts(state="sent")
    assert attempt.provider_sid
    world.telephony.set_call_status(attempt.provider_sid, "busy")
    fetch = world.telephony.fetch_call

    async def late_callback(sid: str) -> CallInfo:
        async with world.maker() as session:  # the final callback lands meanwhile
            await session.execute(
                update(AttemptRow)
                .where(AttemptRow.id == attempt.id)
                .values(state="completed", provider_status="busy", result="busy")
            )
            await session.commit()
        return await fetch(sid)

    world.telephony.fetch_call = late_callback  # type: ignore[method-assign]
    report = await end_silent_calls(
        world.maker, world.telephony, INSIDE + timedelta(minutes=4), silent_after=SILENT
    )
    assert report.examined == 1 and report.ended == {}
    (row,) = await world.attempts()
    assert (row.state, row.result) == ("completed", "busy")


async def test_an_ambiguous_text_is_looked_up_only_a_while_after_its_ambiguous_create(
    world: World,
) -> None:
    """A timed-out create may still be completing at the provider, and its Messages list
    may not show it yet: the look-up waits `unknown_after` from the moment the create
    turned ambiguous, not from the reservation (a text can wait long for a pacing slot),
    or a text Twilio was still accepting would be found 'never sent' and sent again."""
    (to,) = await _planned(world, "sms")
    world.telephony.fail_next(to, AmbiguousError("read timeout"))
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    (attempt,) = await world.attempts()
    assert attempt.state == "unknown" and attempt.updated_at is not None
    ambiguous_at = attempt.updated_at
    async with world.maker() as session:  # reserved long before, waiting for a slot
        await session.execute(
            update(AttemptRow)
            .where(AttemptRow.id == attempt.id)
            .values(reserved_at=ambiguous_at - timedelta(minutes=10))
        )
        await session.commit()
    soon = await reconcile(world.maker, world.telephony, ambiguous_at + timedelta(seconds=5))
    assert (soon.examined, soon.moved, soon.replanned) == (0, {}, 0)
    assert [a.state for a in await world.attempts()] == ["unknown"]
    later = await reconcile(world.maker, world.telephony, ambiguous_at + timedelta(seconds=31))
    assert later.moved == {"not_sent": 1} and later.replanned == 1
