"""The engine's facts for many cases at once, read with a handful of Core statements.

The planner walks a million cases: ORM objects and relationship loading per case would
dominate its time, so rows come back as tuples and become `strategy.model` values through
`dialer.facts.rows`, the one conversion every reader uses. The worker uses this reader
for the cases it locks; `dialer.facts.reader.load_case` reads one case in two round
trips with the same conversion.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, String, Uuid, all_, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
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
from dialer.domain.attempts import LIVE_OR_DONE, AttemptState
from dialer.facts import rows, sql
from dialer.facts.as_of import changes_after, rewind
from strategy.model import Attempt, Case, CaseStatus, ContactPoint, History, Party

# Attempts that never reached a provider are not contacts: the engine must not count them.
NOT_CONTACTS = frozenset(AttemptState) - LIVE_OR_DONE
NOT_CONTACT_STATES = sorted(s.value for s in NOT_CONTACTS)
# Where `lock_cases` puts the portfolio's active strategy, profile and country.
PORTFOLIO_COLUMNS = slice(len(rows.CASE_COLUMNS), len(rows.CASE_COLUMNS) + 3)


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
    as_of: datetime | None = None,
) -> dict[uuid.UUID, CaseFacts]:
    """Cases with parties, contact points and history (contacts and payments up to
    `until`), in five statements whatever the number of cases; four when `case_rows` come
    from `lock_cases`. `as_of`: the facts as they stood at that instant (history bounded
    by it too; `dialer.facts.as_of`), two statements more."""
    if not case_ids:
        return {}
    if as_of is not None:
        until = min(until, as_of)
    q = _POSTGRES if sql.is_postgres(session) else _GENERIC
    params: dict[str, Any] = {"ids": list(case_ids), "until": until}
    if q is _POSTGRES:
        params["not_contacts"] = NOT_CONTACT_STATES
    if exclude_attempt is not None:
        params["exclude"] = exclude_attempt
    fetch = await sql.fetcher(session, params)
    if case_rows is None:
        case_rows = await fetch(q.cases)
    if not case_rows:
        return {}
    points: dict[Any, list[ContactPoint]] = defaultdict(list)
    for cp in await fetch(q.points):
        points[cp[0]].append(rows.contact_point(cp))
    parties: dict[Any, list[Party]] = defaultdict(list)
    for pt in await fetch(q.parties):
        parties[pt[0]].append(rows.party(pt, points.get(pt[1], ())))
    attempts: dict[Any, list[Attempt]] = defaultdict(list)
    for at in await fetch(q.history if exclude_attempt is None else q.history_excluding):
        attempts[at[0]].append(rows.attempt(at))
    payments: dict[Any, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for pay in await fetch(q.payments):
        payments[pay[0]].append(rows.payment(pay))
    cases = {cr[0]: rows.case(cr, parties.get(cr[0], ())) for cr in case_rows}
    if as_of is not None:
        changes, opt_outs = await changes_after(session, cases, as_of)
        cases = {
            k: rewind(c, changes.get(k, ()), opt_outs.get(k, ()), as_of) for k, c in cases.items()
        }
    return {
        cr[0]: CaseFacts(
            cases[cr[0]],
            History(tuple(attempts.get(cr[0], ())), tuple(payments.get(cr[0], ()))),
            cr[rows.STRATEGY_VERSION],
        )
        for cr in case_rows
    }


async def lock_cases(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
    """The cases' rows (for `load_facts`) with their portfolio's active strategy, profile
    and country after the case columns, locked `FOR UPDATE` in id order on PostgreSQL (no
    deadlock between transactions locking overlapping sets of cases): everything read
    after them in the transaction is as fresh as the lock (under READ COMMITTED each later
    statement sees what committed before it began)."""
    q = _POSTGRES if sql.is_postgres(session) else _GENERIC
    return (await session.execute(q.locked, {"ids": list(case_ids)})).all()


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

    cases = select(*rows.CASE_COLUMNS).where(among(CaseRow.id))
    locked = (
        select(
            *rows.CASE_COLUMNS, Portfolio.active_strategy_id, Portfolio.profile, Portfolio.country
        )
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
        select(*rows.PARTY_COLUMNS)
        .where(among(PartyRow.case_id))
        .order_by(PartyRow.case_id, PartyRow.position)
    )
    points = (
        select(*rows.POINT_COLUMNS)
        .where(among(ContactPointRow.case_id))
        .order_by(ContactPointRow.party_id, ContactPointRow.position)
    )
    history = (
        select(*rows.ATTEMPT_COLUMNS)
        .where(
            among(AttemptRow.case_id),
            AttemptRow.at <= bindparam("until"),
            # PostgreSQL: an array parameter, so the statement has no list to expand and
            # compiles once to the driver's SQL.
            AttemptRow.state != all_(bindparam("not_contacts", type_=ARRAY(String())))
            if postgres
            else AttemptRow.state.in_(rows.CONTACT_STATES),
        )
        .order_by(AttemptRow.at, AttemptRow.id)
    )
    payments = (
        select(*rows.PAYMENT_COLUMNS)
        .where(among(PaymentRow.case_id), PaymentRow.at <= bindparam("until"))
        .order_by(PaymentRow.at, PaymentRow.id)
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
# The reading statements (not `locked`: it runs through SQLAlchemy).
sql.raw(
    _POSTGRES.cases,
    _POSTGRES.parties,
    _POSTGRES.points,
    _POSTGRES.history,
    _POSTGRES.history_excluding,
    _POSTGRES.payments,
)
