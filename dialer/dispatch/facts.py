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

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.attempt_state import AttemptState
from dialer.db.models import AttemptRow, CaseRow, ContactPointRow, PartyRow, PaymentRow
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
) -> dict[uuid.UUID, CaseFacts]:
    """Cases with parties, contact points and history (contacts up to `until`)."""
    if not case_ids:
        return {}
    ids = list(case_ids)
    points: dict[uuid.UUID, list[ContactPoint]] = defaultdict(list)
    for cp in await session.execute(
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
        )
        .where(ContactPointRow.case_id.in_(ids))
        .order_by(ContactPointRow.party_id, ContactPointRow.position)
    ):
        points[cp[0]].append(
            ContactPoint(
                id=str(cp[1]),
                kind=ContactKind(cp[2]),
                value=cp[3],
                consent=frozenset(Channel(c) for c in cp[4]),
                opted_out=frozenset(Channel(c) for c in cp[5]),
                validity=Validity(cp[6]),
                timezone=cp[7],
                do_not_call=bool(cp[8]),
                mobile=cp[9],
            )
        )
    parties: dict[uuid.UUID, list[Party]] = defaultdict(list)
    for pt in await session.execute(
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
        .where(PartyRow.case_id.in_(ids))
        .order_by(PartyRow.case_id, PartyRow.position)
    ):
        parties[pt[0]].append(
            Party(
                id=str(pt[1]),
                role=PartyRole(pt[2]),
                name=pt[3],
                relation=pt[4],
                knows_of_debt=bool(pt[5]),
                refused_contact=bool(pt[6]),
                timezone=pt[7],
                title=pt[8],
                contact_points=tuple(points.get(pt[1], ())),
            )
        )
    attempts: dict[uuid.UUID, list[Attempt]] = defaultdict(list)
    stmt = (
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
            AttemptRow.case_id.in_(ids),
            AttemptRow.at <= until,
            AttemptRow.state.not_in(_NOT_CONTACTS),
        )
        .order_by(AttemptRow.at)
    )
    if exclude_attempt is not None:
        stmt = stmt.where(AttemptRow.id != exclude_attempt)
    for at in await session.execute(stmt):
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
    for pay in await session.execute(
        select(PaymentRow.case_id, PaymentRow.at, PaymentRow.amount)
        .where(PaymentRow.case_id.in_(ids), PaymentRow.at <= until)
        .order_by(PaymentRow.at)
    ):
        payments[pay[0]].append((pay[1], pay[2]))
    out: dict[uuid.UUID, CaseFacts] = {}
    for cr in await session.execute(select(*_CASE_COLS).where(CaseRow.id.in_(ids))):
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
