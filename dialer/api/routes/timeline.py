"""A case's timeline and the summary an agent reads before the next call."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from dialer.api.deps import CaseReader, SessionDep
from dialer.services.timeline import timeline

router = APIRouter(tags=["cases"])


@router.get("/cases/{case_id}/timeline")
async def case_timeline(case_id: uuid.UUID, session: SessionDep, who: CaseReader) -> Any:
    """Attempts (states, results), collectors' moves for its calls (`agent`: held,
    bridged, wrap-up owed, freed, sent away at the wrap-up limit; by whom), outcomes
    with notes, tasks, inbound messages, protective facts (who recorded them; a
    supervisor's clearing with its reason),
    campaigns' planning refusals (`plan_refusal`: rules, reason, next allowed) and
    strategy versions, oldest first, plus `latest_summary` (the last outcome)."""
    return await timeline(session, case_id)
