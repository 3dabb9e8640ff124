"""The compliance audit: a clean morning audits clean; each kind of violation written
straight into the database is named with its rule (the audit can fail)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from dialer.cli.main import app
from dialer.core.errors import NotFoundError
from dialer.db.models import AttemptRow, ContactPointRow, TaskRow, WebhookEventRow
from dialer.db.repositories import agents as agent_repo
from dialer.dispatch.reconciler import REPLAN_NOTE
from dialer.schemas.cases import CasePatch
from dialer.services import tasks
from dialer.services.audit import AuditReport, audit
from dialer.services.cases import update_case
from dialer.services.optouts import opt_out
from strategy.model import Channel
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, make_world, mid_tier_strategy, open_world

# The mid tier's case cap is 2 calls a day, no spacing: a third call the same day is over it.
CAP = 2


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(
        database, strategy=mid_tier_strategy(case_cap=CAP, spacing_minutes=None)
    ) as w:
        yield w


async def _morning(
    world: World, cases: int = 5, channels: tuple[str, ...] = ("voice",)
) -> list[AttemptRow]:
    world.clock.advance_to(INSIDE)
    await world.add_cases(cases)
    cid = await world.campaign(channels=channels)
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(minutes=30), world.dispatcher())
    sent = await world.attempts(state="sent")
    assert sent, "the morning dialled nobody"
    return sent


async def _copy(world: World, of: AttemptRow, at: datetime, **changes: Any) -> uuid.UUID:
    """A dispatched attempt written straight into the database, as if a worker sent it."""
    new_id = uuid.uuid4()
    values = {c.key: getattr(of, c.key) for c in AttemptRow.__table__.columns if c.key != "id"}
    values.update(
        id=new_id,
        at=at,
        reserved_at=at,
        sent_at=at,
        dialing_at=at,
        not_before=at,
        planned_at=at,
        updated_at=at,
        provider_sid=f"CA{new_id.hex}",
        result="no_answer",
    )
    values.update(changes)
    async with world.maker() as session:
        session.add(AttemptRow(**values))
        await session.commit()
    return new_id


def _rules(report: AuditReport) -> dict[uuid.UUID, set[str]]:
    found: dict[uuid.UUID, set[str]] = {}
    for v in report.violations:
        print(f"  {v.rule}: {v.case_id} {v.attempt_id} {v.detail}")
        found.setdefault(v.attempt_id, set()).add(v.rule)
    return found


async def test_a_clean_morning_audits_clean(world: World) -> None:
    sent = await _morning(world, channels=("voice", "sms"))
    # a second round later the same morning: the history now counts
    world.clock.advance_to(INSIDE + timedelta(minutes=40))
    cid = await world.campaign(channels=("voice",), window="09:00-11:30")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(minutes=70), world.dispatcher())
    dispatched = [a for a in await world.attempts() if a.reserved_at is not None]
    # a task that needs an approval, approved and then done through the service
    async with world.maker() as session:
        task = TaskRow(
            id=uuid.uuid4(),
            case_id=sent[0].case_id,
            key="lawyer-letter",
            action="lawyer_letter",
            requires_approval=True,
            reason="test",
            status="open",
            created_at=world.clock(),
        )
        session.add(task)
        await session.commit()
        await tasks.decide_approval(
            session, task.id, approve=True, note=None, actor="boss", now=world.clock()
        )
        await tasks.complete(session, task.id, actor="agent", now=world.clock())
    report = await audit(world.maker)
    print(
        f"\naudit clean morning: attempts_checked={report.attempts_checked} "
        f"dispatched={len(dispatched)} violations={len(report.violations)}"
    )
    assert report.ok(), report.violations
    assert report.attempts_checked == len(dispatched) >= len(sent)
    assert report.tasks_checked == 1
    # read in batches of one case: the same answer (memory is bounded by the batch)
    paged = await audit(world.maker, batch_size=1)
    assert (paged.attempts_checked, paged.violations) == (report.attempts_checked, ())
    # the filters narrow what is replayed
    later = await audit(world.maker, since=INSIDE + timedelta(minutes=35))
    assert later.ok() and later.attempts_checked == len(dispatched) - len(sent)
    with pytest.raises(NotFoundError, match="elsewhere"):
        await audit(world.maker, portfolio="elsewhere")


async def test_each_injected_violation_is_named_with_its_rule(world: World) -> None:
    sent = await _morning(world)
    voice = [a for a in sent if a.channel == "voice"]
    one, two, three = voice[0], voice[1], voice[2]
    expected: dict[uuid.UUID, str] = {}

    # a call at 03:00 in Shanghai the next night: outside every window
    night = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    expected[await _copy(world, one, night)] = "window"

    # two more calls to the same case the same morning: the second one is over the cap
    await _copy(world, two, INSIDE + timedelta(minutes=45))
    expected[await _copy(world, two, INSIDE + timedelta(minutes=50))] = "cap"

    # a STOP recorded, then a call to that number and channel anyway
    stop_at = INSIDE + timedelta(minutes=55)
    async with world.maker() as session:
        point = await session.get(ContactPointRow, three.contact_point_id)
        assert point is not None
        await opt_out(session, [point], Channel.VOICE, source="sms", actor="test", now=stop_at)
        await session.commit()
    expected[await _copy(world, three, stop_at + timedelta(minutes=1))] = "opt_out"

    # more said on the voicemail than the decision granted
    async with world.maker() as session:
        granted = one.voicemail_disclosure
        assert granted != "full", "the preset grants the full story on a voicemail"
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == one.id).values(voicemail_disclosure="full")
        )
        # a callback from a second provider call for a sent attempt: dialled twice
        session.add(
            WebhookEventRow(
                key=f"dup-{sent[-1].id}",
                kind="voice_status",
                attempt_id=sent[-1].id,
                provider_sid="CAsecondcall",
                status="received",
                received_at=INSIDE + timedelta(minutes=31),
                fields={"CallStatus": "ringing"},
            )
        )
        # a task that needs an approval, completed without one
        task_id = uuid.uuid4()
        session.add(
            TaskRow(
                id=task_id,
                case_id=one.case_id,
                key="legal-letter",
                action="legal_letter",
                requires_approval=True,
                reason="test",
                status="done",
                created_at=INSIDE,
                completed_by="agent-7",
                completed_at=INSIDE + timedelta(minutes=5),
            )
        )
        await session.commit()
    expected[one.id] = "disclosure"
    expected[sent[-1].id] = "double_dial"
    expected[task_id] = "approval"
    # a sent attempt with no decision recorded at all
    expected[
        await _copy(
            world, one, INSIDE + timedelta(minutes=20), strategy_version_id=None, profile=None
        )
    ] = "no_decision"

    report = await audit(world.maker)
    found = _rules(report)
    print(
        f"\naudit injected: attempts_checked={report.attempts_checked} "
        f"injected={len(expected)} found={len(report.violations)} by_rule={dict(report.by_rule)}"
    )
    assert not report.ok()
    for attempt_id, rule in expected.items():
        assert rule in found.get(attempt_id, set()), (rule, found.get(attempt_id), report)
    # nothing but the injected attempts is reported
    assert set(found) == set(expected), {k: v for k, v in found.items() if k not in expected}
    assert {v.case_id for v in report.violations if v.attempt_id == task_id} == {one.case_id}


async def test_a_call_over_the_cap_in_the_same_instant_is_found(world: World) -> None:
    """Two attempts reserved in one instant pass only if some order of them passes."""
    sent = await _morning(world)
    first = next(a for a in sent if a.channel == "voice")
    same = INSIDE + timedelta(minutes=45)
    a = await _copy(world, first, same)
    report = await audit(world.maker)
    assert report.ok(), report.violations  # the second call of the day: within the cap
    b = await _copy(world, first, same)
    report = await audit(world.maker)
    assert {v.rule for v in report.violations} == {"cap"}
    assert len(report.violations) == 1 and report.violations[0].attempt_id in {a, b}


async def test_an_opt_out_recorded_after_the_call_is_not_held_against_it(world: World) -> None:
    """The case is rebuilt as it was: a STOP recorded later does not make the earlier
    call a violation, even though the contact point is opted out now."""
    sent = await _morning(world)
    async with world.maker() as session:
        for a in sent:
            point = await session.get(ContactPointRow, a.contact_point_id)
            assert point is not None
            await opt_out(
                session, [point], Channel(a.channel), source="sms", actor="t", now=world.clock()
            )
        await session.commit()
        opted = await session.scalars(select(ContactPointRow.opted_out))
        assert any(o for o in opted)
    report = await audit(world.maker)
    assert report.ok(), report.violations


async def test_the_case_is_rebuilt_as_it_was_at_each_reservation(world: World) -> None:
    """A dispute recorded and the case closed after the morning's calls does not make them
    violations; a call after the dispute was recorded is one (the engine refused it)."""
    sent = await _morning(world)
    first = sent[0]
    disputed_at = INSIDE + timedelta(minutes=40)
    async with world.maker() as session:
        await update_case(
            session,
            first.case_id,
            CasePatch.model_validate({"flags": ["dispute"], "status": "closed"}),
            actor="agent",
            now=disputed_at,
        )
    report = await audit(world.maker)
    assert report.ok(), report.violations
    late = await _copy(world, first, disputed_at + timedelta(minutes=5))
    report = await audit(world.maker)
    assert [(v.attempt_id, v.rule) for v in report.violations] == [(late, "refused")]
    assert "flag.dispute" in report.violations[0].detail


def test_audit_command_exits_non_zero_on_violations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
    monkeypatch.setenv("DIALER_DATABASE_URL", db.url)
    runner = CliRunner()

    async def morning(inject: bool) -> None:
        w = await make_world(db, strategy=mid_tier_strategy(case_cap=CAP, spacing_minutes=None))
        try:
            sent = await _morning(w, cases=2)
            if inject:
                await _copy(w, sent[0], datetime(2026, 12, 1, 19, 0, tzinfo=UTC))
        finally:
            await w.close()

    asyncio.run(morning(inject=False))
    clean = runner.invoke(app, ["audit"])
    assert clean.exit_code == 0, clean.output
    assert "0 violations" in clean.stdout
    bad_since = runner.invoke(app, ["audit", "--since", "yesterday"])
    assert bad_since.exit_code == 2 and "ISO 8601" in bad_since.output


def test_audit_command_reports_violations_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
    monkeypatch.setenv("DIALER_DATABASE_URL", db.url)

    async def morning() -> None:
        w = await make_world(db, strategy=mid_tier_strategy(case_cap=CAP, spacing_minutes=None))
        try:
            sent = await _morning(w, cases=2)
            await _copy(w, sent[0], datetime(2026, 12, 1, 19, 0, tzinfo=UTC))
        finally:
            await w.close()

    asyncio.run(morning())
    runner = CliRunner()
    out = runner.invoke(app, ["audit", "--json", "--portfolio", "cn-loans"])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["by_rule"] == {"window": 1}
    assert [v["rule"] for v in doc["violations"]] == ["window"]
    text = runner.invoke(app, ["audit", "--since", "2026-12-01T18:00:00+00:00"])
    assert text.exit_code == 1 and "window: 1" in text.stdout


async def _callback(world: World, attempt_id: uuid.UUID, sid: str, at: datetime, kind: str) -> None:
    async with world.maker() as session:
        session.add(
            WebhookEventRow(
                key=f"{kind}-{sid}-{at.isoformat()}",
                kind=kind,
                attempt_id=attempt_id,
                provider_sid=sid,
                status="received",
                received_at=at,
                fields={},
            )
        )
        await session.commit()


async def test_an_opt_out_pressed_during_the_call_is_judged_by_the_dial(world: World) -> None:
    """Keypad 9 pressed during the very call: the opt-out is recorded while the call is in
    progress, before the worker has written `sent_at` (the simulator's callbacks arrive
    before the create returns). The call was dialled before the opt-out: no violation.
    A STOP recorded while an attempt waited for its pacing slot, before its dial, still
    is one."""
    sent = await _morning(world)
    one, two = sent[0], sent[1]
    reserved = INSIDE + timedelta(minutes=45)
    # the call: reserved, dialled, ringing at +0.5 s, keypad 9 at +3 s, sent_at at +4 s
    during = await _copy(world, one, reserved, sent_at=reserved + timedelta(seconds=4))
    sid = f"CA{during.hex}"
    await _callback(world, during, sid, reserved + timedelta(seconds=0.5), "voice_status")
    await _callback(world, during, sid, reserved + timedelta(seconds=3), "gather")
    async with world.maker() as session:
        point = await session.get(ContactPointRow, one.contact_point_id)
        assert point is not None
        await opt_out(
            session,
            [point],
            Channel.VOICE,
            source="keypad 9",
            actor="twilio:keypad",
            now=reserved + timedelta(seconds=3),
        )
        await session.commit()
    report = await audit(world.maker)
    assert report.ok(), report.violations

    # reserved, a STOP while it waits for its slot, then dialled: its first callback and
    # its sent_at both come after the STOP
    late = await _copy(
        world,
        two,
        reserved,
        dialing_at=reserved + timedelta(seconds=6),
        sent_at=reserved + timedelta(seconds=8),
    )
    await _callback(world, late, f"CA{late.hex}", reserved + timedelta(seconds=7), "voice_status")
    async with world.maker() as session:
        point = await session.get(ContactPointRow, two.contact_point_id)
        assert point is not None
        await opt_out(
            session,
            [point],
            Channel.VOICE,
            source="sms",
            actor="twilio:inbound",
            now=reserved + timedelta(seconds=5),
        )
        await session.commit()
    report = await audit(world.maker)
    assert [(v.attempt_id, v.rule) for v in report.violations] == [(late, "opt_out")]


async def test_an_attempt_with_a_provider_id_is_replayed_whatever_its_state(
    world: World,
) -> None:
    """A stalled worker dials after the reconciler took its attempt as `not_sent` and
    planned a fresh one, which another worker dialled: one planned call, two provider
    calls. Both are reported as a double dial, and the given-away call counts in the
    history (the fresh one is over the cap). The provider's id is known from the call's
    callbacks (the row may not carry it), or from the row of an attempt moved to
    `unknown` for the reconciler to look up. A `not_sent` attempt the provider holds with
    no second call is a false record."""
    sent = await _morning(world)
    one, two, three = sent[0], sent[1], sent[2]
    # the morning's call was the first of the day, the given-away one the second
    given_away = await _copy(
        world,
        one,
        INSIDE + timedelta(minutes=45),
        state="not_sent",
        result="pending",
        provider_sid=None,
        sent_at=None,
    )
    at = INSIDE + timedelta(minutes=46)
    await _callback(world, given_away, "CAstalled", at, "voice_status")
    fresh = await _copy(
        world,
        one,
        INSIDE + timedelta(minutes=50),
        notes=f"{REPLAN_NOTE}{given_away} was never placed",
    )
    # the same, its row moved to unknown with the provider's id on it
    unknown = await _copy(
        world, three, INSIDE + timedelta(minutes=45), state="unknown", result="pending"
    )
    retried = await _copy(
        world,
        three,
        INSIDE + timedelta(minutes=50),
        notes=f"retry of {unknown} after a transient provider error",
    )
    # a not_sent attempt the provider holds, never planned again
    alone = await _copy(
        world,
        two,
        INSIDE + timedelta(minutes=45),
        state="not_sent",
        result="pending",
        provider_sid=None,
        sent_at=None,
    )
    await _callback(world, alone, "CAalone", at, "voice_status")
    report = await audit(world.maker)
    found = _rules(report)
    assert found == {
        given_away: {"double_dial"},
        fresh: {"double_dial", "cap"},  # the third call of the day, the cap being two
        unknown: {"double_dial"},
        retried: {"double_dial", "cap"},
        alone: {"record"},
    }, found
    # every attempt that was reserved is replayed, the not_sent ones the provider holds too
    dispatched = [a for a in await world.attempts() if a.reserved_at is not None]
    assert report.attempts_checked == len(dispatched)


def test_audit_command_rejects_an_unknown_portfolio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
    monkeypatch.setenv("DIALER_DATABASE_URL", db.url)

    async def morning() -> None:
        w = await make_world(db, strategy=mid_tier_strategy(case_cap=CAP, spacing_minutes=None))
        try:
            await _morning(w, cases=2)
        finally:
            await w.close()

    asyncio.run(morning())
    out = CliRunner().invoke(app, ["audit", "--portfolio", "no-such"])
    assert out.exit_code == 2, out.output
    assert out.output.strip() == "error: no portfolio 'no-such'", out.output
    known = CliRunner().invoke(app, ["audit", "--portfolio", "cn-loans"])
    assert known.exit_code == 0, known.output


async def test_agent_calls_are_replayed_like_any_other(world: World) -> None:
    """Progressive calls put through to collectors, and one abandoned, are replayed by
    the audit like the automated flow's; an abandoned call over the cap is found."""
    world.clock.advance_to(INSIDE)
    await world.add_cases(3)
    async with world.maker() as session:
        for i in range(3):
            row = await agent_repo.ensure(session, f"collector-{i}", "available", INSIDE)
            row.endpoint = f"client:collector-{i}"
        await session.commit()
    cid = await world.campaign(mode="progressive")
    await world.plan(cid)
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    sent = await world.attempts(state="sent")
    assert len(sent) == 3
    async with world.maker() as session:  # one call abandoned: a person, no collector
        await session.execute(
            update(AttemptRow)
            .where(AttemptRow.id == sent[0].id)
            .values(state="completed", result="right_party", abandoned_at=world.clock())
        )
        await session.commit()
    report = await audit(world.maker)
    assert report.ok(), report.violations
    assert report.attempts_checked == 3
    await _copy(world, sent[1], INSIDE + timedelta(minutes=45))  # the case's 2nd call
    third = INSIDE + timedelta(minutes=50)  # its 3rd, abandoned, the cap being 2
    over = await _copy(world, sent[1], third, abandoned_at=third + timedelta(seconds=3))
    report = await audit(world.maker)
    assert _rules(report) == {over: {"cap"}}
