"""What the desk shows an agent about the call in their hands: only what the attempt's
granted disclosure allows for the party on the line (invariant 4, for screens).

`full` (the right party, verified): the debt, the briefing left by the last collector and,
under a US profile, the disclosure the collector must give (15 USC 1692e(11)). `identity`
or `none` (a third party, or not yet verified): who to ask for and for whom the agent
calls, never that a debt exists; a US third party: location information only (1692b).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.auth import Principal
from dialer.db.models import AttemptRow, CaseRow, OutcomeRow, PartyRow, Portfolio
from dialer.domain.agents import owes_wrap_up
from dialer.services import agents

US_DISCLOSURE = (
    "This is a communication from a debt collector. This is an attempt to collect a debt,"
    " and any information obtained will be used for that purpose."
)
US_THIRD_PARTY = (
    "Ask only for location information. Do not say that the person owes a debt (15 USC 1692b)."
)
THIRD_PARTY = "Do not mention the debt; ask the person to pass on a call-back request."


async def current_call(session: AsyncSession, who: Principal, now: datetime) -> dict[str, Any]:
    """The agent's state and, if a call is held or in hand, what may be shown about it."""
    agent = await agents.me(session, who, now)
    # the desk shows the wrap-up form only while it is owed (through away and offline too)
    owed = owes_wrap_up(agent.wrap_up_due_at)
    shown: dict[str, Any] = {"state": agent.state, "wrap_up_owed": owed, "call": None}
    if agent.attempt_id is None:
        return shown
    attempt = await session.get(AttemptRow, agent.attempt_id)
    if attempt is None:
        return shown
    case = await session.get(CaseRow, attempt.case_id)
    party = await session.get(PartyRow, attempt.party_id)
    assert case is not None and party is not None
    portfolio = await session.get(Portfolio, case.portfolio)
    us = portfolio is not None and portfolio.profile.startswith("us-")
    call: dict[str, Any] = {
        "attempt_id": attempt.id,
        "party": {"name": party.name, "role": party.role},
        "disclosure": attempt.disclosure,
        "case_ref": case.external_ref,
    }
    if shows_debt(attempt.disclosure, party.role):
        call["debt"] = debt(case)
        call["briefing"] = await briefing(session, case)
    call["say_first"] = say_first(attempt.disclosure, party.role, us=us)
    shown["call"] = call
    return shown


def shows_debt(disclosure: str | None, role: str) -> bool:
    """Whether the debt may be on the screen while this party is on the line: only at
    full disclosure to the right party (or their attorney)."""
    return disclosure == "full" and role in ("debtor", "attorney")


def say_first(disclosure: str | None, role: str, *, us: bool) -> str | None:
    """What the collector must say, or keep to, first with this party."""
    if shows_debt(disclosure, role):
        return US_DISCLOSURE if us else None
    return US_THIRD_PARTY if us else THIRD_PARTY


def debt(case: CaseRow) -> dict[str, Any]:
    return {
        "amount": str(case.amount),
        "balance": None if case.balance is None else str(case.balance),
        "currency": case.currency,
        "due_date": case.due_date.isoformat(),
    }


async def briefing(session: AsyncSession, case: CaseRow) -> dict[str, Any] | None:
    """The last collector's record: the source document's summary before the next call."""
    last = await session.scalar(
        select(OutcomeRow)
        .where(OutcomeRow.case_id == case.id)
        .order_by(OutcomeRow.recorded_at.desc(), OutcomeRow.id.desc())
        .limit(1)
    )
    if last is None:
        return None
    return {
        "at": last.recorded_at.isoformat(),
        "result": last.result,
        "notes": last.notes,
        "by": last.recorded_by,
    }
