"""Invariant 9: every caller decides on equal facts for the same stored case.

The single-case reader (decision endpoint, dashboard case view), the batch reader
(planner, simulate, assignment refresh), the worker's locked read, and the as-of reader at
"now" (the audit's replay) must give equal `Case` / `History` values, compared whole. The
case is built so that every field of every fact is exercised (not at its default in at
least one instance), so a path, or a conversion, that dropped a field fails here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import (
    AttemptRow,
    AuditRow,
    CaseRow,
    ContactPointRow,
    PartyRow,
    PaymentRow,
)
from dialer.facts.batch import CaseFacts, load_facts, lock_cases
from dialer.facts.reader import load_case
from dialer.services import strategies
from strategy.model import Channel, ContactKind, ContactPoint, PartyRole
from tests.databases import Database
from tests.dialer.factories import add_cn_loans, cn_case
from tests.dialer.support import NOW, settings_for

CASE_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture
async def session(migrated: Database) -> AsyncIterator[AsyncSession]:
    engine = build_engine(settings_for(migrated))
    try:
        async with build_sessionmaker(engine)() as s:
            await add_cn_loans(s, actor="test", now=NOW)
            yield s
    finally:
        await engine.dispose()


def _party(case_id: uuid.UUID, n: int, **fields: Any) -> PartyRow:
    return PartyRow(id=uuid.uuid4(), case_id=case_id, key=f"p{n}", position=n, **fields)


def _point(party: PartyRow, n: int, value: str, **fields: Any) -> ContactPointRow:
    defaults: dict[str, Any] = {"kind": "phone", "validity": "verified"}
    return ContactPointRow(
        id=uuid.uuid4(),
        party_id=party.id,
        case_id=party.case_id,
        position=n,
        value=value,
        **(defaults | fields),
    )


async def _store_case(session: AsyncSession) -> None:
    version = await strategies.create_from_preset(
        session, portfolio="cn-loans", preset="consumer-loan", actor="test", now=NOW
    )
    case = CaseRow(
        id=CASE_ID,
        portfolio="cn-loans",
        external_ref="FACTS-1",
        amount=Decimal("12000.00"),
        balance=Decimal("8000.00"),
        currency="CNY",
        due_date=date(2026, 11, 1),
        stage="payment",
        stage_started_on=date(2026, 11, 2),
        status="suspended",
        flags=["attorney", "dispute"],
        dispute_resolved_at=NOW - timedelta(days=3),
        strategy_version_id=version.id,
        unreachable_since=NOW - timedelta(days=2),
        unreachable_until=NOW + timedelta(days=5),
        unreachable_source="skip-trace",
        created_at=NOW,
        updated_at=NOW,
    )
    debtor = _party(
        CASE_ID, 0, role="debtor", name="Wang Fang", timezone="Asia/Shanghai", title="Ms"
    )
    friend = _party(
        CASE_ID,
        1,
        role="third_party",
        name="Li Na",
        relation="colleague",
        knows_of_debt=True,
        refused_contact=True,
    )
    points = [
        # number facts stored at import: zones and line type
        _point(debtor, 0, "+8613800138000", number_zones=["Asia/Shanghai"], number_mobile=True),
        # opted out of SMS (a STOP), consent given for voice, on the do-not-call list
        _point(
            debtor,
            1,
            "+8613912345678",
            consent=["voice"],
            opted_out=["sms"],
            do_not_call=True,
            timezone="Asia/Urumqi",
            mobile=False,
            number_zones=["Asia/Shanghai"],
            number_mobile=True,
        ),
        # consent revoked for email (recorded as an opt-out of that channel)
        _point(debtor, 2, "wang@example.com", kind="email", opted_out=["email"]),
        # recorded wrong number
        _point(friend, 0, "+8613700137000", validity="wrong_number"),
    ]
    session.add_all([case, debtor, friend])
    await session.flush()
    session.add_all(points)
    await session.flush()
    landline = points[0]

    def attempt(state: str, hours: int, result: str = "pending", **fields: Any) -> AttemptRow:
        return AttemptRow(
            case_id=CASE_ID,
            party_id=debtor.id,
            contact_point_id=landline.id,
            channel="voice",
            state=state,
            result=result,
            at=NOW - timedelta(hours=hours),
            **fields,
        )

    session.add_all(
        [
            attempt(
                "completed",
                50,
                "promise_to_pay",
                promise_amount=Decimal("500.00"),
                promise_date=date(2026, 12, 5),
            ),
            attempt("completed", 40, "callback_requested", callback_at=NOW + timedelta(hours=3)),
            attempt("failed", 30, "no_answer"),
            attempt("sent", 2),
            attempt("ringing", 1),
            # not contacts: never reached a provider
            attempt("planned", 3),
            attempt("refused", 4),
            attempt("cancelled", 5),
            attempt("not_sent", 6),
            attempt("queued", 7),
            # after the instant read
            attempt("completed", -1, "no_answer"),
            PaymentRow(case_id=CASE_ID, at=NOW - timedelta(days=1), amount=Decimal("300.00")),
            PaymentRow(case_id=CASE_ID, at=NOW + timedelta(days=1), amount=Decimal("50.00")),
        ]
    )
    await session.commit()


async def _every_path(session: AsyncSession) -> dict[str, CaseFacts]:
    one = await load_case(session, CASE_ID, NOW)
    one_as_of = await load_case(session, CASE_ID, NOW + timedelta(days=30), as_of=NOW)
    assert one is not None and one_as_of is not None
    paths = {
        "single case (decision endpoint, dashboard)": one.facts,
        "single case as of now": one_as_of.facts,
        "batch (planner, simulate, assignment)": (await load_facts(session, [CASE_ID], NOW))[
            CASE_ID
        ],
        "batch as of now (audit)": (
            await load_facts(session, [CASE_ID], NOW + timedelta(days=30), as_of=NOW)
        )[CASE_ID],
    }
    locked = await lock_cases(session, [CASE_ID])  # the worker: lock, then read
    paths["worker"] = (await load_facts(session, [CASE_ID], NOW, case_rows=locked))[CASE_ID]
    await session.rollback()
    return paths


def _unexercised(values: Iterable[Any], skip: frozenset[str] = frozenset()) -> set[str]:
    """Fields left at their default in every one of `values`."""
    items = list(values)
    assert items
    out = set()
    for f in dataclasses.fields(items[0]):
        if f.name in skip or f.default is dataclasses.MISSING:
            continue
        if all(getattr(v, f.name) == f.default for v in items):
            out.add(f.name)
    return out


async def test_every_caller_reads_equal_facts(session: AsyncSession) -> None:
    await _store_case(session)
    paths = await _every_path(session)
    reference = paths["single case (decision endpoint, dashboard)"]
    for name, facts in paths.items():
        assert facts == reference, name

    case = reference.case
    # Every field of every fact reached the engine (a dropped field stays at its default).
    assert _unexercised([case]) == set()
    assert _unexercised(case.parties) == set()
    points = [cp for p in case.parties for cp in p.contact_points]
    assert _unexercised(points) == set()
    assert _unexercised(reference.history.attempts) == set()
    assert reference.strategy_version_id is not None
    # Parties and contact points in their stored order; history in time order.
    assert [p.name for p in case.parties] == ["Wang Fang", "Li Na"]
    assert [len(p.contact_points) for p in case.parties] == [3, 1]
    # Only contacts up to the instant: five of the eleven attempts; one payment of two.
    assert [a.result.value for a in reference.history.attempts] == [
        "promise_to_pay",
        "callback_requested",
        "no_answer",
        "pending",
        "pending",
    ]
    assert reference.history.payments == ((NOW - timedelta(days=1), Decimal("300.00")),)


def test_a_field_left_at_its_default_is_reported() -> None:
    point = ContactPoint(id="cp", kind=ContactKind.PHONE, value="+8613800138000")
    assert {"zones", "mobile", "opted_out", "consent"} <= _unexercised([point])


async def test_as_of_takes_out_what_was_recorded_later(session: AsyncSession) -> None:
    """An opt-out, a case change and a new party recorded after T are not in the facts as
    of T (the audit's replay); they are as of a later instant. Both readers agree."""
    await _store_case(session)
    before = await load_case(session, CASE_ID, NOW)
    assert before is not None
    debtor = before.facts.case.parties[0]
    landline = debtor.contact_points[0]
    later = NOW + timedelta(hours=1)
    extra = _party(CASE_ID, 2, role="guarantor", name="Zhao Lei")
    session.add(extra)
    for action, entity, entity_id, detail in (
        ("contact_point.opt_out", "contact_point", landline.id, {"channel": "voice"}),
        ("case.update", "case", str(CASE_ID), {"before": {"balance": "8000.00"}}),
        ("party.create", "party", str(extra.id), {}),
    ):
        session.add(
            AuditRow(
                at=later,
                actor="test",
                action=action,
                entity=entity,
                entity_id=entity_id,
                detail=detail,
            )
        )
    await session.execute(
        update(ContactPointRow)
        .where(ContactPointRow.id == uuid.UUID(landline.id))
        .values(opted_out=["voice"])
    )
    await session.execute(
        update(CaseRow).where(CaseRow.id == CASE_ID).values(balance=Decimal("7000.00"))
    )
    await session.commit()

    for instant, expected in ((NOW, before.facts.case), (later, None)):
        one = await load_case(session, CASE_ID, NOW, as_of=instant)
        many = (await load_facts(session, [CASE_ID], NOW, as_of=instant))[CASE_ID]
        assert one is not None and one.facts == many
        if expected is not None:
            assert one.facts.case == expected
        else:
            case = one.facts.case
            assert case.balance == Decimal("7000.00")
            assert [p.name for p in case.parties] == ["Wang Fang", "Li Na", "Zhao Lei"]
            assert Channel.VOICE in case.parties[0].contact_points[0].opted_out


async def test_as_of_leaves_out_parties_and_contact_points_added_later(
    session: AsyncSession,
) -> None:
    """A party and a contact point added through the API after T are not in the facts as
    of T, and the party the contact point was added to still is, with what it had."""
    from dialer.schemas.cases import CaseIn, ContactPointIn, PartyIn
    from dialer.services import cases

    stored = await cases.create_case(
        session, CaseIn.model_validate(cn_case("AS-OF-1")), actor="test", now=NOW
    )
    case_id = stored.id
    before = await load_case(session, case_id, NOW)
    assert before is not None
    debtor = before.facts.case.parties[0]
    later = NOW + timedelta(hours=1)
    await cases.add_party(
        session,
        case_id,
        PartyIn(ref="sister", role=PartyRole.THIRD_PARTY, name="Wang Li"),
        actor="test",
        now=later,
    )
    await cases.add_contact_point(
        session,
        case_id,
        uuid.UUID(debtor.id),
        ContactPointIn(kind=ContactKind.PHONE, value="+8613900139000"),
        actor="test",
        now=later,
    )
    then = await load_case(session, case_id, NOW + timedelta(hours=2), as_of=NOW)
    now = await load_case(session, case_id, NOW + timedelta(hours=2))
    assert then is not None and now is not None
    assert then.facts.case.parties == before.facts.case.parties
    assert [p.name for p in now.facts.case.parties] == ["Wang Fang", "Li Na", "Wang Li"]
    assert len(now.facts.case.parties[0].contact_points) == len(debtor.contact_points) + 1


async def test_a_case_and_its_history_load_in_two_round_trips(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The single-case reader: the case (with its portfolio's profile, the decided
    version's key, parties and contact points) in one statement, the history in another,
    whether they go through SQLAlchemy or, inside a transaction on PostgreSQL, straight to
    the driver."""
    await _store_case(session)
    statements: list[str] = []
    engine = session.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    if engine.dialect.name == "postgresql":
        import asyncpg

        real_fetch = asyncpg.Connection.fetch

        async def counting_fetch(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            statements.append(query)
            return await real_fetch(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, "fetch", counting_fetch)
    try:
        for in_transaction in (False, True):
            await session.rollback()
            if in_transaction:  # as in a request that authenticated first
                await session.execute(select(CaseRow.id).limit(1))
            statements.clear()
            stored = await load_case(session, CASE_ID, NOW)
            assert stored is not None and len(stored.facts.history.attempts) == 5
            assert len(statements) == 2, statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


async def test_a_read_before_any_write_begins_no_transaction_on_postgres(
    session: AsyncSession,
) -> None:
    """A request that only reads (the decision endpoint) pays no BEGIN and ROLLBACK round
    trips: READ COMMITTED gives each statement its own snapshot inside a transaction too.
    A session asking for a stronger isolation reads inside its transaction."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's driver begins no transaction for a read either")
    await _store_case(session)
    await session.commit()
    for isolation, begun in ((None, False), ("REPEATABLE READ", True)):
        if isolation is not None:
            await session.connection(execution_options={"isolation_level": isolation})
        conn = await session.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        stored = await load_case(session, CASE_ID, NOW)
        assert stored is not None and len(stored.facts.history.attempts) == 5
        assert driver.is_in_transaction() is begun
        await session.rollback()
