"""What the planner writes and reads in bulk: attempt ids made in a batch are random
version-4 UUIDs; an outbox document written as text is the job's document; the facts
read on the driver's own connection (PostgreSQL, inside a transaction) equal those read
through SQLAlchemy; the planned attempts' rows hold what the engine chose."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from adapters.inprocess import InProcessJobQueue
from adapters.ports import Job
from dialer.db.models import AttemptRow, CaseRow, OutboxRow, PaymentRow, Portfolio
from dialer.dispatch import choices, outbox, planner
from dialer.domain.windows import LocalWindow
from dialer.facts import sql as facts_sql
from dialer.facts.batch import load_facts
from dialer.services import strategies
from strategy.model import Channel
from tests.databases import Database
from tests.dialer.dispatch_world import EARLY, INSIDE, World, open_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database) as w:
        yield w


def test_new_ids_are_distinct_random_version_4_uuids_as_text() -> None:
    ids = planner.new_ids(2000)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert planner.new_ids(0) == []
    # The random bits vary: no nibble outside the fixed ones is constant over the batch.
    fixed = {14, 19}  # the version digit and the variant digit
    for pos in set(range(36)) - fixed - {8, 13, 18, 23}:
        assert len({t[pos] for t in ids}) > 1, pos


@pytest.mark.parametrize(
    "job",
    [
        Job("a-1", "c-1", "k-1", datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
        Job("a-2", "c-2", None, datetime(2026, 12, 1, 1, 0, 0, 123456, tzinfo=UTC)),
        Job('a"\\3', "c-\u00e9\n", "k", datetime(2026, 12, 1, 9, tzinfo=UTC), {"n": [1, "x"]}),
        Job(
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            datetime(2026, 12, 1, 9, tzinfo=UTC) + timedelta(hours=8),
        ),
    ],
)
def test_job_text_is_the_jobs_document(job: Job) -> None:
    text = outbox.job_text(job)
    assert json.loads(text) == job.to_document()
    assert Job.from_json(text) == job


async def test_facts_read_on_the_drivers_connection_equal_sqlalchemys(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches: list[str] = []
    if world.postgres:  # count what goes by the driver's own connection
        import asyncpg

        real_fetch = asyncpg.Connection.fetch

        async def counting_fetch(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            fetches.append(query)
            return await real_fetch(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, "fetch", counting_fetch)
    world.clock.advance_to(INSIDE)
    ids = await world.add_cases(4)
    cid = await world.campaign()
    await world.plan(cid)
    await world.queue.drain(world.clock() + timedelta(minutes=5), world.dispatcher())
    assert world.dials() == 4  # the cases now have history
    async with world.maker() as session:
        session.add(PaymentRow(case_id=ids[0], at=world.clock(), amount=Decimal("12.50")))
        await session.commit()
    later = world.clock() + timedelta(hours=1)
    sent = (await world.attempts(state="sent"))[0]
    for exclude in (None, sent.id):
        fetches.clear()
        async with world.maker() as session:  # nothing run yet: SQLAlchemy's path
            plain = await load_facts(session, ids, later, exclude_attempt=exclude)
        by_sqlalchemy = len(fetches)
        async with world.maker() as session:  # in an open transaction
            await session.scalar(select(CaseRow.id).limit(1))
            driver = await load_facts(session, ids, later, exclude_attempt=exclude)
        if world.postgres:  # the second read went by the driver, statement by statement
            assert len(fetches) - by_sqlalchemy >= 4, fetches
        assert driver == plain
        assert set(driver) == set(ids)
        histories = [len(driver[i].history.attempts) for i in ids]
        assert histories == ([1, 1, 1, 1] if exclude is None else histories)
        assert sum(histories) == (4 if exclude is None else 3)
        assert driver[ids[0]].history.payments == ((world.clock(), Decimal("12.50")),)
    assert facts_sql._RAW  # the PostgreSQL statements compiled once, at import


async def test_planned_attempts_hold_what_the_engine_chose(world: World) -> None:
    world.clock.advance_to(INSIDE)
    ids = await world.add_cases(3)
    cid = await world.campaign(channels=("voice", "sms"))
    await world.plan(cid)
    rows = await world.attempts()
    assert {r.case_id for r in rows} == set(ids)
    async with world.maker() as session:
        facts = await load_facts(session, ids, INSIDE)
        docs = {
            json.loads(j)["attempt_id"] if isinstance(j, str) else j["attempt_id"]
            for j in (await session.scalars(select(OutboxRow.job))).all()
        }
    assert docs == {str(r.id) for r in rows}
    for r in rows:
        assert isinstance(r.id, uuid.UUID) and r.id.version == 4
        case = facts[r.case_id].case
        party = next(p for p in case.parties if p.id == str(r.party_id))
        assert str(r.contact_point_id) in {cp.id for cp in party.contact_points}
        assert r.state == "queued" and r.result == "pending" and r.campaign_id == cid
        assert r.planned_at == INSIDE and r.at == r.not_before
        assert r.strategy_version_id is not None and r.profile and r.allowed_by
        assert r.disclosure and r.voicemail_disclosure and r.template_key
        assert r.append_opt_out is not None and r.updated_at == INSIDE
    async with world.maker() as session:
        assert (await session.get(AttemptRow, rows[0].id)) is not None


@pytest.mark.parametrize("at", [EARLY, INSIDE])
async def test_channels_decided_on_one_history_share_the_engines_decisions(
    world: World, at: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel that plans nothing (email: these cases have phones only) leaves the
    history as it was: the next channel reuses its decisions, and plans exactly what it
    plans alone. One that plans something changes the history: the next decides anew."""
    world.clock.advance_to(at)
    ids = await world.add_cases(2)
    async with world.maker() as session:
        facts = await load_facts(session, ids, at)
        portfolio = await session.get(Portfolio, "cn-loans")
        assert portfolio is not None and portfolio.active_strategy_id is not None
        found = await planner.StrategyCache().get(
            session, portfolio.active_strategy_id, portfolio.profile
        )
    assert found is not None
    cs = found[1]
    window = LocalWindow.parse("09:00-11:30")
    calls: list[datetime] = []
    decide = choices.decide

    def counting(*args: Any) -> Any:
        calls.append(args[2])
        return decide(*args)

    monkeypatch.setattr(choices, "decide", counting)

    def choose(channels: list[Channel]) -> tuple[Any, list[datetime]]:
        calls.clear()
        out = choices.choose_actions(facts[ids[0]], cs, at, window, channels)
        return out, list(calls)

    (email, _), email_calls = choose([Channel.EMAIL])
    (voice, _), voice_calls = choose([Channel.VOICE])
    (both, rules), both_calls = choose([Channel.EMAIL, Channel.VOICE])
    assert email == [] and voice, "email plans nothing, voice plans a call"
    assert both == voice and rules == []
    assert sorted(both_calls) == sorted(set(email_calls) | set(voice_calls))
    assert len(both_calls) < len(email_calls) + len(voice_calls)
    assert len(both_calls) == len(set(both_calls)), "no instant decided twice"
    # A channel planned first: the next one is decided on the history with it.
    (after_voice, _), after_calls = choose([Channel.VOICE, Channel.EMAIL])
    assert after_voice == voice
    assert after_calls.count(at) == 2


async def test_the_relay_publishes_the_staged_jobs_as_they_were(world: World) -> None:
    """Whatever the document (a payload, no campaign, odd characters), the job published
    is the job staged; a document that is not a job (an unknown version, a version as a
    string, a payload that is not an object) is set aside with its reason, never
    published, and does not hold back the jobs behind it."""
    now = world.clock()
    jobs = [
        Job(str(uuid.uuid4()), "c-1", "k-1", now),
        Job(str(uuid.uuid4()), "c-2", None, now + timedelta(minutes=5, microseconds=7)),
        Job(str(uuid.uuid4()), 'c-"\u00e9', "k", now, {"transient_retries": 2, "x": [1]}),
    ]
    async with world.maker() as session:
        await outbox.add_jobs(session, jobs, now)
        await session.commit()
    queue = InProcessJobQueue(clock=world.clock)
    assert await outbox.relay_once(world.maker, queue, now) == 3
    assert sorted(queue.pending(), key=lambda j: j.case_id) == sorted(jobs, key=lambda j: j.case_id)
    bad = [
        {**jobs[0].to_document(), "v": 99},
        {**jobs[0].to_document(), "v": "1"},
        {**jobs[0].to_document(), "payload": [1]},
        {"v": 1, "attempt_id": "a"},
    ]
    good = Job(str(uuid.uuid4()), "c-4", "k-1", now, {"ok": None})
    async with world.maker() as session:
        for doc in bad:
            session.add(OutboxRow(job=doc, created_at=now, available_at=now, publish_attempts=0))
        await session.commit()
        await outbox.add_jobs(session, [good], now)  # staged after the bad ones
        await session.commit()
    assert await outbox.relay_all(world.maker, queue, now) == 5
    assert len(queue.pending()) == 4 and good in queue.pending()
    async with world.maker() as session:
        aside = (
            await session.scalars(select(OutboxRow).where(OutboxRow.published_at.is_(None)))
        ).all()
    assert len(aside) == 4
    assert all(r.available_at > now + timedelta(days=300) and r.last_error for r in aside)
    assert await outbox.relay_all(world.maker, queue, now + timedelta(hours=1)) == 0
    # a payload that is null or empty is no payload, as Job.from_json reads it
    for payload in (None, []):
        doc = {**jobs[0].to_document(), "payload": payload}
        async with world.maker() as session:
            session.add(OutboxRow(job=doc, created_at=now, available_at=now, publish_attempts=0))
            await session.commit()
        before = queue.pending().count(jobs[0])
        assert await outbox.relay_once(world.maker, queue, now) == 1
        assert queue.pending().count(jobs[0]) == before + 1


async def test_each_case_is_planned_under_its_pinned_strategy_or_the_active_one(
    world: World,
) -> None:
    """The batch looks each version up once: a case pinned to a version is planned under
    it, the others under the portfolio's active one; without any, a case is refused."""
    world.clock.advance_to(INSIDE)
    ids = await world.add_cases(4)
    async with world.maker() as session:
        portfolio = await session.get(Portfolio, "cn-loans")
        assert portfolio is not None
        active = portfolio.active_strategy_id
        pinned = await strategies.create_from_preset(
            session, portfolio="cn-loans", preset="consumer-loan", actor="test", now=INSIDE
        )
        pinned_id = pinned.id
        for cid in ids[:2]:
            case = await session.get(CaseRow, cid)
            assert case is not None
            case.strategy_version_id = pinned_id
        await session.commit()
    assert active is not None and pinned_id != active
    cid = await world.campaign()
    await world.plan(cid)
    by_case = {a.case_id: a.strategy_version_id for a in await world.attempts()}
    assert by_case == {ids[0]: pinned_id, ids[1]: pinned_id, ids[2]: active, ids[3]: active}
    # No active strategy: the unpinned cases are refused for it, the pinned ones planned.
    more = await world.add_cases(2)
    async with world.maker() as session:
        portfolio = await session.get(Portfolio, "cn-loans")
        assert portfolio is not None
        portfolio.active_strategy_id = None
        case = await session.get(CaseRow, more[0])
        assert case is not None
        case.strategy_version_id = pinned_id
        await session.commit()
    second = await world.campaign()
    report = await planner.plan_campaign(world.maker, second, world.clock)
    assert report.cases == 6
    assert report.refused["strategy.none_active"] == 3  # ids[2], ids[3], more[1]
    assert report.planned == 3
    planned = {a.case_id for a in await world.attempts() if a.campaign_id == second}
    assert planned == {ids[0], ids[1], more[0]}
