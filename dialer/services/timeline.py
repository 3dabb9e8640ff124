"""A case's timeline: attempts, the collectors' moves for its calls, outcomes with notes,
tasks, inbound messages, protective facts recorded and cleared, campaigns' planning
refusals, and the strategy versions of its portfolio, in time order; and the latest
summary, what an agent reads before the next call (source: "open the next call with a
summary of the last")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import (
    AgentRow,
    AttemptRow,
    AuditRow,
    CaseRow,
    InboundMessageRow,
    OutcomeRow,
    StrategyRow,
    TaskRow,
)
from dialer.db.repositories import audit as audit_repo
from dialer.db.repositories import protective as protective_repo
from dialer.db.repositories import refusals as refusal_repo
from dialer.domain.attempts import RESULT_RANK
from dialer.services.cases import get_case
from strategy.model import Result


def _strength(result: str) -> int:
    try:
        return RESULT_RANK[Result(result)]
    except ValueError:
        return -1


def _instant(value: Any) -> datetime | None:
    """An instant the audit log holds as text (`str(datetime)`), as a datetime again."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _entry(at: datetime | None, kind: str, **detail: Any) -> dict[str, Any]:
    return {"at": at, "kind": kind, **detail}


async def timeline(session: AsyncSession, case_id: uuid.UUID) -> dict[str, Any]:
    """Everything that happened to the case, oldest first, and the latest outcome as the
    briefing for the next contact."""
    case = await get_case(session, case_id)
    outcomes = await _outcomes(session, case_id)
    attempts = await _attempts(session, case_id)
    entries = [
        *attempts,
        *await _agent_moves(session, [a["id"] for a in attempts]),
        *(_outcome_entry(o) for o in outcomes),
        *await _tasks_and_messages(session, case_id),
        *await _strategy_versions(session, case.portfolio),
        *await _protective(session, case),
        *await _unreachability(session, case_id),
        *await _plan_refusals(session, case_id),
        *await _desk_choices(session, case_id),
    ]
    entries.sort(key=lambda e: (e["at"] is None, e["at"] or datetime.min, e["kind"]))
    latest = outcomes[-1] if outcomes else None
    summary = None
    if latest is not None:
        summary = {
            "at": latest.recorded_at,
            "result": latest.result,
            "notes": latest.notes,
            "promise_amount": latest.promise_amount,
            "promise_date": latest.promise_date,
            "callback_at": latest.callback_at,
            "recorded_by": latest.recorded_by,
        }
    return {"case_id": case_id, "entries": entries, "latest_summary": summary}


Entry = dict[str, Any]


async def _attempts(session: AsyncSession, case_id: uuid.UUID) -> list[Entry]:
    return [
        _entry(
            a.at,
            "attempt",
            id=a.id,
            channel=a.channel,
            contact_point_id=a.contact_point_id,
            state=a.state,
            result=a.result,
            answered_by=a.answered_by,
            duration_seconds=a.duration_seconds,
            error_code=a.error_code,
            allowed_by=a.allowed_by,
        )
        for a in await session.scalars(select(AttemptRow).where(AttemptRow.case_id == case_id))
    ]


async def _agent_moves(session: AsyncSession, attempt_ids: list[uuid.UUID]) -> list[Entry]:
    """The collectors' moves for the case's calls (held, bridged, wrap-up owed, freed,
    sent away at the wrap-up limit), whoever made them: the audit log's `agent.*`
    entries naming one of the attempts before or after the move."""
    if not attempt_ids:
        return []
    ids = [str(i) for i in attempt_ids]
    before = AuditRow.detail[("before", "attempt_id")].as_string()
    after = AuditRow.detail[("after", "attempt_id")].as_string()
    rows = list(
        await session.scalars(
            select(AuditRow)
            .where(AuditRow.entity == "agent", or_(before.in_(ids), after.in_(ids)))
            .order_by(AuditRow.id)
        )
    )
    agent_ids = {uuid.UUID(r.entity_id) for r in rows}
    found = select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(agent_ids))
    names = {agent.id: agent.name for agent in await session.execute(found)}
    entries = []
    for audited in rows:
        detail = audited.detail if isinstance(audited.detail, dict) else {}
        was, now = detail.get("before", {}), detail.get("after", {})
        entries.append(
            _entry(
                audited.at,
                "agent",
                agent=names.get(uuid.UUID(audited.entity_id)),
                action=audited.action,
                state=now.get("state"),
                attempt_id=now.get("attempt_id") or was.get("attempt_id"),
                reason=detail.get("reason"),
                by=audited.actor,
            )
        )
    return entries


async def _outcomes(session: AsyncSession, case_id: uuid.UUID) -> list[OutcomeRow]:
    """Recorded order, then the contact's own time (outcomes recorded in one sitting), then
    strength: within one call the keypad's results only get stronger (right party, then
    a promise), so that is their order even when recorded in the same instant."""
    rows = (
        await session.execute(
            select(OutcomeRow, AttemptRow.at)
            .outerjoin(AttemptRow, AttemptRow.id == OutcomeRow.attempt_id)
            .where(OutcomeRow.case_id == case_id)
        )
    ).all()
    rows = sorted(
        rows,
        key=lambda r: (r[0].recorded_at, r[1] or r[0].recorded_at, _strength(r[0].result)),
    )
    return [r[0] for r in rows]


def _outcome_entry(o: OutcomeRow) -> Entry:
    return _entry(
        o.recorded_at,
        "outcome",
        id=o.id,
        attempt_id=o.attempt_id,
        result=o.result,
        notes=o.notes,
        promise_amount=o.promise_amount,
        promise_date=o.promise_date,
        callback_at=o.callback_at,
        recorded_by=o.recorded_by,
    )


async def _tasks_and_messages(session: AsyncSession, case_id: uuid.UUID) -> list[Entry]:
    entries = [
        _entry(
            t.created_at,
            "task",
            id=t.id,
            action=t.action,
            status=t.status,
            requires_approval=t.requires_approval,
            reason=t.reason,
        )
        for t in await session.scalars(select(TaskRow).where(TaskRow.case_id == case_id))
    ]
    for m in await session.scalars(
        select(InboundMessageRow).where(InboundMessageRow.case_id == case_id)
    ):
        entries.append(
            _entry(m.received_at, "inbound_message", id=m.id, message_kind=m.kind, body=m.body)
        )
    return entries


async def _strategy_versions(session: AsyncSession, portfolio: str) -> list[Entry]:
    return [
        _entry(
            s.activated_at,
            "strategy_version",
            id=s.id,
            name=s.name,
            version=s.version,
            activated_by=s.activated_by,
        )
        for s in await session.scalars(
            select(StrategyRow).where(
                StrategyRow.portfolio == portfolio, StrategyRow.activated_at.is_not(None)
            )
        )
    ]


async def _protective(session: AsyncSession, case: CaseRow) -> list[Entry]:
    """Who recorded each protective fact still standing, and every supervisor's clearing
    with its reason (architecture invariant 8)."""
    entries = [
        _entry(
            f.recorded_at,
            "protective_fact",
            fact=f.fact,
            entity=f.entity,
            entity_id=f.entity_id,
            recorded_by=f.recorded_by,
            source=f.source,
        )
        for f in await protective_repo.of_case(session, case.id)
    ]
    subjects = [str(case.id)] + [str(p.id) for p in case.parties]
    subjects += [str(cp.id) for p in case.parties for cp in p.contact_points]
    for cleared in await audit_repo.entries_for(session, "protective.clear", subjects):
        entries.append(
            _entry(
                cleared.at,
                "protective_fact_cleared",
                fact=cleared.detail.get("fact"),
                entity=cleared.entity,
                entity_id=cleared.entity_id,
                reason=cleared.detail.get("reason"),
                cleared_by=cleared.actor,
                recorded=cleared.detail.get("recorded"),
            )
        )
    return entries


async def _unreachability(session: AsyncSession, case_id: uuid.UUID) -> list[Entry]:
    entries = []
    for audited in await session.scalars(
        select(AuditRow)
        .where(
            AuditRow.entity == "case",
            AuditRow.entity_id == str(case_id),
            AuditRow.action.in_(("case.unreachable.record", "case.unreachable.clear")),
        )
        .order_by(AuditRow.id)
    ):
        detail = audited.detail if isinstance(audited.detail, dict) else {}
        recorded = audited.action == "case.unreachable.record"
        shown = detail.get("after" if recorded else "before", {})
        entries.append(
            _entry(
                audited.at,
                "unreachable_recorded" if recorded else "unreachable_cleared",
                since=_instant(shown.get("unreachable_since")),
                until=_instant(shown.get("unreachable_until")),
                source=shown.get("unreachable_source"),
                recorded_by=audited.actor,
            )
        )
    return entries


async def _plan_refusals(session: AsyncSession, case_id: uuid.UUID) -> list[Entry]:
    """Campaigns that planned nothing for the case: why, and when the engine would allow."""
    return [
        _entry(
            refusal.planned_at,
            "plan_refusal",
            campaign_id=refusal.campaign_id,
            rules=refusal.rules,
            reason=refusal.reason,
            next_allowed=refusal.next_allowed,
        )
        for refusal in await refusal_repo.of_case(session, case_id)
    ]


_DESK_CHOICES = {"case.preview.start": "preview_started", "case.preview.skip": "preview_skipped"}


async def _desk_choices(session: AsyncSession, case_id: uuid.UUID) -> list[Entry]:
    """Preview calls an agent started or skipped at the desk (a skip with its reason)."""
    entries = [
        audited
        for action in _DESK_CHOICES
        for audited in await audit_repo.entries_for(session, action, [str(case_id)])
    ]
    return [
        _entry(
            a.at,
            _DESK_CHOICES[a.action],
            attempt_id=a.detail.get("attempt_id"),
            campaign_id=a.detail.get("campaign_id"),
            agent=a.detail.get("agent"),
            reason=a.detail.get("reason"),
        )
        for a in entries
    ]
