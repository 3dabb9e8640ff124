"""One stored case's facts in two round trips: the case with its portfolio's profile, the
key of the strategy version it is decided on, its parties and contact points (one joined
statement); then its contacts and payments (one union). The rows become facts through
`dialer.facts.rows`, as in the batch reader (`dialer.facts.batch`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    String,
    all_,
    bindparam,
    cast,
    false,
    func,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import (
    AttemptRow,
    CaseRow,
    ContactPointRow,
    PartyRow,
    PaymentRow,
    Portfolio,
    StrategyRow,
)
from dialer.facts import rows, sql
from dialer.facts.as_of import changes_after, rewind
from dialer.facts.batch import NOT_CONTACT_STATES, CaseFacts
from strategy.model import Attempt, ContactPoint, History, Party


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case's facts, its portfolio's guardrail profile, and the strategy version it is
    decided on (the one it is pinned to, else its portfolio's active one; None if
    neither) with that version's digest (the key of `dialer.facts.strategies`)."""

    facts: CaseFacts
    profile: str
    version_id: uuid.UUID | None
    version_digest: str | None


async def load_case(
    session: AsyncSession, case_id: uuid.UUID, until: datetime, *, as_of: datetime | None = None
) -> StoredCase | None:
    """The case `case_id` with its history up to `until` (None: no such case). `as_of`:
    as it stood at that instant (`dialer.facts.as_of`; two statements more)."""
    if as_of is not None:
        until = min(until, as_of)
    postgres = sql.is_postgres(session)
    params: dict[str, Any] = {"id": case_id, "until": until}
    if postgres:
        params["not_contacts"] = NOT_CONTACT_STATES
    case_stmt, history_stmt = _POSTGRES if postgres else _GENERIC
    fetch = await sql.fetcher(session, params)
    found = await fetch(case_stmt)
    if not found:
        return None
    first = found[0]
    parties: list[Party] = []
    points: list[ContactPoint] = []
    party_row: Any = None
    for r in found:  # one row per contact point, parties and points in stored order
        if party_row is not None and r[_PARTY][1] != party_row[1]:
            parties.append(rows.party(party_row, points))
            points = []
        party_row = r[_PARTY] if r[_PARTY][1] is not None else None
        if r[_POINT][1] is not None:
            points.append(rows.contact_point(r[_POINT]))
    if party_row is not None:
        parties.append(rows.party(party_row, points))
    attempts: list[Attempt] = []
    payments: list[tuple[datetime, Decimal]] = []
    for h in await fetch(history_stmt):
        if h[-1]:
            payments.append(rows.payment((h[0], h[1], h[7])))
        else:
            attempts.append(rows.attempt(h))
    case = rows.case(first[_CASE_ROW], parties)
    if as_of is not None:
        changes, opt_outs = await changes_after(session, {case_id: case}, as_of)
        case = rewind(case, changes.get(case_id, ()), opt_outs.get(case_id, ()), as_of)
    facts = CaseFacts(case, History(tuple(attempts), tuple(payments)), first[rows.STRATEGY_VERSION])
    n = len(rows.CASE_COLUMNS)
    return StoredCase(facts, first[n], first[n + 1], first[n + 2])


_N = len(rows.CASE_COLUMNS)
_CASE_ROW = slice(0, _N)
_PARTY = slice(_N + 3, _N + 3 + len(rows.PARTY_COLUMNS))
_POINT = slice(_PARTY.stop, _PARTY.stop + len(rows.POINT_COLUMNS))


def _statements(postgres: bool) -> tuple[Any, Any]:
    version = func.coalesce(CaseRow.strategy_version_id, Portfolio.active_strategy_id)
    case = (
        select(
            *rows.CASE_COLUMNS,
            Portfolio.profile,
            StrategyRow.id,
            StrategyRow.digest,
            *rows.PARTY_COLUMNS,
            *rows.POINT_COLUMNS,
        )
        .select_from(CaseRow)
        .join(Portfolio, Portfolio.name == CaseRow.portfolio)
        .outerjoin(StrategyRow, StrategyRow.id == version)
        .outerjoin(PartyRow, PartyRow.case_id == CaseRow.id)
        .outerjoin(ContactPointRow, ContactPointRow.party_id == PartyRow.id)
        .where(CaseRow.id == bindparam("id"))
        .order_by(PartyRow.position, ContactPointRow.position)
    )
    # Contacts and payments in one statement: a payment fills the attempt's columns it
    # has (case, instant, id; its amount in the promise's numeric column), flagged last.
    contacts = select(*rows.ATTEMPT_COLUMNS, cast(false(), Boolean).label("payment")).where(
        AttemptRow.case_id == bindparam("id"),
        AttemptRow.at <= bindparam("until"),
        # PostgreSQL: an array parameter, so the statement compiles once to the driver's SQL.
        AttemptRow.state != all_(bindparam("not_contacts", type_=ARRAY(String())))
        if postgres
        else AttemptRow.state.in_(rows.CONTACT_STATES),
    )
    paid = select(
        PaymentRow.case_id,
        PaymentRow.at,
        cast(null(), AttemptRow.channel.type),
        cast(null(), AttemptRow.party_id.type),
        cast(null(), AttemptRow.contact_point_id.type),
        cast(null(), AttemptRow.result.type),
        PaymentRow.id,
        PaymentRow.amount,
        cast(null(), AttemptRow.promise_date.type),
        cast(null(), AttemptRow.callback_at.type),
        cast(true(), Boolean),
    ).where(PaymentRow.case_id == bindparam("id"), PaymentRow.at <= bindparam("until"))
    both = union_all(contacts, paid).subquery()
    history = select(*both.c).order_by(both.c.at, both.c.id)
    return case, history


_POSTGRES = _statements(postgres=True)
_GENERIC = _statements(postgres=False)
sql.raw(*_POSTGRES)
