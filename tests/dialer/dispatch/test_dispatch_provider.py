"""What the provider's answers do to an attempt: ambiguous -> unknown -> reconciled without a
second dial; permanent -> failed and the contact point updated; transient -> not sent and
tried again later; a template that would say more than granted -> failed closed."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from adapters.errors import AmbiguousError, PermanentError, PermanentErrorKind, TransientError
from adapters.ports import Delivery
from adapters.templates import DEFAULT_TEMPLATES, RoleGroup, Template, TemplateRegistry
from dialer.db.models import ContactPointRow
from dialer.dispatch import outbox
from dialer.dispatch.context import WorkerConfig
from dialer.dispatch.reconciler import REPLAN_NOTE, reconcile
from dialer.services import campaigns
from strategy.model import Channel, Disclosure
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database, start=INSIDE) as w:
        yield w


async def _planned_one(world: World) -> tuple[str, str]:
    """One planned and queued call; returns (attempt id, the number it will dial)."""
    await world.add_cases(1)
    cid = await world.campaign()
    await world.plan(cid)
    (attempt,) = await world.attempts()
    async with world.maker() as session:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        return str(attempt.id), point.value


async def test_ambiguous_create_goes_unknown_and_is_reconciled_without_a_second_dial(
    world: World,
) -> None:
    _attempt_id, to = await _planned_one(world)
    world.telephony.fail_next(to, AmbiguousError("502 on create"), after_acting=True)
    (job,) = world.queue.pending()
    dispatcher = world.dispatcher()
    await world.queue.drain(INSIDE + timedelta(minutes=1), dispatcher)
    (attempt,) = await world.attempts()
    assert attempt.state == "unknown" and attempt.provider_sid is None
    assert attempt.error_code == "ambiguous"
    await dispatcher(Delivery(job, redelivered=True, delivery_count=2))
    assert world.dials() == 1, "an unknown attempt is never dialled again"
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=2))
    assert report.moved == {"sent": 1}
    (attempt,) = await world.attempts()
    assert attempt.state == "sent" and attempt.provider_sid in world.telephony.placed
    await dispatcher(Delivery(job, redelivered=True, delivery_count=3))
    assert world.dials() == 1


async def test_ambiguous_create_that_never_reached_the_provider_is_reconciled_not_sent(
    world: World,
) -> None:
    _, to = await _planned_one(world)
    world.telephony.fail_next(to, AmbiguousError("read timeout"))
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    assert world.dials() == 0
    later = world.clock() + timedelta(minutes=2)
    report = await reconcile(world.maker, world.telephony, later)
    assert report.moved == {"not_sent": 1} and report.replanned == 1
    # Certainly never placed, in a running campaign: planned again, and dialled once.
    by_state = {a.state: a for a in await world.attempts()}
    assert sorted(by_state) == ["not_sent", "planned"]
    first, fresh = by_state["not_sent"], by_state["planned"]
    assert fresh.contact_point_id == first.contact_point_id
    assert fresh.notes == f"{REPLAN_NOTE}{first.id} was never placed"
    await outbox.relay_all(world.maker, world.queue, later)
    await world.queue.drain(later + timedelta(seconds=1), world.dispatcher())
    assert world.dials() == 1
    assert sorted(a.state for a in await world.attempts()) == ["not_sent", "sent"]


async def test_calls_never_placed_are_planned_again_at_most_replans_times(world: World) -> None:
    _, to = await _planned_one(world)
    for minute in range(1, 5):  # the provider never takes a request to this number
        world.telephony.fail_next(to, AmbiguousError("read timeout"))
        at = INSIDE + timedelta(minutes=3 * minute)
        await outbox.relay_all(world.maker, world.queue, at)
        await world.queue.drain(at, world.dispatcher())
        await reconcile(world.maker, world.telephony, at + timedelta(minutes=2), replans=2)
    assert world.dials() == 0
    assert [a.state for a in await world.attempts()] == ["not_sent"] * 3


async def test_a_call_never_placed_is_not_planned_again_once_its_campaign_is_cancelled(
    world: World,
) -> None:
    _, to = await _planned_one(world)
    world.telephony.fail_next(to, AmbiguousError("read timeout"))
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    (attempt,) = await world.attempts()
    assert attempt.campaign_id is not None
    async with world.maker() as session:
        await campaigns.transition(
            session, attempt.campaign_id, "cancelled", actor="test", now=world.clock()
        )
    report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(minutes=2))
    assert report.moved == {"not_sent": 1} and report.replanned == 0
    assert [a.state for a in await world.attempts()] == ["not_sent"]


@pytest.mark.parametrize(
    ("kind", "code", "effect"),
    [
        (PermanentErrorKind.INVALID_NUMBER, 21211, ("validity", "invalid")),
        (PermanentErrorKind.OPTED_OUT, 21610, ("opted_out", ["voice"])),
    ],
)
async def test_permanent_error_fails_the_attempt_and_updates_the_contact_point(
    world: World, kind: PermanentErrorKind, code: int, effect: tuple[str, object]
) -> None:
    _, to = await _planned_one(world)
    world.telephony.fail_next(to, PermanentError("refused", kind=kind, code=code))
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    (attempt,) = await world.attempts()
    assert attempt.state == "failed" and attempt.error_code == f"{kind}:{code}"
    async with world.maker() as session:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        assert getattr(point, effect[0]) == effect[1]


async def test_transient_error_is_not_sent_and_a_fresh_attempt_dials_later(world: World) -> None:
    _, to = await _planned_one(world)
    for _ in range(WorkerConfig().create_attempts):  # every try the worker makes
        world.telephony.fail_next(to, TransientError("429", retry_after=1))
    await world.queue.drain(INSIDE + timedelta(seconds=10), world.dispatcher())
    assert world.dials() == 0
    first, retry = await world.attempts()
    assert first.state == "not_sent" and first.error_code == "transient"
    assert first.updated_at is not None
    assert retry.state == "planned" and retry.not_before == first.updated_at + timedelta(minutes=1)
    await outbox.relay_all(world.maker, world.queue, world.clock())
    await world.queue.drain(INSIDE + timedelta(minutes=2), world.dispatcher())
    assert world.dials() == 1
    assert [a.state for a in await world.attempts()] == ["not_sent", "sent"]


async def test_a_429_is_tried_again_by_the_worker_after_its_retry_after(world: World) -> None:
    """Issue 19 item 5: the worker, not the adapter, tries a create again, after the wait
    Twilio asked for and on a fresh fence (and pacing slot): one attempt, one dial."""
    _, to = await _planned_one(world)
    world.telephony.fail_next(to, TransientError("429", retry_after=7))
    before = world.clock()
    await world.queue.drain(INSIDE + timedelta(seconds=30), world.dispatcher())
    assert world.dials() == 1
    (attempt,) = await world.attempts()
    assert attempt.state == "sent" and attempt.dialing_at is not None
    assert attempt.dialing_at - before >= timedelta(seconds=7)  # fenced again after the wait


def _leaky_registry() -> TemplateRegistry:
    """The shipped templates, but the debtor's identity-level call greeting names the
    amount: a template author's slip that must never reach a phone."""
    templates = []
    for t in DEFAULT_TEMPLATES:
        if (t.channel, t.group, t.purpose, t.level) == (
            Channel.VOICE,
            RoleGroup.DEBTOR,
            "greeting",
            Disclosure.IDENTITY,
        ):
            t = dataclasses.replace(
                t, body=t.body + " You owe {amount}.", fields=t.fields | {"amount"}
            )
        templates.append(t)
    assert all(isinstance(t, Template) for t in templates)
    return TemplateRegistry.of(templates)


async def test_template_saying_more_than_granted_fails_closed(world: World) -> None:
    await _planned_one(world)
    await world.queue.drain(
        INSIDE + timedelta(minutes=1), world.dispatcher(templates=_leaky_registry())
    )
    assert world.dials() == 0
    (attempt,) = await world.attempts()
    assert attempt.state == "failed" and attempt.error_code == "disclosure"
    assert "amount" in (attempt.error_message or "")
