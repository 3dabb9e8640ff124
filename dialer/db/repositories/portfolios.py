from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import Portfolio
from dialer.db.repositories.paging import after_key


async def get(session: AsyncSession, name: str) -> Portfolio | None:
    return await session.get(Portfolio, name, populate_existing=True)


async def add(session: AsyncSession, row: Portfolio) -> None:
    session.add(row)
    await session.flush()


async def list_all(session: AsyncSession) -> Sequence[Portfolio]:
    return (await session.scalars(select(Portfolio).order_by(Portfolio.name))).all()


async def page(
    session: AsyncSession, *, after: Sequence[Any] | None, limit: int
) -> Sequence[Portfolio]:
    """Portfolios by name."""
    stmt = after_key(select(Portfolio), (Portfolio.name,), after, limit)
    return (await session.scalars(stmt)).all()
