"""Escalation tasks: created once per (case, key); nothing that needs approval proceeds
without a recorded approver (source 账款催收 §二; compliance.md, commercial)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError, NotFoundError
from dialer.db.models import TaskRow
from dialer.db.repositories import audit, tasks
from dialer.services import paging
from strategy.decision import Decision


async def record_requests(
    session: AsyncSession, case_id: uuid.UUID, decision: Decision, now: datetime
) -> int:
    """Turn a decision's task requests into tasks (exactly once each). Does not commit."""
    return await tasks.create_once(
        session,
        [
            {
                "id": uuid.uuid4(),
                "case_id": case_id,
                "key": t.key,
                "action": str(t.action),
                "requires_approval": t.requires_approval,
                "reason": t.reason,
                "status": "open",
                "created_at": now,
            }
            for t in decision.tasks
        ],
    )


async def list_tasks(
    session: AsyncSession,
    *,
    status: str | None,
    portfolio: str | None,
    requires_approval: bool | None,
    case_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[TaskRow], str | None]:
    """A page of tasks by (created_at, id) and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[TaskRow]:
        return await tasks.list_tasks(
            session,
            status=status,
            portfolio=portfolio,
            requires_approval=requires_approval,
            case_id=case_id,
            after=after,
            limit=n,
        )

    return await paging.page(
        fetch,
        cursor=cursor,
        limit=limit,
        parts=(paging.instant, uuid.UUID),
        key=lambda r: (r.created_at, r.id),
    )


async def _get(session: AsyncSession, task_id: uuid.UUID) -> TaskRow:
    row = await tasks.get(session, task_id)
    if row is None:
        raise NotFoundError(f"no task {task_id}")
    return row


async def decide_approval(
    session: AsyncSession,
    task_id: uuid.UUID,
    *,
    approve: bool,
    note: str | None,
    actor: str,
    now: datetime,
) -> TaskRow:
    row = await _get(session, task_id)
    if not row.requires_approval:
        raise ConflictError("this task does not need approval")
    if row.status != "open":
        raise ConflictError(f"this task is already {row.status}")
    row.status = "approved" if approve else "rejected"
    row.decided_by, row.decided_at, row.decision_note = actor, now, note
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="task.approve" if approve else "task.reject",
        entity="task",
        entity_id=str(row.id),
        detail={"case_id": str(row.case_id), "action": row.action, "note": note},
    )
    await session.commit()
    return row


async def complete(
    session: AsyncSession, task_id: uuid.UUID, *, actor: str, now: datetime
) -> TaskRow:
    row = await _get(session, task_id)
    if row.status == "done":
        raise ConflictError("this task is already done")
    if row.requires_approval and row.status != "approved":
        raise ConflictError(
            f"{row.action} needs a recorded approval before it proceeds (status: {row.status})"
        )
    if not row.requires_approval and row.status != "open":
        raise ConflictError(f"this task is {row.status}")
    row.status = "done"
    row.completed_by, row.completed_at = actor, now
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="task.complete",
        entity="task",
        entity_id=str(row.id),
        detail={"case_id": str(row.case_id), "action": row.action},
    )
    await session.commit()
    return row
