"""The engine's facts for many cases at once, read with a handful of Core statements.

The planner walks a million cases: ORM objects and relationship loading per case would
dominate its time, so rows come back as tuples and become `strategy.model` values here.
On PostgreSQL, inside the caller's transaction, the statements (compiled once) run on the
driver's own connection: its records need no SQLAlchemy row processing, and its UUIDs
turn into text in C (the engine's ids are text). The worker uses the same reader for one
case, so both decide on identical facts.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, Text, Uuid, all_, any_, bindparam, cast, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from dialer.db.models import (
    AttemptRow,
    CaseRow,
    ContactPointRow,
    PartyRow,
    PaymentRow,
    Portfolio,
)
from dialer.domain.attempts import AttemptState
from dialer.facts.convert import point_facts, recorded_unreachable
from strategy.model import (
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
    Channel,
    ContactKind,
    ContactPoint,
    History,
    Party,
    PartyRole,
    Result,
    Stage,
    Validity,
)

# Attempts that never reached a provider are not contacts: the engine must not count them.
NOT_CONTACTS = frozenset(
    {
        AttemptState.PLANNED,
        AttemptState.QUEUED,
        AttemptState.REFUSED,
        AttemptState.CANCELLED,
        AttemptState.NOT_SENT,
    }
)
_NOT_CONTACTS = [s.value for s in NOT_CONTACTS]

_CASE_COLS = (
    CaseRow.id,
    CaseRow.amount,
    CaseRow.currency,
    CaseRow.due_date,
    CaseRow.balance,
    CaseRow.stage,
    CaseRow.stage_started_on,
    CaseRow.status,
    CaseRow.flags,
    CaseRow.portfolio,
    CaseRow.dispute_resolved_at,
    CaseRow.strategy_version_id,
    CaseRow.unreachable_since,
    CaseRow.unreachable_until,
    CaseRow.unreachable_source,
)
# Where `lock_cases` puts the portfolio's active strategy, profile and country.
PORTFOLIO_COLUMNS = slice(len(_CASE_COLS), len(_CASE_COLS) + 3)


@dataclass(frozen=True, slots=True)
class CaseFacts:
    case: Case
    history: History
    strategy_version_id: uuid.UUID | None  # the pinned version, if any


def open_cases_page(
    portfolio: str, after: uuid.UUID | None, limit: int, case_filter: dict[str, Any]
) -> Select[Any]:
    """One keyset page of a portfolio's open cases (ids only), filtered by the campaign."""
    stmt = (
        select(CaseRow.id)
        .where(CaseRow.portfolio == portfolio, CaseRow.status == CaseStatus.OPEN.value)
        .order_by(CaseRow.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(CaseRow.id > after)
    tiers = case_filter.get("tiers")
    if tiers:
        stmt = stmt.where(CaseRow.tier.in_(list(tiers)))
    teams = case_filter.get("teams")
    if teams:
        stmt = stmt.where(CaseRow.team.in_(list(teams)))
    refs = case_filter.get("external_refs")
    if refs:
        stmt = stmt.where(CaseRow.external_ref.in_(list(refs)))
    return stmt


async def load_facts(
    session: AsyncSession,
    case_ids: Sequence[uuid.UUID],
    until: datetime,
    *,
    exclude_attempt: uuid.UUID | None = None,
    case_rows: Sequence[Any] | None = None,
) -> dict[uuid.UUID, CaseFacts]:
    """Cases with parties, contact points and history (contacts up to `until`), in five
    statements whatever the number of cases; four when `case_rows` come from
    `lock_cases`."""
    if not case_ids:
        return {}
    ids = list(case_ids)
    q = _statements(session)
    # Plain Core results on the session's connection (its transaction): no ORM row
    # processing. What the session holds unflushed is flushed first, as autoflush would.
    await session.flush()
    conn = await session.connection()
    params: dict[str, Any] = {"ids": ids, "until": until, "not_contacts": _NOT_CONTACTS}
    if exclude_attempt is not None:
        params["exclude"] = exclude_attempt
    driver = None
    if q is _POSTGRES:
        driver = (await conn.get_raw_connection()).driver_connection
        if driver is not None and not driver.is_in_transaction():
            driver = None  # not begun yet: SQLAlchemy's execute opens the transaction

    async def rows(stmt: Executable) -> Sequence[Any]:
        if driver is None:
            return (await conn.execute(stmt, params)).all()
        sql, names = _RAW[id(stmt)]
        return await driver.fetch(sql, *[params[n] for n in names])  # type: ignore[no-any-return]

    if case_rows is None:
        case_rows = await rows(q.cases)
    if not case_rows:
        return {}
    points: dict[Any, list[ContactPoint]] = defaultdict(list)
    for cp in await rows(q.points):
        points[cp[0]].append(_point(cp))
    parties: dict[Any, list[Party]] = defaultdict(list)
    for pt in await rows(q.parties):
        parties[pt[0]].append(_party(pt, points.get(pt[1], [])))
    attempts: dict[Any, list[Attempt]] = defaultdict(list)
    hist = q.history if exclude_attempt is None else q.history_excluding
    for at in await rows(hist):
        attempts[at[0]].append(
            Attempt(
                at=at[1],
                channel=_CHANNEL[at[2]],
                party_id=str(at[3]),
                contact_point_id=str(at[4]),
                result=_RESULT[at[5]],
                id=str(at[6]),
                promise_amount=at[7],
                promise_date=at[8],
                callback_at=at[9],
            )
        )
    payments: dict[uuid.UUID, list[tuple[datetime, Any]]] = defaultdict(list)
    for pay in await rows(q.payments):
        payments[pay[0]].append((pay[1], pay[2]))
    out: dict[uuid.UUID, CaseFacts] = {}
    no_payments: tuple[tuple[datetime, Any], ...] = ()
    for cr in case_rows:
        cid = cr[0]
        case = Case(
            id=str(cid),
            amount=cr[1],
            currency=cr[2],
            due_date=cr[3],
            balance=cr[4],
            stage=_STAGE[cr[5]],
            stage_started_on=cr[6],
            status=_STATUS[cr[7]],
            flags=_flags(cr[8]),
            portfolio=cr[9],
            dispute_resolved_at=cr[10],
            parties=tuple(parties.get(cid, ())),
            recorded_unreachable=recorded_unreachable(cr[12], cr[13], cr[14]),
        )
        paid = payments.get(cid)
        history = History(
            attempts=tuple(attempts.get(cid, ())),
            payments=tuple(paid) if paid else no_payments,
        )
        out[cid] = CaseFacts(case, history, cr[11])
    return out


async def lock_cases(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
    """The cases' rows (for `load_facts`) with their portfolio's active strategy, profile
    and country after the case columns, locked `FOR UPDATE` in id order on PostgreSQL (no
    deadlock between transactions locking overlapping sets of cases): everything read
    after them in the transaction is as fresh as the lock (under READ COMMITTED each later
    statement sees what committed before it began)."""
    q = _statements(session)
    return (await session.execute(q.locked, {"ids": list(case_ids)})).all()


def _party(r: Any, points: list[ContactPoint]) -> Party:
    return Party(
        id=str(r[1]),
        role=_ROLE[r[2]],
        name=r[3],
        relation=r[4],
        knows_of_debt=bool(r[5]),
        refused_contact=bool(r[6]),
        timezone=r[7],
        title=r[8],
        contact_points=tuple(points),
    )


def _point(r: Any) -> ContactPoint:
    zones, mobile = point_facts(r[9], _zones(r[10]), r[11])
    return ContactPoint(
        id=str(r[1]),
        kind=_KIND[r[2]],
        value=r[3],
        consent=_channels(r[4]),
        opted_out=_channels(r[5]),
        validity=_VALIDITY[r[6]],
        timezone=r[7],
        do_not_call=bool(r[8]),
        mobile=mobile,
        zones=zones,
    )


# JSON columns are read as their text (no JSON decoding in the driver per row); the few
# distinct values a portfolio has ('[]', '["sms"]', '["Asia/Shanghai"]') parse once.
@lru_cache(maxsize=4096)
def _channels(text: str) -> frozenset[Channel]:
    return frozenset(_CHANNEL[c] for c in json.loads(text))


@lru_cache(maxsize=4096)
def _flags(text: str) -> frozenset[CaseFlag]:
    return frozenset(CaseFlag(f) for f in json.loads(text))


@lru_cache(maxsize=4096)
def _zones(text: str | None) -> tuple[str, ...] | None:
    found = None if text is None else json.loads(text)
    return None if found is None else tuple(found)


_CHANNEL = {c.value: c for c in Channel}
_STAGE = {s.value: s for s in Stage}
_STATUS = {s.value: s for s in CaseStatus}
_RESULT = {r.value: r for r in Result}
_ROLE = {r.value: r for r in PartyRole}
_KIND = {k.value: k for k in ContactKind}
_VALIDITY = {v.value: v for v in Validity}


@dataclass(frozen=True, slots=True)
class _Statements:
    """The reader's statements for one dialect, built once and reused with new parameters
    (SQLAlchemy's compiled cache then does the rest), so loading one case's facts costs
    little more than its round trips."""

    cases: Executable
    locked: Executable
    parties: Executable
    points: Executable
    history: Executable
    history_excluding: Executable
    payments: Executable


def _build(postgres: bool) -> _Statements:
    def among(column: Any) -> Any:
        # PostgreSQL: one array parameter (`= ANY`), so a page of a thousand ids is not
        # rendered into a thousand placeholders each time; elsewhere an expanding IN.
        if postgres:
            return column == any_(bindparam("ids", type_=ARRAY(Uuid())))
        return column.in_(bindparam("ids", expanding=True))

    case_cols: list[Any] = [*_CASE_COLS]
    case_cols[8] = cast(CaseRow.flags, Text)
    cases = select(*case_cols).where(among(CaseRow.id))
    locked = (
        select(*case_cols, Portfolio.active_strategy_id, Portfolio.profile, Portfolio.country)
        .outerjoin(Portfolio, Portfolio.name == CaseRow.portfolio)
        .where(among(CaseRow.id))
    )
    if postgres:
        # In id order: two transactions locking overlapping sets never deadlock.
        locked = locked.order_by(CaseRow.id).with_for_update(of=CaseRow)
    # Two plain queries, each on its case_id index: a join of parties and contact points
    # is planned badly (hash joins over whole tables) before statistics catch up with an
    # import.
    parties = (
        select(
            PartyRow.case_id,
            PartyRow.id,
            PartyRow.role,
            PartyRow.name,
            PartyRow.relation,
            PartyRow.knows_of_debt,
            PartyRow.refused_contact,
            PartyRow.timezone,
            PartyRow.title,
        )
        .where(among(PartyRow.case_id))
        .order_by(PartyRow.case_id, PartyRow.position)
    )
    points = (
        select(
            ContactPointRow.party_id,
            ContactPointRow.id,
            ContactPointRow.kind,
            ContactPointRow.value,
            cast(ContactPointRow.consent, Text),
            cast(ContactPointRow.opted_out, Text),
            ContactPointRow.validity,
            ContactPointRow.timezone,
            ContactPointRow.do_not_call,
            ContactPointRow.mobile,
            cast(ContactPointRow.number_zones, Text),
            ContactPointRow.number_mobile,
        )
        .where(among(ContactPointRow.case_id))
        .order_by(ContactPointRow.party_id, ContactPointRow.position)
    )
    history = (
        select(
            AttemptRow.case_id,
            AttemptRow.at,
            AttemptRow.channel,
            AttemptRow.party_id,
            AttemptRow.contact_point_id,
            AttemptRow.result,
            AttemptRow.id,
            AttemptRow.promise_amount,
            AttemptRow.promise_date,
            AttemptRow.callback_at,
        )
        .where(
            among(AttemptRow.case_id),
            AttemptRow.at <= bindparam("until"),
            # PostgreSQL: an array parameter, so the statement has no list to expand and
            # compiles once to the driver's SQL (`_RAW`).
            AttemptRow.state != all_(bindparam("not_contacts", type_=ARRAY(String())))
            if postgres
            else AttemptRow.state.not_in(_NOT_CONTACTS),
        )
        .order_by(AttemptRow.at)
    )
    payments = (
        select(PaymentRow.case_id, PaymentRow.at, PaymentRow.amount)
        .where(among(PaymentRow.case_id), PaymentRow.at <= bindparam("until"))
        .order_by(PaymentRow.at)
    )
    return _Statements(
        cases=cases,
        locked=locked,
        parties=parties,
        points=points,
        history=history,
        history_excluding=history.where(AttemptRow.id != bindparam("exclude")),
        payments=payments,
    )


_POSTGRES = _build(postgres=True)
_GENERIC = _build(postgres=False)


def _raw(stmt: Any) -> tuple[str, tuple[str, ...]]:
    """A PostgreSQL statement as the driver's SQL and its parameters' names in order."""
    compiled = stmt.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    return compiled.string, tuple(compiled.positiontup or ())


# The reading statements (not `locked`: it runs through SQLAlchemy), keyed by identity.
_RAW = {
    id(s): _raw(s)
    for s in (
        _POSTGRES.cases,
        _POSTGRES.parties,
        _POSTGRES.points,
        _POSTGRES.history,
        _POSTGRES.history_excluding,
        _POSTGRES.payments,
    )
}


def _statements(session: AsyncSession) -> _Statements:
    return _POSTGRES if session.get_bind().dialect.name == "postgresql" else _GENERIC
