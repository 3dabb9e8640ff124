"""The dispatch fence and the reconciler's lease rule (issue 19), on SQLite and PostgreSQL:
the worker moves reserved -> dialing only under its own lease and with no opt-out, cease
or consent revocation committed since the decision; the reconciler reclaims a reserved
attempt only once its lease has run out, and a dialing one only after the send window,
the HTTP client's whole timeout and a margin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from dialer.db.models import AttemptRow, CaseRow, ContactPointRow
from dialer.dispatch.fence import SEND_WINDOW, Fence, dialing_reclaim_after
from dialer.dispatch.reconciler import DIALING_AFTER, reconcile
from dialer.dispatch.redecide import Reservation
from dialer.dispatch.worker import Dispatcher
from dialer.services.optouts import opt_out
from strategy.model import CaseFlag, Channel
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database, start=INSIDE) as w:
        yield w


async def _one(world: World) -> AttemptRow:
    await world.add_cases(1)
    await world.plan(await world.campaign())
    (attempt,) = await world.attempts()
    return attempt


async def _set(world: World, attempt: AttemptRow, **values: object) -> None:
    async with world.maker() as session:
        await session.execute(update(AttemptRow).where(AttemptRow.id == attempt.id).values(values))
        await session.commit()


def test_a_dialing_attempt_waits_for_the_whole_http_timeout_and_a_margin() -> None:
    timeout, margin = timedelta(seconds=15), timedelta(seconds=30)
    assert dialing_reclaim_after(timeout, margin) == SEND_WINDOW + timeout + margin
    # the margin never drops below a second, whatever is configured
    assert dialing_reclaim_after(timeout, timedelta(0)) > SEND_WINDOW + timeout


async def test_a_reserved_attempt_is_reclaimed_only_once_its_lease_has_run_out(
    world: World,
) -> None:
    attempt = await _one(world)
    now = world.clock()
    await _set(
        world,
        attempt,
        state="reserved",
        reserved_at=now,
        lease_owner="w1",
        lease_until=now + timedelta(minutes=5),
    )
    report = await reconcile(world.maker, world.telephony, now + timedelta(minutes=4, seconds=59))
    assert report.moved == {}
    report = await reconcile(world.maker, world.telephony, now + timedelta(minutes=5))
    assert report.moved == {"not_sent": 1} and report.replanned == 1
    reclaimed = (await world.attempts(id=attempt.id))[0]
    assert reclaimed.lease_owner == "reconciler" and reclaimed.provider_sid is None


async def test_a_dialing_attempt_is_looked_up_only_after_the_timeout_and_margin(
    world: World,
) -> None:
    attempt = await _one(world)
    now = world.clock()
    await _set(
        world,
        attempt,
        state="dialing",
        reserved_at=now,
        dialing_at=now,
        lease_owner="w1",
        lease_until=now + timedelta(seconds=1),  # a lease long gone changes nothing
    )
    early = now + DIALING_AFTER - timedelta(seconds=1)
    assert (await reconcile(world.maker, world.telephony, early)).moved == {}
    report = await reconcile(world.maker, world.telephony, now + DIALING_AFTER)
    assert report.moved == {"not_sent": 1}  # looked up: the provider has no such call


def _interleaved(
    world: World, before: Callable[[], Awaitable[None]], monkeypatch: pytest.MonkeyPatch
) -> Dispatcher:
    """A worker whose fence runs just after `before` (another transaction) committed."""
    check = Fence.check

    async def interleaved(
        self: Fence, batch: Sequence[tuple[Reservation, bool]]
    ) -> list[bool | BaseException]:
        await before()
        return await check(self, batch)

    monkeypatch.setattr(Fence, "check", interleaved)
    return Dispatcher(world.maker, world.telephony, world.mailer, world.clock)


@pytest.mark.parametrize("fact", ["optout", "cease", "revoked"])
async def test_a_protective_fact_committed_after_the_decision_stops_the_fence(
    world: World, fact: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt = await _one(world)
    if fact == "revoked":  # the decision had the channel's consent on the point
        async with world.maker() as session:
            point = await session.get(ContactPointRow, attempt.contact_point_id)
            assert point is not None
            point.consent = sorted({*point.consent, attempt.channel})
            await session.commit()

    async def land() -> None:
        async with world.maker() as session:
            point = await session.get(ContactPointRow, attempt.contact_point_id)
            case = await session.get(CaseRow, attempt.case_id)
            assert point is not None and case is not None
            if fact == "optout":
                await opt_out(
                    session, [point], Channel(attempt.channel), source="t", actor="t", now=_now()
                )
            elif fact == "cease":
                case.flags = sorted({*case.flags, CaseFlag.CEASE.value})
            else:
                point.consent = sorted(set(point.consent) - {attempt.channel})
            await session.commit()

    dispatcher = _interleaved(world, land, monkeypatch)
    await world.queue.drain(INSIDE + timedelta(minutes=1), dispatcher)
    assert world.dials() == 0
    (after,) = await world.attempts()
    assert after.state == "refused", after.state
    rules = [r["rule"] for r in (after.refusal or {})["reasons"]]
    expected = {"optout": "optout.channel", "cease": "flag.cease", "revoked": "guardrail.consent"}
    assert rules == [expected[fact]]


async def test_a_worker_whose_lease_was_taken_dials_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt = await _one(world)

    async def reclaim() -> None:  # the worker stalled past its lease; the reconciler ran
        report = await reconcile(world.maker, world.telephony, world.clock() + timedelta(hours=1))
        assert report.moved == {"not_sent": 1}

    dispatcher = _interleaved(world, reclaim, monkeypatch)
    await world.queue.drain(INSIDE + timedelta(minutes=1), dispatcher)
    assert world.dials() == 0, "the stalled worker's fence failed: no call"
    first = (await world.attempts(id=attempt.id))[0]
    assert first.state == "not_sent" and first.provider_sid is None


def _now() -> datetime:
    return INSIDE
