"""`/dashboard`: a small read-only page for supervisors, and the one JSON view it needs.

The page itself is static and holds no data: it asks for an API key (kept in the tab's
sessionStorage) and calls the JSON API with it (`/v1/portfolios`, `/v1/campaigns`,
`/v1/campaigns/{id}/progress`, `/v1/dashboard/campaigns/{id}/morning`,
`/v1/dashboard/cases/{ref}`, `/v1/dashboard/agents`), so it is authorised exactly like
the API. Its script, style and charts (hand-drawn SVG) are in the page: nothing loads from
elsewhere. The case view masks every phone number and e-mail address before it leaves the
service.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from dialer.api.deps import CaseReader, NowDep, SessionDep, Supervisor
from dialer.api.pages import html_page
from dialer.core.errors import ConflictError, NotFoundError
from dialer.db.models import CaseRow, Portfolio
from dialer.db.repositories import cases as case_repo
from dialer.domain.agents import AgentState, away_reason, owes_wrap_up
from dialer.observability.redact import mask_phone, mask_text
from dialer.schemas.common import Instant
from dialer.schemas.decisions import decision_out
from dialer.services.decisions import decide_stored
from dialer.services.morning import morning
from dialer.services.supervision import board
from dialer.services.timeline import timeline

page = APIRouter(tags=["dashboard"])
router = APIRouter(tags=["dashboard"])


@page.get("/dashboard", response_class=HTMLResponse)
@page.head("/dashboard", include_in_schema=False)
def dashboard() -> HTMLResponse:
    """The supervisor's page (static; it asks for an API key and reads the API with it)."""
    return html_page("dashboard.html")


async def _find(session: SessionDep, ref: str, portfolio: str | None) -> CaseRow:
    try:
        found = await case_repo.get(session, uuid.UUID(ref))
    except ValueError:
        found = None
    if found is not None:
        return found
    stmt = select(CaseRow.id).where(CaseRow.external_ref == ref)
    if portfolio:
        stmt = stmt.where(CaseRow.portfolio == portfolio)
    ids = list((await session.scalars(stmt.limit(2))).all())
    if not ids:
        raise NotFoundError(f"no case with id or reference {ref!r}")
    if len(ids) > 1:
        raise ConflictError(f"several portfolios have a case {ref!r}: name the portfolio")
    row = await case_repo.get(session, ids[0])
    if row is None:
        raise NotFoundError(f"no case with id or reference {ref!r}")
    return row


def _masked(value: Any) -> Any:
    """Every string inside `value` with phone numbers and e-mail addresses masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


@router.get("/dashboard/campaigns/{campaign_id}/morning")
async def campaign_morning(
    campaign_id: uuid.UUID, session: SessionDep, who: Supervisor
) -> dict[str, Any]:
    """The campaign's morning for the charts: outcomes by local hour (the portfolio's
    zone) and by tier, refusals by rule, contact, right-party, promise and delivery rates."""
    return await morning(session, campaign_id)


@router.get("/dashboard/agents")
async def agents_board(session: SessionDep, now: NowDep, who: Supervisor) -> dict[str, Any]:
    """Every agent's state and seconds in it (with its campaign's zone, or none), whether
    a wrap-up is owed and why the dialer moved them away (`wrap-up overdue`), and per
    running campaign its live answers, abandoned calls and abandonment rate."""
    seen = await board(session)
    return {
        "now": now.isoformat(),
        "agents": [
            {
                "name": agent.name,
                "state": agent.state,
                "state_since": agent.state_since.isoformat(),
                "seconds_in_state": max(0, int((now - agent.state_since).total_seconds())),
                "campaign_id": str(agent.campaign_id) if agent.campaign_id else None,
                "timezone": zone,
                "wrap_up_owed": owes_wrap_up(agent.wrap_up_due_at),
                "away_reason": away_reason(
                    AgentState(agent.state), agent.wrap_up_due_at, agent.state_since
                ),
            }
            for agent, zone in seen.agents
        ],
        "campaigns": [
            {
                "id": str(c.id),
                "name": c.name,
                "portfolio": c.portfolio,
                "timezone": c.timezone,
                "live_answered": c.live_answered,
                "abandoned": c.abandoned,
                "abandonment_rate": c.rate,
            }
            for c in seen.campaigns
        ],
    }


@router.get("/dashboard/cases/{ref}")
async def case_view(
    ref: str,
    session: SessionDep,
    now: NowDep,
    who: CaseReader,
    portfolio: str | None = Query(default=None, max_length=64),
    at: Instant | None = None,
) -> dict[str, Any]:
    """A case (by id or external reference), its decision now or `at` (allowed actions,
    every refusal with its reasons and next-allowed time) and its timeline; the
    portfolio's zone to show times in; contact points masked."""
    case = await _find(session, ref, portfolio)
    labels: dict[str, str] = {}
    for party in case.parties:
        for cp in party.contact_points:
            value = mask_phone(cp.value) if cp.kind == "phone" else mask_text(cp.value)
            labels[str(cp.id)] = f"{party.name or party.role} ({party.role}) {cp.kind} {value}"
    decided = await decide_stored(session, case.id, at or now)
    decision = decision_out(decided).model_dump(mode="json")
    for item in (*decision["allowed"], *decision["refused"]):
        cp_id = item["candidate"]["contact_point_id"]
        item["who"] = labels.get(cp_id, "(contact point removed)")
    for refusal in decision["refused"]:
        for reason in refusal["reasons"]:
            reason["message"] = mask_text(reason["message"])
    for reason in decision["case_reasons"]:
        reason["message"] = mask_text(reason["message"])
    decision.pop("extra", None)  # zones by contact point: not needed on the page
    history = jsonable_encoder(await timeline(session, case.id))
    for entry in history["entries"]:
        if entry.get("contact_point_id"):
            entry["who"] = labels.get(str(entry["contact_point_id"]), "(contact point removed)")
    zone = await session.scalar(select(Portfolio.timezone).where(Portfolio.name == case.portfolio))
    return {
        "case": {
            "id": str(case.id),
            "external_ref": case.external_ref,
            "portfolio": case.portfolio,
            "timezone": zone or "UTC",
            "amount": str(case.amount),
            "currency": case.currency,
            "status": case.status,
            "tier": case.tier,
            "team": case.team,
        },
        "decision": decision,
        "timeline": _masked(history),
    }
