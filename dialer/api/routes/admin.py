"""Admin: portfolios and their guardrail profile, API keys, the audit log."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from dialer.api.deps import Admin, AuditReader, CaseReader, NowDep, PageLimit, SessionDep
from dialer.schemas.admin import (
    AuditOut,
    KeyIn,
    KeyOut,
    NewKeyOut,
    PortfolioIn,
    PortfolioOut,
    PortfolioProfileIn,
)
from dialer.schemas.common import Page
from dialer.services import audit_log, keys, portfolios

router = APIRouter(tags=["admin"])


@router.post("/portfolios", status_code=201, response_model=PortfolioOut)
async def create_portfolio(
    body: PortfolioIn, session: SessionDep, now: NowDep, who: Admin
) -> object:
    return await portfolios.create_portfolio(session, **body.model_dump(), actor=who.actor, now=now)


@router.get("/portfolios", response_model=Page[PortfolioOut])
async def list_portfolios(
    session: SessionDep, who: CaseReader, cursor: str | None = None, limit: PageLimit = 100
) -> object:
    """Portfolios by name; `next_cursor` pages on."""
    rows, next_cursor = await portfolios.list_portfolios(session, cursor=cursor, limit=limit)
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/portfolios/{name}", response_model=PortfolioOut)
async def get_portfolio(name: str, session: SessionDep, who: CaseReader) -> object:
    return await portfolios.get_portfolio(session, name)


@router.put("/portfolios/{name}/profile", response_model=PortfolioOut)
async def set_portfolio_profile(
    name: str, body: PortfolioProfileIn, session: SessionDep, now: NowDep, who: Admin
) -> object:
    """Change the portfolio's guardrail profile. A profile that does not tighten the
    current one needs a `reason` (422 without), recorded in the audit log."""
    return await portfolios.set_profile(
        session, name, profile=body.profile, reason=body.reason, actor=who.actor, now=now
    )


@router.post("/keys", status_code=201, response_model=NewKeyOut)
async def create_key(body: KeyIn, session: SessionDep, now: NowDep, who: Admin) -> object:
    row, plaintext = await keys.create_key(
        session, role=body.role, name=body.name, actor=who.actor, now=now
    )
    return {**KeyOut.model_validate(row).model_dump(), "key": plaintext}


@router.get("/keys", response_model=Page[KeyOut])
async def list_keys(
    session: SessionDep, who: Admin, cursor: str | None = None, limit: PageLimit = 100
) -> object:
    """Keys by creation (then id), revoked ones too; `next_cursor` pages on."""
    rows, next_cursor = await keys.list_keys(session, cursor=cursor, limit=limit)
    return {"items": rows, "next_cursor": next_cursor}


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(
    key_id: uuid.UUID, request: Request, session: SessionDep, now: NowDep, who: Admin
) -> object:
    """Revoke a key: refused from the next request on this process, within
    DIALER_API_KEY_CACHE_SECONDS on every other (`dialer.services.keys.VerifiedKeys`)."""
    verified = request.app.state.verified_keys
    return await keys.revoke_key(session, key_id, actor=who.actor, now=now, verified=verified)


@router.get("/audit", response_model=Page[AuditOut])
async def list_audit(
    session: SessionDep,
    who: AuditReader,
    entity: str | None = None,
    entity_id: str | None = None,
    cursor: str | None = None,
    limit: PageLimit = 100,
) -> object:
    """The audit log in the order it was written; `next_cursor` pages on."""
    rows, next_cursor = await audit_log.list_entries(
        session, entity=entity, entity_id=entity_id, cursor=cursor, limit=limit
    )
    return {"items": rows, "next_cursor": next_cursor}
