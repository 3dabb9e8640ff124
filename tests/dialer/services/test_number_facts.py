"""A phone number's facts (candidate zones, line type) are stored when its contact point is
written, so the planner does not derive them again for every number every morning; rows
written before they were stored still work (the engine derives them at decision time)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import ContactPointRow
from dialer.facts.batch import load_facts
from dialer.facts.convert import number_facts
from dialer.facts.reader import load_case
from dialer.schemas.cases import ContactPointIn
from dialer.services import cases, imports
from strategy import get_profile
from strategy.calendar import phone_facts
from strategy.engine import decide
from strategy.model import ContactKind
from strategy.presets import load_preset
from tests.databases import Database
from tests.dialer.factories import add_cn_loans, cn_case
from tests.dialer.support import NOW, settings_for


@pytest.fixture
async def session(migrated: Database) -> AsyncIterator[AsyncSession]:
    engine = build_engine(settings_for(migrated))
    try:
        async with build_sessionmaker(engine)() as s:
            await add_cn_loans(s, actor="test", now=NOW)
            yield s
    finally:
        await engine.dispose()


def _case(ref: str = "CN-1") -> dict[str, object]:
    doc = cn_case(ref)
    doc["parties"][0]["contact_points"].append({"kind": "email", "value": "wang@example.com"})
    doc["parties"][1]["contact_points"].append({"kind": "phone", "value": "021 5550 1000"})
    return doc


async def _import(session: AsyncSession, *docs: dict[str, object]) -> imports.ImportReport:
    lines = [(i + 1, json.dumps(d) + "\n") for i, d in enumerate(docs)]
    return await imports.import_stream(
        session,
        lines,
        fmt=imports.ImportFormat.JSONL,
        default_portfolio="cn-loans",
        settings=Settings(),
        actor="test",
        now=NOW,
    )


async def _points(session: AsyncSession) -> dict[str, ContactPointRow]:
    rows = (await session.scalars(select(ContactPointRow))).all()
    return {r.value: r for r in rows}


async def test_import_stores_each_phone_numbers_zones_and_line_type(
    session: AsyncSession,
) -> None:
    report = await _import(session, _case())
    assert not report.errors
    points = await _points(session)
    mobile = points["+8613800138000"]
    assert (mobile.number_zones, mobile.number_mobile) == (["Asia/Shanghai"], True)
    landline = points["+862155501000"]
    assert (landline.number_zones, landline.number_mobile) == (["Asia/Shanghai"], False)
    email = points["wang@example.com"]
    assert (email.number_zones, email.number_mobile) == (None, None)
    for value, row in points.items():  # the same facts the engine would derive itself
        if row.kind == ContactKind.PHONE.value:
            zones, line = phone_facts(value)
            assert (tuple(row.number_zones or ()), row.number_mobile) == (zones, line)


async def test_a_contact_point_added_by_the_api_stores_its_numbers_facts(
    session: AsyncSession,
) -> None:
    await _import(session, _case())
    case = (await _points(session))["+8613800138000"]
    await cases.add_contact_point(
        session,
        case.case_id,
        case.party_id,
        ContactPointIn(kind=ContactKind.PHONE, value="010 6552 9988"),
        actor="test",
        now=NOW,
    )
    added = (await _points(session))["+861065529988"]
    assert (added.number_zones, added.number_mobile) == (["Asia/Shanghai"], False)


async def test_a_reimport_fills_the_facts_of_rows_written_before_they_were_stored(
    session: AsyncSession,
) -> None:
    await _import(session, _case())
    await session.execute(update(ContactPointRow).values(number_zones=None, number_mobile=None))
    await session.commit()
    await _import(session, _case())
    session.expunge_all()
    points = await _points(session)
    assert points["+8613800138000"].number_zones == ["Asia/Shanghai"]
    assert points["+8613800138000"].number_mobile is True
    assert points["+862155501000"].number_mobile is False


async def test_facts_carry_the_stored_zones_and_the_callers_mobile_wins(
    session: AsyncSession,
) -> None:
    await _import(session, _case())
    landline = (await _points(session))["+862155501000"]
    case_id = landline.case_id
    facts = (await load_facts(session, [case_id], NOW))[case_id]
    by_value = {cp.value: cp for p in facts.case.parties for cp in p.contact_points}
    assert by_value["+862155501000"].zones == ("Asia/Shanghai",)
    assert by_value["+862155501000"].mobile is False
    assert by_value["wang@example.com"].zones is None
    # The caller said it is a mobile (a ported number): that wins over the number's facts.
    await session.execute(
        update(ContactPointRow).where(ContactPointRow.id == landline.id).values(mobile=True)
    )
    await session.commit()
    facts = (await load_facts(session, [case_id], NOW))[case_id]
    point = next(
        cp for p in facts.case.parties for cp in p.contact_points if cp.value == landline.value
    )
    assert (point.zones, point.mobile) == (("Asia/Shanghai",), True)


async def test_rows_without_stored_facts_leave_the_engine_to_derive_them(
    session: AsyncSession,
) -> None:
    await _import(session, _case())
    case_id = next(iter((await _points(session)).values())).case_id
    stored = (await load_facts(session, [case_id], NOW))[case_id]
    await session.execute(update(ContactPointRow).values(number_zones=None, number_mobile=None))
    await session.commit()
    session.expunge_all()
    derived = (await load_facts(session, [case_id], NOW))[case_id]
    points = [cp for p in derived.case.parties for cp in p.contact_points]
    assert all(cp.zones is None and cp.mobile is None for cp in points)
    # The engine decides alike on stored and on derived facts.
    strategy = load_preset("consumer-loan")
    profile = get_profile(strategy.profile)
    for hour in (0, 2, 6, 12):
        at = NOW.replace(hour=hour)
        a = decide(stored.case, stored.history, at, strategy, profile)
        b = decide(derived.case, derived.history, at, strategy, profile)
        assert a.allowed == b.allowed
        assert [(r.candidate, r.rules) for r in a.refused] == [
            (r.candidate, r.rules) for r in b.refused
        ]
        assert a.extra["zones"] == b.extra["zones"]


async def test_a_stored_case_read_back_carries_its_numbers_facts(session: AsyncSession) -> None:
    await _import(session, _case())
    case_id = next(iter((await _points(session)).values())).case_id
    stored = await load_case(session, case_id, NOW)
    assert stored is not None
    points = {cp.value: cp for p in stored.facts.case.parties for cp in p.contact_points}
    landline = points["+862155501000"]
    assert (landline.zones, landline.mobile) == (("Asia/Shanghai",), False)
    assert points["wang@example.com"].zones is None


def test_an_email_address_has_no_number_facts() -> None:
    assert number_facts("email", "a@example.com") == (None, None)
