"""The engine's facts for many cases at once, read with a handful of Core statements.

The planner walks a million cases: ORM objects and relationship loading per case would
dominate its time, so rows come back as tuples and become `strategy.model` values here.
The worker uses the same reader for one case, so both decide on identical facts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.attempt_state import AttemptState
from dialer.convert import point_facts
from dialer.db.models import (
    AttemptRow,
    CaseRow,
    ContactPointRow,
    PartyRow,
    PaymentRow,
    Portfolio,
)
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
)


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
    if case_rows is None:
        case_rows = (await session.execute(_CASES, {"ids": ids})).all()
    if not case_rows:
        return {}
    points: dict[uuid.UUID, list[ContactPoint]] = defaultdict(list)
    for cp in await session.execute(_POINTS, {"ids": ids}):
        points[cp[0]].append(_point(cp))
    parties: dict[uuid.UUID, list[Party]] = defaultdict(list)
    for pt in await session.execute(_PARTIES, {"ids": ids}):
        parties[pt[0]].append(_party(pt, points.get(pt[1], [])))
    attempts: dict[uuid.UUID, list[Attempt]] = defaultdict(list)
    hist = _HISTORY if exclude_attempt is None else _HISTORY_EXCLUDING
    params: dict[str, Any] = {"ids": ids, "until": until, "skip": _NOT_CONTACTS}
    if exclude_attempt is not None:
        params["exclude"] = exclude_attempt
    for at in await session.execute(hist, params):
        attempts[at[0]].append(
            Attempt(
                at=at[1],
                channel=Channel(at[2]),
                party_id=str(at[3]),
                contact_point_id=str(at[4]),
                result=Result(at[5]),
                id=str(at[6]),
                promise_amount=at[7],
                promise_date=at[8],
                callback_at=at[9],
            )
        )
    payments: dict[uuid.UUID, list[tuple[datetime, Any]]] = defaultdict(list)
    for pay in await session.execute(_PAYMENTS, {"ids": ids, "until": until}):
        payments[pay[0]].append((pay[1], pay[2]))
    out: dict[uuid.UUID, CaseFacts] = {}
    for cr in case_rows:
        cid = cr[0]
        case = Case(
            id=str(cid),
            amount=cr[1],
            currency=cr[2],
            due_date=cr[3],
            balance=cr[4],
            stage=Stage(cr[5]),
            stage_started_on=cr[6],
            status=CaseStatus(cr[7]),
            flags=frozenset(CaseFlag(f) for f in cr[8]),
            portfolio=cr[9],
            dispute_resolved_at=cr[10],
            parties=tuple(parties.get(cid, ())),
        )
        history = History(attempts=tuple(attempts.get(cid, ())), payments=tuple(payments[cid]))
        out[cid] = CaseFacts(case, history, cr[11])
    return out


async def lock_cases(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
    """The cases' rows (for `load_facts`) with their portfolio's active strategy, profile
    and country after the case columns, locked `FOR UPDATE` on PostgreSQL: everything read
    after them in the transaction is as fresh as the lock (under READ COMMITTED each later
    statement sees what committed before it began)."""
    stmt = _CASES_FOR_UPDATE if session.get_bind().dialect.name == "postgresql" else _LOCKED
    return (await session.execute(stmt, {"ids": list(case_ids)})).all()


def _party(r: Any, points: list[ContactPoint]) -> Party:
    return Party(
        id=str(r[1]),
        role=PartyRole(r[2]),
        name=r[3],
        relation=r[4],
        knows_of_debt=bool(r[5]),
        refused_contact=bool(r[6]),
        timezone=r[7],
        title=r[8],
        contact_points=tuple(points),
    )


def _point(r: Any) -> ContactPoint:
    zones, mobile = point_facts(r[9], r[10], r[11])
    return ContactPoint(
        id=str(r[1]),
        kind=ContactKind(r[2]),
        value=r[3],
        consent=frozenset(Channel(c) for c in r[4]),
        opted_out=frozenset(Channel(c) for c in r[5]),
        validity=Validity(r[6]),
        timezone=r[7],
        do_not_call=bool(r[8]),
        mobile=mobile,
        zones=zones,
    )


# Built once: the statements are reused with new parameters (SQLAlchemy's compiled cache
# then does the rest), so loading one case's facts costs little more than its round trips.
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_CASES = select(*_CASE_COLS).where(CaseRow.id.in_(_IDS))
_LOCKED = (
    select(*_CASE_COLS, Portfolio.active_strategy_id, Portfolio.profile, Portfolio.country)
    .outerjoin(Portfolio, Portfolio.name == CaseRow.portfolio)
    .where(CaseRow.id.in_(_IDS))
)
_CASES_FOR_UPDATE = _LOCKED.with_for_update(of=CaseRow)
# Two plain queries, each on its case_id index: a join of parties and contact points is
# planned badly (hash joins over whole tables) before statistics catch up with an import.
_PARTIES = (
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
    .where(PartyRow.case_id.in_(_IDS))
    .order_by(PartyRow.case_id, PartyRow.position)
)
_POINTS = (
    select(
        ContactPointRow.party_id,
        ContactPointRow.id,
        ContactPointRow.kind,
        ContactPointRow.value,
        ContactPointRow.consent,
        ContactPointRow.opted_out,
        ContactPointRow.validity,
        ContactPointRow.timezone,
        ContactPointRow.do_not_call,
        ContactPointRow.mobile,
        ContactPointRow.number_zones,
        ContactPointRow.number_mobile,
    )
    .where(ContactPointRow.case_id.in_(_IDS))
    .order_by(ContactPointRow.party_id, ContactPointRow.position)
)
_HISTORY = (
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
        AttemptRow.case_id.in_(_IDS),
        AttemptRow.at <= bindparam("until"),
        AttemptRow.state.not_in(bindparam("skip", expanding=True)),
    )
    .order_by(AttemptRow.at)
)
_HISTORY_EXCLUDING = _HISTORY.where(AttemptRow.id != bindparam("exclude"))
_PAYMENTS = (
    select(PaymentRow.case_id, PaymentRow.at, PaymentRow.amount)
    .where(PaymentRow.case_id.in_(_IDS), PaymentRow.at <= bindparam("until"))
    .order_by(PaymentRow.at)
)
