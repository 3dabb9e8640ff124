"""`/dashboard`: a small read-only page for supervisors, and the one JSON view it needs.

The page itself is static and holds no data: it asks for an API key and calls the JSON
API with it (`/v1/campaigns`, `/v1/campaigns/{id}/progress`, `/v1/dashboard/cases/{ref}`),
so it is authorised exactly like the API. The case view masks every phone number and
e-mail address before it leaves the service.
"""

from __future__ import annotations

import uuid
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from dialer.api.deps import CaseReader, NowDep, SessionDep
from dialer.core.errors import ConflictError, NotFoundError
from dialer.db.models import CaseRow
from dialer.db.repositories import cases as case_repo
from dialer.observability.redact import mask_phone, mask_text
from dialer.schemas.decisions import decision_out
from dialer.services.decisions import decide_stored

page = APIRouter(tags=["dashboard"])
router = APIRouter(tags=["dashboard"])


@cache
def _html() -> str:
    return files("dialer").joinpath("static/dashboard.html").read_text(encoding="utf-8")


@page.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    """The supervisor's page (static; it asks for an API key and reads the API with it)."""
    return HTMLResponse(_html())


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


@router.get("/dashboard/cases/{ref}")
async def case_view(
    ref: str,
    session: SessionDep,
    now: NowDep,
    who: CaseReader,
    portfolio: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """A case (by id or external reference) and its decision now: allowed actions, every
    refusal with its reasons and next-allowed time; contact points masked."""
    case = await _find(session, ref, portfolio)
    labels: dict[str, str] = {}
    for party in case.parties:
        for cp in party.contact_points:
            value = mask_phone(cp.value) if cp.kind == "phone" else mask_text(cp.value)
            labels[str(cp.id)] = f"{party.name or party.role} ({party.role}) {cp.kind} {value}"
    decision = decision_out(await decide_stored(session, case.id, now)).model_dump(mode="json")
    for item in (*decision["allowed"], *decision["refused"]):
        cp_id = item["candidate"]["contact_point_id"]
        item["who"] = labels.get(cp_id, "(contact point removed)")
    for refusal in decision["refused"]:
        for reason in refusal["reasons"]:
            reason["message"] = mask_text(reason["message"])
    for reason in decision["case_reasons"]:
        reason["message"] = mask_text(reason["message"])
    decision.pop("extra", None)  # zones by contact point: not needed on the page
    return {
        "case": {
            "id": str(case.id),
            "external_ref": case.external_ref,
            "portfolio": case.portfolio,
            "amount": str(case.amount),
            "currency": case.currency,
            "status": case.status,
        },
        "decision": decision,
    }
