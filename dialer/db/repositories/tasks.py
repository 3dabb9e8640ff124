from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import CaseRow, TaskRow
from dialer.db.repositories.paging import after_key

_TASKS: Table = TaskRow.__table__  # type: ignore[assignment]


async def create_once(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert tasks, skipping any (case, key) that already exists; returns how many new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    created = 0
    for row in rows:  # one by one: rowcount per row tells created from already there
        stmt = (
            insert(_TASKS).values(**row).on_conflict_do_nothing(index_elements=["case_id", "key"])
        )
        result = await session.execute(stmt)
        created += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return created


async def get(session: AsyncSession, task_id: uuid.UUID) -> TaskRow | None:
    return await session.get(TaskRow, task_id, populate_existing=True)


async def list_tasks(
    session: AsyncSession,
    *,
    status: str | None,
    portfolio: str | None,
    requires_approval: bool | None,
    case_id: uuid.UUID | None,
    after: Sequence[Any] | None,
    limit: int,
) -> Sequence[TaskRow]:
    """Tasks by (created_at, id), after a key when paging."""
    stmt = select(TaskRow)
    if status:
        stmt = stmt.where(TaskRow.status == status)
    if requires_approval is not None:
        stmt = stmt.where(TaskRow.requires_approval == requires_approval)
    if case_id:
        stmt = stmt.where(TaskRow.case_id == case_id)
    if portfolio:
        stmt = stmt.where(
            TaskRow.case_id.in_(select(CaseRow.id).where(CaseRow.portfolio == portfolio))
        )
    stmt = after_key(stmt, (TaskRow.created_at, TaskRow.id), after, limit)
    return (await session.scalars(stmt)).all()
