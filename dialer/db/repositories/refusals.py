"""Per-case planning refusals: written by the planner with its batch, read by the
case's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import PlanRefusalRow

_REFUSALS: Table = PlanRefusalRow.__table__  # type: ignore[assignment]


async def add(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record refusals in the session's transaction (a case a campaign already recorded
    keeps its first row: a batch is planned once)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(_REFUSALS).on_conflict_do_nothing(index_elements=["campaign_id", "case_id"])
    await session.execute(stmt, rows)


async def of_case(session: AsyncSession, case_id: uuid.UUID) -> Sequence[PlanRefusalRow]:
    stmt = select(PlanRefusalRow).where(PlanRefusalRow.case_id == case_id)
    return (await session.scalars(stmt.order_by(PlanRefusalRow.planned_at))).all()
