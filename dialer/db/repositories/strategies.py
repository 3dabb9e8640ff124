from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import StrategyRow
from dialer.db.repositories.paging import after_key


async def get(session: AsyncSession, strategy_id: uuid.UUID) -> StrategyRow | None:
    return await session.get(StrategyRow, strategy_id)


async def add(session: AsyncSession, row: StrategyRow) -> None:
    session.add(row)
    await session.flush()


async def next_version(session: AsyncSession, portfolio: str, name: str) -> int:
    current = await session.scalar(
        select(func.max(StrategyRow.version)).where(
            StrategyRow.portfolio == portfolio, StrategyRow.name == name
        )
    )
    return int(current or 0) + 1


async def list_for(
    session: AsyncSession,
    portfolio: str | None,
    status: str | None,
    *,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
) -> Sequence[StrategyRow]:
    """Versions by (portfolio, name, version), after a key when paging."""
    stmt = select(StrategyRow)
    if portfolio:
        stmt = stmt.where(StrategyRow.portfolio == portfolio)
    if status:
        stmt = stmt.where(StrategyRow.status == status)
    order = (StrategyRow.portfolio, StrategyRow.name, StrategyRow.version)
    stmt = stmt.order_by(*order) if limit is None else after_key(stmt, order, after, limit)
    return (await session.scalars(stmt)).all()


async def active_for(session: AsyncSession, portfolio: str) -> Sequence[StrategyRow]:
    return (
        await session.scalars(
            select(StrategyRow).where(
                StrategyRow.portfolio == portfolio, StrategyRow.status == "active"
            )
        )
    ).all()
