"""Preview dialing at the desk: the agent sees their next case and its decision, then
starts the call or skips it with a reason.

The cases offered are the attempts a preview campaign's planner recorded, waiting and due,
in a campaign the agent works (`db.repositories.agents.offered`). Starting one holds the
agent for it and stages its job again: the worker takes it like any job, decides again
under the case's lock (the decide gate) and dials it only because an agent is held for it
(`dispatch.agents.Seats`); the person who answers is put through to that agent as on any
agent-mode call. There is no other way to dial. Skipping cancels the attempt, with the
reason on the case's timeline and in the audit log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.ports import Job
from dialer.core.auth import Principal
from dialer.core.errors import ConflictError, FieldError, NotFoundError
from dialer.db.models import AttemptRow, CampaignRow, CaseRow, ContactPointRow, PartyRow, Portfolio
from dialer.db.repositories import agents as agent_repo
from dialer.dispatch import outbox, sql
from dialer.domain.agents import BUSY, AgentState, DialingMode
from dialer.domain.attempts import AttemptState
from dialer.schemas.decisions import decision_out
from dialer.services import agents, decisions, desk
from dialer.services.changes import record_change
from dialer.services.timeline import timeline
from strategy.decision import Decision
from strategy.model import Channel

SKIPPED = "preview_skipped"  # the error code a skipped attempt is cancelled with
TIMELINE_SHOWN = 8  # the latest timeline entries the preview shows


async def next_case(session: AsyncSession, who: Principal, now: datetime) -> dict[str, Any]:
    """The agent's state and their next preview case, with its decision now (None: no
    preview case is waiting for them)."""
    agent = await agents.me(session, who, now)
    stmt = _offered(agent.id, now).limit(1)
    attempt = await session.scalar(stmt)
    shown: dict[str, Any] = {"state": agent.state, "case": None}
    if attempt is not None:
        shown["case"] = await _prepared(session, attempt, now)
    return shown


async def start(
    session: AsyncSession, who: Principal, attempt_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """The agent starts the offered call: they are held for it and its job is staged, so
    a worker decides it again and dials it. Committed."""
    agent = await agents.me(session, who, now)
    attempt = await _claim(session, agent.id, attempt_id, now)
    assert attempt.campaign_id is not None
    await agents.start_call(session, who, attempt.campaign_id, attempt.id, now)
    job = Job(str(attempt.id), str(attempt.case_id), str(attempt.campaign_id), now)
    await outbox.add_jobs(session, [job], now)
    await _audit(session, attempt, who, now, "case.preview.start", attempt.state, {})
    await session.commit()
    return {"attempt_id": attempt.id, "state": AgentState.RESERVED.value}


async def skip(
    session: AsyncSession, who: Principal, attempt_id: uuid.UUID, reason: str, now: datetime
) -> dict[str, Any]:
    """The agent passes on the offered call: the attempt is cancelled (`preview_skipped`,
    the reason in its notes), the skip is audited and shown on the case's timeline."""
    agent = await agents.me(session, who, now)
    if agent.attempt_id is not None or agent.state in BUSY:
        raise ConflictError(
            f"an agent {agent.state} holds a call (attempt {agent.attempt_id}): it skips"
            " nothing until that call is over and wrapped up",
            [FieldError("attempt_id", "no skip while a call is held for this agent")],
        )
    attempt = await _claim(session, agent.id, attempt_id, now)
    conn = await session.connection()
    values = {"error_code": SKIPPED, "notes": f"skipped at the desk by {who.name}: {reason}"}
    state = attempt.state
    if not await sql.move(conn, attempt.id, state, AttemptState.CANCELLED, values, now):
        raise ConflictError(f"attempt {attempt.id} is no longer waiting")
    cancelled = AttemptState.CANCELLED.value
    await _audit(session, attempt, who, now, "case.preview.skip", cancelled, {"reason": reason})
    await session.commit()
    return {"attempt_id": attempt.id, "state": AttemptState.CANCELLED.value, "reason": reason}


def _offered(agent_id: uuid.UUID, now: datetime) -> Any:
    return agent_repo.offered(
        agent_id, now, preview=DialingMode.PREVIEW.value, waiting=sql.DISPATCHABLE_VALUES
    )


async def _claim(
    session: AsyncSession, agent_id: uuid.UUID, attempt_id: uuid.UUID, now: datetime
) -> AttemptRow:
    """The attempt, locked, if it is the one the desk offers this agent now (its next
    case, as `next_case` shows it); else 404 (no such attempt) or 409 naming `attempt_id`
    (not the case offered: a later one of their campaign, another campaign's, not
    waiting, or taken by another agent meanwhile)."""
    stmt = _offered(agent_id, now).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=AttemptRow)
    attempt: AttemptRow | None = await session.scalar(
        stmt.execution_options(populate_existing=True)
    )
    if attempt is None or attempt.id != attempt_id:
        if await session.get(AttemptRow, attempt_id) is None:
            raise NotFoundError(f"no attempt {attempt_id}")
        offered = f"the case offered now is attempt {attempt.id}" if attempt else "none is"
        raise ConflictError(
            f"attempt {attempt_id} is not the case the desk offers this agent ({offered}):"
            " reload the desk",
            [FieldError("attempt_id", f"not the offered case; {offered}")],
        )
    # read again under the lock: an agent who took it meanwhile has committed by now
    if await agent_repo.holder_of(session, attempt.id) is not None:
        raise ConflictError(f"attempt {attempt_id} was taken by another agent")
    return attempt


async def _audit(
    session: AsyncSession,
    attempt: AttemptRow,
    who: Principal,
    now: datetime,
    action: str,
    state_after: str,
    extra: dict[str, Any],
) -> None:
    await record_change(
        session,
        actor=who.actor,
        now=now,
        action=action,
        entity="case",
        entity_id=attempt.case_id,
        before={"attempt_state": attempt.state},
        after={"attempt_state": state_after},
        detail={
            "attempt_id": str(attempt.id),
            "campaign_id": str(attempt.campaign_id),
            "agent": who.name,
            **extra,
        },
    )


async def _prepared(session: AsyncSession, attempt: AttemptRow, now: datetime) -> dict[str, Any]:
    """What the agent reads before starting: the case, whom the call is for, the decision
    now (what may be said to whom, the allowed actions and their windows, what is refused
    and until when), the last collector's briefing and the latest timeline entries."""
    case = await session.get(CaseRow, attempt.case_id)
    party = await session.get(PartyRow, attempt.party_id)
    point = await session.get(ContactPointRow, attempt.contact_point_id)
    campaign = await session.get(CampaignRow, attempt.campaign_id)
    assert case is not None and party is not None and point is not None and campaign is not None
    portfolio = await session.get(Portfolio, case.portfolio)
    us = portfolio is not None and portfolio.profile.startswith("us-")
    decision = await decisions.decide_stored(session, case.id, now)
    parties = {
        str(p.id): p
        for p in await session.scalars(select(PartyRow).where(PartyRow.case_id == case.id))
    }
    points = {
        str(c.id): c.value
        for c in await session.scalars(
            select(ContactPointRow).where(ContactPointRow.case_id == case.id)
        )
    }
    this_call = _this_call(decision, attempt, point, party, us=us)
    prepared: dict[str, Any] = {
        "attempt_id": attempt.id,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "case_id": case.id,
        "case_ref": case.external_ref,
        "portfolio": case.portfolio,
        "zone": portfolio.timezone if portfolio is not None else None,  # times without a party's
        "tier": decision.tier,
        "days_past_due": decision.days_past_due,
        "call": this_call,
        "may_say": [_may_say(a, parties, points, us=us) for a in decision.allowed],
        "may_not": [_may_not(r, parties, points) for r in decision.refused],
        "case_reasons": [{"rule": r.rule, "message": r.message} for r in decision.case_reasons],
        "briefing": await desk.briefing(session, case),
        "timeline": (await timeline(session, case.id))["entries"][-TIMELINE_SHOWN:],
        "decision": decision_out(decision).model_dump(mode="json"),
    }
    if desk.shows_debt(this_call["disclosure"], party.role):
        prepared["debt"] = desk.debt(case)
    return prepared


def _this_call(
    decision: Decision, attempt: AttemptRow, point: ContactPointRow, party: PartyRow, *, us: bool
) -> dict[str, Any]:
    """The offered call as the engine sees it now: allowed (with its window and the
    disclosure granted) or refused (every reason, and when it would next be allowed)."""
    action = decision.allowed_for(str(point.id), Channel(attempt.channel))
    refusal = decision.refusal_for(str(point.id), Channel(attempt.channel))
    disclosure = action.disclosure.value if action is not None else attempt.disclosure
    return {
        "party": {"name": party.name, "role": party.role},
        "contact": {"kind": point.kind, "value": point.value},
        "channel": attempt.channel,
        "allowed_now": action is not None,
        "disclosure": disclosure,
        "say_first": desk.say_first(disclosure, party.role, us=us),
        "window_start": action.window_start if action is not None else None,
        "window_end": action.window_end if action is not None else None,
        "zone": action.zones[0] if action is not None and action.zones else None,
        "refused": [
            {"rule": r.rule, "message": r.message} for r in (refusal.reasons if refusal else ())
        ],
        "next_allowed": refusal.next_allowed if refusal is not None else None,
    }


def _may_say(
    action: Any, parties: dict[str, PartyRow], points: dict[str, str], *, us: bool
) -> dict[str, Any]:
    """An allowed action: to whom, where, at what disclosure, in which window, and what
    the collector must say or keep to with them."""
    party = parties.get(action.party_id)
    role = party.role if party is not None else str(action.candidate.party_role)
    return {
        "party": party.name if party is not None else action.party_id,
        "role": role,
        "contact": points.get(action.contact_point_id),
        "channel": str(action.channel),
        "zone": action.zones[0] if action.zones else None,
        "disclosure": action.disclosure.value,
        "say_first": desk.say_first(action.disclosure.value, role, us=us),
        "window_start": action.window_start,
        "window_end": action.window_end,
        "template_key": action.template_key,
    }


def _may_not(refusal: Any, parties: dict[str, PartyRow], points: dict[str, str]) -> dict[str, Any]:
    """A refused candidate: whom not to contact there, by which rules, and until when."""
    c = refusal.candidate
    party = parties.get(c.party_id)
    return {
        "party": party.name if party is not None else c.party_id,
        "role": str(c.party_role),
        "contact": points.get(c.contact_point_id),
        "channel": str(c.channel),
        "rules": list(dict.fromkeys(r.rule for r in refusal.reasons)),
        "next_allowed": refusal.next_allowed,
    }
