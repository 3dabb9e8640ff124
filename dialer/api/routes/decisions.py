"""Decisions for stored cases and what-if previews."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from dialer.api.deps import CaseReader, NowDep, PreviewUser, SessionDep, SettingsDep
from dialer.schemas.common import Instant
from dialer.schemas.decisions import DecisionOut, PreviewIn, decision_out
from dialer.services import decisions

router = APIRouter(tags=["decisions"])


@router.get("/cases/{case_id}/decision", response_model=DecisionOut)
async def case_decision(
    case_id: uuid.UUID,
    session: SessionDep,
    now: NowDep,
    who: CaseReader,
    at: Instant | None = None,
) -> object:
    """Allowed actions now (or `at`), and every refusal with its rule, reason and the
    next instant it would be allowed."""
    return decision_out(await decisions.decide_stored(session, case_id, at or now))


@router.post("/decisions/preview", response_model=DecisionOut)
async def preview_decision(
    body: PreviewIn, session: SessionDep, settings: SettingsDep, who: PreviewUser
) -> object:
    """What if: decide for a case given whole, with its history, at an instant. Stores
    nothing. Only an admin may name a `profile` other than the strategy's own or its
    portfolio's, and only a stricter one (422 otherwise)."""
    return decision_out(await decisions.preview(session, body, settings, role=who.role))
