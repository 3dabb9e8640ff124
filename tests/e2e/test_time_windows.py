"""Time: no call outside its party's local window, across zones, daylight-saving changes and
China's adjusted working days.

Cases whose debtors live in many zones (one US number with no zone at all: its zone comes
from the number) go through the real planner, outbox, in-process queue and worker on the
embedded default (SQLite), under a manual clock, on the days around the US changes of
2026-11-01 and 2026-03-08, and on Golden Week 2026 in China. Every send instant is checked
against windows computed here with `zoneinfo` from the strategy document the test wrote,
not by the engine; then the compliance audit replays the lot and must find nothing.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import select

from adapters.fakes import FakeMailer, FakeTelephony
from adapters.inprocess import InProcessJobQueue, ManualClock
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.db.models import AttemptRow, CampaignRow
from dialer.dispatch import outbox, planner
from dialer.schemas.campaigns import CampaignIn
from dialer.schemas.cases import CaseIn
from dialer.schemas.strategies import StrategyIn
from dialer.services import campaigns, portfolios, strategies
from dialer.services.audit import audit
from dialer.services.cases import create_case
from dialer.services.decisions import decide_stored
from strategy.presets import load_preset
from tests.dialer.dispatch_world import World

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_SPANS = ["09:00-12:00", "13:00-20:00"]
CAMPAIGN_WINDOW = "08:00-21:00"
US_PROFILE_HOURS = ("08:00", "21:00")  # 12 CFR 1006.6(b)(1)(i), written down here again
CN_PROFILE_HOURS = ("08:00", "22:00")  # GB/T 45251-2025

# The debtor's zone as the test knows it (None: the case gives no zone; the number's area
# code 808 is Honolulu's, which the test knows and the engine has to work out).
US_DEBTORS: list[tuple[str | None, str, str]] = [
    ("America/New_York", "+12125550101", "America/New_York"),
    ("America/Chicago", "+13125550102", "America/Chicago"),
    ("America/Denver", "+13035550103", "America/Denver"),
    ("America/Los_Angeles", "+12135550104", "America/Los_Angeles"),
    ("America/Phoenix", "+16025550105", "America/Phoenix"),
    ("Pacific/Honolulu", "+18085550106", "Pacific/Honolulu"),
    ("Asia/Shanghai", "+12125550107", "Asia/Shanghai"),  # a debtor living abroad
    (None, "+18089561234", "Pacific/Honolulu"),
]


def _span(text: str) -> tuple[time, time]:
    a, b = text.split("-")
    return time.fromisoformat(a), time.fromisoformat(b)


def us_document() -> dict[str, Any]:
    """The US preset, every tier open on weekdays and Sundays too (so the very days of
    the changes are dialled), Saturdays 10:00-14:00."""
    doc = copy.deepcopy(load_preset("us-consumer-loan").model_dump(mode="json"))
    doc["name"] = "us-time-test"
    for tier in doc["tiers"]:
        tier["windows"] = {d: list(WEEKDAY_SPANS) for d in DAYS}
        tier["windows"]["sat"] = ["10:00-14:00"]
    return doc


def cn_document() -> dict[str, Any]:
    """The Chinese preset, working days only: no weekend windows at all."""
    doc = copy.deepcopy(load_preset("consumer-loan").model_dump(mode="json"))
    doc["name"] = "cn-working-days"
    for tier in doc["tiers"]:
        tier["windows"] = {d: list(WEEKDAY_SPANS) for d in DAYS[:5]}
        tier["windows"]["sat"] = []
        tier["windows"]["sun"] = []
        tier["skip_holidays"] = True
    return doc


def allowed_spans(
    local_day: date, doc: dict[str, Any], profile_hours: tuple[str, str], country: str
) -> list[tuple[time, time]]:
    """The windows of `local_day`, worked out independently: the tier's spans for that
    weekday (Monday's on a weekend day made a working day; none on a public holiday),
    cut to the profile's hours and the campaign's window."""
    cal = holidays.country_holidays(country, years=local_day.year)
    weekend = local_day.weekday() >= 5
    if local_day in cal and not cal.is_working_day(local_day):
        return []
    key = "mon" if weekend and cal.is_working_day(local_day) else DAYS[local_day.weekday()]
    spans = [_span(s) for s in doc["tiers"][0]["windows"].get(key, [])]
    lo = max(_span(f"{profile_hours[0]}-{profile_hours[1]}")[0], _span(CAMPAIGN_WINDOW)[0])
    hi = min(_span(f"{profile_hours[0]}-{profile_hours[1]}")[1], _span(CAMPAIGN_WINDOW)[1])
    return [(max(a, lo), min(b, hi)) for a, b in spans if max(a, lo) < min(b, hi)]


@dataclass
class Scene:
    world: World
    portfolio: str
    doc: dict[str, Any]
    zones: dict[uuid.UUID, str]  # case -> the debtor's zone, as the test knows it


async def _scene(
    tmp_path: Path,
    *,
    portfolio: str,
    profile: str,
    country: str,
    home: str,
    doc: dict[str, Any],
    start: datetime,
) -> Scene:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
    engine = build_engine(settings)
    await upgrade_to_head(engine)
    maker = build_sessionmaker(engine)
    clock = ManualClock(start)
    async with maker() as session:
        await portfolios.create_portfolio(
            session,
            name=portfolio,
            profile=profile,
            country=country,
            timezone=home,
            actor="test",
            now=start,
        )
        row = await strategies.create_draft(
            session, StrategyIn(portfolio=portfolio, document=doc), actor="test", now=start
        )
        await strategies.activate(session, row.id, actor="test", now=start)
    world = World(
        engine,
        maker,
        clock,
        InProcessJobQueue(clock=clock),
        FakeTelephony(now=start),
        FakeMailer(),
        postgres=False,
    )
    return Scene(world, portfolio, doc, {})


async def _add_case(
    scene: Scene, ref: str, due: date, zone: str | None, number: str, expected_zone: str
) -> None:
    party: dict[str, Any] = {
        "ref": "debtor",
        "role": "debtor",
        "name": f"Debtor {ref}",
        "contact_points": [
            {"kind": "phone", "value": number, "consent": ["voice", "sms"], "validity": "verified"}
        ],
    }
    if zone is not None:
        party["timezone"] = zone
    doc = {
        "external_ref": ref,
        "portfolio": scene.portfolio,
        "amount": "900.00",
        "currency": "USD" if scene.portfolio.startswith("us") else "CNY",
        "due_date": due.isoformat(),
        "parties": [party],
    }
    async with scene.world.maker() as session:
        row = await create_case(
            session, CaseIn.model_validate(doc), actor="test", now=scene.world.clock()
        )
    scene.zones[row.id] = expected_zone


async def _run_day(scene: Scene, start: datetime, end: datetime) -> CampaignRow:
    """A campaign planned at `start` and worked until `end`, as the embedded default does."""
    w = scene.world
    w.clock.advance_to(start)
    async with w.maker() as session:
        row = await campaigns.create_campaign(
            session,
            CampaignIn.model_validate(
                {
                    "name": f"day {start.date()}",
                    "portfolio": scene.portfolio,
                    "channels": ["voice", "sms"],
                    "window": CAMPAIGN_WINDOW,
                    "pacing_cps": 5.0,
                    # the fake provider never completes a call: no in-progress ceiling
                    "max_in_progress": None,
                }
            ),
            actor="test",
            now=w.clock(),
        )
        await campaigns.transition(session, row.id, "running", actor="test", now=w.clock())
    await planner.plan_campaign(w.maker, row.id, w.clock, batch=5)
    await outbox.relay_all(w.maker, w.queue, w.clock())
    await w.queue.drain(end, w.dispatcher())
    async with w.maker() as session:
        found = await session.get(CampaignRow, row.id, populate_existing=True)
        assert found is not None
        return found


async def _sent(scene: Scene) -> list[AttemptRow]:
    async with scene.world.maker() as session:
        rows = await session.scalars(
            select(AttemptRow)
            .where(AttemptRow.sent_at.is_not(None))
            .order_by(AttemptRow.sent_at, AttemptRow.id)
        )
        return list(rows)


def _outside(
    scene: Scene, attempts: Sequence[AttemptRow], profile_hours: tuple[str, str], country: str
) -> list[str]:
    bad = []
    for a in attempts:
        assert a.sent_at is not None and a.reserved_at is not None
        zone = ZoneInfo(scene.zones[a.case_id])
        for label, instant in (("sent", a.sent_at), ("reserved", a.reserved_at)):
            local = instant.astimezone(zone)
            spans = allowed_spans(local.date(), scene.doc, profile_hours, country)
            if not any(s <= local.time() < e for s, e in spans):
                bad.append(f"{a.channel} {label} {local.isoformat()} ({zone.key}); allowed {spans}")
    return bad


@pytest.fixture
async def scenes() -> AsyncIterator[list[Scene]]:
    made: list[Scene] = []
    yield made
    for s in made:
        await s.world.close()


@pytest.mark.parametrize(
    ("label", "first_day", "due"),
    [
        ("fall back 2026-11-01", date(2026, 10, 31), date(2026, 10, 20)),
        ("spring forward 2026-03-08", date(2026, 3, 7), date(2026, 2, 24)),
    ],
)
async def test_no_call_outside_the_local_window_across_a_us_daylight_saving_change(
    tmp_path: Path, scenes: list[Scene], label: str, first_day: date, due: date
) -> None:
    ny = ZoneInfo("America/New_York")
    # A campaign planned every six hours (New York time: 00:00, 06:00, 12:00, 18:00), each
    # worked until the next is planned: each plans what each party's local "today" allows.
    days = [first_day + timedelta(days=i) for i in range(3)]  # Sat, the change (Sun), Mon
    starts = [
        datetime.combine(d, time(h), ny).astimezone(UTC) for d in days for h in (0, 6, 12, 18)
    ]
    offsets = {d: datetime.combine(d, time(12), ny).utcoffset() for d in days}
    assert len(set(offsets.values())) == 2, "the days must straddle a change"
    scene = await _scene(
        tmp_path,
        portfolio="us-loans",
        profile="us-consumer",
        country="US",
        home="America/New_York",
        doc=us_document(),
        start=starts[0] - timedelta(hours=1),
    )
    scenes.append(scene)
    for i, (zone, number, expected) in enumerate(US_DEBTORS):
        await _add_case(scene, f"US-{i}", due, zone, number, expected)
    ends = [*starts[1:], starts[-1] + timedelta(hours=6)]
    for start, end in zip(starts, ends, strict=True):
        await _run_day(scene, start, end - timedelta(seconds=1))
    sent = await _sent(scene)
    per_zone = Counter(scene.zones[a.case_id] for a in sent)
    report = await audit(scene.world.maker)
    print(
        f"\ntime windows ({label}): {len(sent)} sent over {len(days)} days"
        f" ({len(starts)} campaigns),"
        f" per zone {dict(sorted(per_zone.items()))};"
        f" audit checked {report.attempts_checked}, violations {len(report.violations)}"
    )
    assert not _outside(scene, sent, US_PROFILE_HOURS, "US"), _outside(
        scene, sent, US_PROFILE_HOURS, "US"
    )
    # every zone was dialled (the derived one included), so the check above saw them all
    assert set(per_zone) == {z for _, _, z in US_DEBTORS}
    derived = [a for a in sent if a.case_id == list(scene.zones)[-1]]
    assert derived, "the number without a zone was never dialled"
    # on the very day of the change, calls went out in every US zone that observes DST
    change_day = days[1]
    on_change = {
        scene.zones[a.case_id]
        for a in sent
        if a.sent_at is not None
        and a.sent_at.astimezone(ZoneInfo(scene.zones[a.case_id])).date() == change_day
    }
    assert {"America/New_York", "America/Chicago", "America/Los_Angeles"} <= on_change
    assert report.ok(), report.violations
    assert report.attempts_checked == len(sent)


async def test_an_adjusted_working_day_is_dialled_and_a_public_holiday_is_not(
    tmp_path: Path, scenes: list[Scene]
) -> None:
    cn = holidays.country_holidays("CN", years=2026)
    holiday = date(2026, 10, 7)  # Golden Week: a Wednesday off (made up on Saturday 10-10)
    adjusted = date(2026, 10, 10)  # a Saturday made a working day (调休)
    plain_saturday = date(2026, 10, 17)
    assert holiday in cn and not cn.is_working_day(holiday) and holiday.weekday() == 2
    assert adjusted.weekday() == 5 and cn.is_working_day(adjusted)
    assert plain_saturday.weekday() == 5 and not cn.is_working_day(plain_saturday)
    sh = ZoneInfo("Asia/Shanghai")
    scene = await _scene(
        tmp_path,
        portfolio="cn-loans",
        profile="cn-consumer",
        country="CN",
        home="Asia/Shanghai",
        doc=cn_document(),
        start=datetime.combine(holiday, time(0), sh).astimezone(UTC) - timedelta(hours=1),
    )
    scenes.append(scene)
    due = date(2026, 9, 28)  # the mid tier (6..17 days past due) on every day below
    numbers = ["+8613800138001", "+8613900139002", "+8613700137003"]
    for i, number in enumerate(numbers):
        await _add_case(scene, f"CN-{i}", due, "Asia/Shanghai", number, "Asia/Shanghai")
    await _add_case(scene, "CN-derived", due, None, "+8613600136004", "Asia/Shanghai")
    dials: dict[date, int] = {}
    for day in (holiday, adjusted, plain_saturday):
        start = datetime.combine(day, time(0), sh).astimezone(UTC)
        before = len(await _sent(scene))
        await _run_day(scene, start, start + timedelta(days=1) - timedelta(seconds=1))
        dials[day] = len(await _sent(scene)) - before
    sent = await _sent(scene)
    report = await audit(scene.world.maker)
    print(
        f"\nchinese calendar: dials per day { ({str(k): v for k, v in dials.items()}) };"
        f" audit checked {report.attempts_checked}, violations {len(report.violations)}"
    )
    assert dials[holiday] == 0, "a public holiday was dialled"
    async with scene.world.maker() as session:  # and it was the holiday that said no
        at = datetime.combine(holiday, time(10), sh)
        decision = await decide_stored(session, next(iter(scene.zones)), at)
    assert not decision.allowed
    assert "window.holiday" in {r.rule for f in decision.refused for r in f.reasons}
    assert dials[adjusted] >= len(numbers) + 1, "the adjusted working day was not dialled"
    assert dials[plain_saturday] == 0, "a plain Saturday was dialled on a working-days strategy"
    assert not _outside(scene, sent, CN_PROFILE_HOURS, "CN"), _outside(
        scene, sent, CN_PROFILE_HOURS, "CN"
    )
    # the adjusted Saturday was worked on Monday's hours, not on no hours at all
    local = [a.sent_at.astimezone(sh) for a in sent if a.sent_at is not None]
    assert all(t.date() == adjusted for t in local)
    assert report.ok(), report.violations
    assert report.attempts_checked == len(sent)


def test_the_independent_window_check_flags_a_call_an_hour_off() -> None:
    """The check above can fail: a call at 08:30 New York time on the Monday after the
    change (13:30 UTC, which was 09:30 the Monday before) is outside 09:00-12:00."""
    doc = us_document()
    scene = Scene(world=None, portfolio="us-loans", doc=doc, zones={})  # type: ignore[arg-type]
    case_id = uuid.uuid4()
    scene.zones[case_id] = "America/New_York"

    def at(instant: datetime) -> AttemptRow:
        return AttemptRow(case_id=case_id, channel="voice", sent_at=instant, reserved_at=instant)

    before = datetime(2026, 10, 26, 13, 30, tzinfo=UTC)  # Monday, EDT: 09:30 local
    after = datetime(2026, 11, 2, 13, 30, tzinfo=UTC)  # Monday, EST: 08:30 local
    assert _outside(scene, [at(before)], US_PROFILE_HOURS, "US") == []
    assert len(_outside(scene, [at(after)], US_PROFILE_HOURS, "US")) == 2  # sent, reserved
    late = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)  # 20:00 EST: the window has closed
    assert _outside(scene, [at(late)], US_PROFILE_HOURS, "US")
