"""Cases, parties, contact points; assignment; agents' own cases; dispositions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from dialer.api.deps import (
    Agent,
    AgentOrSupervisor,
    CaseReader,
    CaseWriter,
    NowDep,
    PaymentRecorder,
    ProtectiveClearer,
    SessionDep,
    SettingsDep,
    Supervisor,
    check_book_fields,
)
from dialer.api.filters import PortfolioFilter
from dialer.schemas.cases import (
    AssignmentIn,
    CaseIn,
    CaseOut,
    CasePatch,
    CaseSummaryOut,
    ContactPointIn,
    ContactPointOut,
    ContactPointPatch,
    PartyIn,
    PartyPatch,
    ProtectiveClearIn,
    UnreachableIn,
)
from dialer.schemas.common import Page
from dialer.schemas.outcomes import OutcomeIn, OutcomeOut, PaymentIn, PaymentOut
from dialer.services import cases, clearing, outcomes, reachability
from strategy.model import CaseStatus

router = APIRouter(tags=["cases"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post("/cases", status_code=201, response_model=CaseOut)
async def create_case(body: CaseIn, session: SessionDep, now: NowDep, who: CaseWriter) -> object:
    return await cases.create_case(session, body, actor=who.actor, now=now)


@router.get("/cases", response_model=Page[CaseSummaryOut])
async def list_cases(
    session: SessionDep,
    who: CaseReader,
    portfolio: PortfolioFilter,
    tier: str | None = None,
    status: CaseStatus | None = None,
    team: str | None = None,
    agent: str | None = None,
    external_ref: Annotated[
        str | None, Query(max_length=128, description="the book's reference (any portfolio)")
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> object:
    """Cases by id; every filter given must hold. `next_cursor` pages on."""
    rows, next_cursor = await cases.list_cases(
        session,
        cursor=cursor,
        limit=limit,
        portfolio=portfolio,
        tier=tier,
        status=status,
        team=team,
        agent=agent,
        external_ref=external_ref,
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/cases/{case_id}", response_model=CaseOut)
async def get_case(case_id: uuid.UUID, session: SessionDep, who: CaseReader) -> object:
    return await cases.get_case(session, case_id)


@router.patch("/cases/{case_id}", response_model=CaseOut)
async def update_case(
    case_id: uuid.UUID, body: CasePatch, session: SessionDep, now: NowDep, who: CaseWriter
) -> object:
    """Change a case. Flags may be added, never removed (a supervisor clears one with
    `POST /cases/{id}/protective-facts/clear`); amount, balance, currency, due date and
    status belong to the book: service keys (and imports) change them, agents do not."""
    check_book_fields(who, body.model_fields_set)
    return await cases.update_case(session, case_id, body, actor=who.actor, now=now)


@router.post("/cases/{case_id}/protective-facts/clear", response_model=CaseOut)
async def clear_protective_fact(
    case_id: uuid.UUID,
    body: ProtectiveClearIn,
    session: SessionDep,
    now: NowDep,
    who: ProtectiveClearer,
) -> object:
    """Clear one protective fact, with a reason (supervisors only): a case flag, a
    party's refusal (`party_id`), or a contact point's do-not-call, opt-out or consent
    revocation (`contact_point_id`, and `channel` for the last two). Audited with the
    reason; shown in the case's timeline; the next decision no longer has it."""
    return await clearing.clear(
        session,
        case_id,
        fact=body.fact.value,
        reason=body.reason,
        party_id=body.party_id,
        contact_point_id=body.contact_point_id,
        channel=body.channel,
        actor=who.actor,
        now=now,
    )


@router.post("/cases/{case_id}/parties", status_code=201, response_model=CaseOut)
async def add_party(
    case_id: uuid.UUID, body: PartyIn, session: SessionDep, now: NowDep, who: CaseWriter
) -> object:
    return await cases.add_party(session, case_id, body, actor=who.actor, now=now)


@router.patch("/cases/{case_id}/parties/{party_id}", response_model=CaseOut)
async def update_party(
    case_id: uuid.UUID,
    party_id: uuid.UUID,
    body: PartyPatch,
    session: SessionDep,
    now: NowDep,
    who: CaseWriter,
) -> object:
    return await cases.update_party(session, case_id, party_id, body, actor=who.actor, now=now)


@router.post(
    "/cases/{case_id}/parties/{party_id}/contact-points", status_code=201, response_model=CaseOut
)
async def add_contact_point(
    case_id: uuid.UUID,
    party_id: uuid.UUID,
    body: ContactPointIn,
    session: SessionDep,
    now: NowDep,
    who: CaseWriter,
) -> object:
    return await cases.add_contact_point(session, case_id, party_id, body, actor=who.actor, now=now)


@router.patch("/contact-points/{cp_id}", response_model=ContactPointOut)
async def update_contact_point(
    cp_id: uuid.UUID, body: ContactPointPatch, session: SessionDep, now: NowDep, who: CaseWriter
) -> object:
    return await cases.update_contact_point(session, cp_id, body, actor=who.actor, now=now)


@router.put("/cases/{case_id}/assignment", response_model=CaseOut)
async def assign_case(
    case_id: uuid.UUID, body: AssignmentIn, session: SessionDep, now: NowDep, who: Supervisor
) -> object:
    return await cases.assign(session, case_id, body, actor=who.actor, now=now)


@router.get("/me/cases", response_model=Page[CaseSummaryOut])
async def my_cases(
    session: SessionDep,
    settings: SettingsDep,
    who: Agent,
    status: CaseStatus | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> object:
    """The cases assigned to the calling agent (the agent is the key's name)."""
    rows, next_cursor = await cases.list_cases(
        session, cursor=cursor, limit=limit, agent=who.name, status=status
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.post("/cases/{case_id}/outcomes", status_code=201, response_model=OutcomeOut)
async def record_outcome(
    case_id: uuid.UUID, body: OutcomeIn, session: SessionDep, now: NowDep, who: Agent
) -> object:
    """An agent's disposition (promise to pay, refusal, wrong number, callback, ...)."""
    return await outcomes.record_outcome(session, case_id, body, actor=who.actor, now=now)


@router.post("/cases/{case_id}/payments", status_code=201, response_model=PaymentOut)
async def record_payment(
    case_id: uuid.UUID, body: PaymentIn, session: SessionDep, now: NowDep, who: PaymentRecorder
) -> object:
    """A payment taken (an agent on the phone, the ledger's feed): lowers the balance."""
    return await outcomes.record_payment(session, case_id, body, actor=who.actor, now=now)


@router.put("/cases/{case_id}/unreachable", response_model=CaseOut)
async def record_unreachable(
    case_id: uuid.UUID,
    body: UnreachableIn,
    session: SessionDep,
    now: NowDep,
    who: AgentOrSupervisor,
) -> object:
    """Record the debtor unreachable since an instant, from a source, until an expiry (at
    most 30 days ahead). It unlocks location contacts with third parties while it holds,
    so it is audited and refused when the case's history shows the debtor reached since."""
    return await reachability.record(
        session,
        case_id,
        since=body.since,
        until=body.until,
        source=body.source,
        actor=who.actor,
        now=now,
    )


@router.delete("/cases/{case_id}/unreachable", response_model=CaseOut)
async def clear_unreachable(
    case_id: uuid.UUID, session: SessionDep, now: NowDep, who: CaseWriter
) -> object:
    """Clear a recorded unreachability (it only tightens, so any case writer may)."""
    return await reachability.clear(session, case_id, actor=who.actor, now=now)
