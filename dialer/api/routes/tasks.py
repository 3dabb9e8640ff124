"""Escalation tasks and approvals; assignment refresh."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body

from dialer.api.deps import (
    Approver,
    NowDep,
    PageLimit,
    SessionDep,
    SupervisorOrService,
    TaskReader,
    TaskWorker,
)
from dialer.api.filters import PortfolioFilter
from dialer.schemas.common import Page
from dialer.schemas.tasks import ApprovalIn, RefreshIn, RefreshOut, TaskOut, TaskStatus
from dialer.services import assignment, tasks

router = APIRouter(tags=["tasks"])


@router.get("/tasks", response_model=Page[TaskOut])
async def list_tasks(
    session: SessionDep,
    who: TaskReader,
    portfolio: PortfolioFilter,
    status: TaskStatus | None = None,
    requires_approval: bool | None = None,
    case_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: PageLimit = 100,
) -> object:
    """Tasks by creation (then id); `next_cursor` pages on."""
    rows, next_cursor = await tasks.list_tasks(
        session,
        status=status,
        portfolio=portfolio,
        requires_approval=requires_approval,
        case_id=case_id,
        cursor=cursor,
        limit=limit,
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.post("/tasks/{task_id}/approve", response_model=TaskOut)
async def approve_task(
    task_id: uuid.UUID, body: ApprovalIn, session: SessionDep, now: NowDep, who: Approver
) -> object:
    return await tasks.decide_approval(
        session, task_id, approve=True, note=body.note, actor=who.actor, now=now
    )


@router.post("/tasks/{task_id}/reject", response_model=TaskOut)
async def reject_task(
    task_id: uuid.UUID, body: ApprovalIn, session: SessionDep, now: NowDep, who: Approver
) -> object:
    return await tasks.decide_approval(
        session, task_id, approve=False, note=body.note, actor=who.actor, now=now
    )


@router.post("/tasks/{task_id}/complete", response_model=TaskOut)
async def complete_task(
    task_id: uuid.UUID, session: SessionDep, now: NowDep, who: TaskWorker
) -> object:
    """Mark a task done; one that needs approval must have been approved first."""
    return await tasks.complete(session, task_id, actor=who.actor, now=now)


@router.post("/portfolios/{name}/assignments/refresh", response_model=RefreshOut)
async def refresh_assignments(
    name: str,
    session: SessionDep,
    now: NowDep,
    who: SupervisorOrService,
    body: Annotated[RefreshIn | None, Body()] = None,
) -> object:
    """Re-decide every open case: store tiers, move cases whose tier changed to that
    tier's team, create escalation tasks once. The body (`at`) is optional: none is now."""
    at = body.at if body is not None and body.at is not None else now
    return await assignment.refresh(session, name, at=at, actor=who.actor)
