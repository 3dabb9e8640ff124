from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import ApiKeyRow
from dialer.db.repositories.paging import after_key


async def add(session: AsyncSession, row: ApiKeyRow) -> None:
    session.add(row)
    await session.flush()


async def by_prefix(session: AsyncSession, prefix: str) -> ApiKeyRow | None:
    return await session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKeyRow | None:
    return await session.get(ApiKeyRow, key_id)


async def list_all(session: AsyncSession) -> Sequence[ApiKeyRow]:
    return (await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))).all()


async def page(
    session: AsyncSession, *, after: Sequence[Any] | None, limit: int
) -> Sequence[ApiKeyRow]:
    """Keys by (created_at, id)."""
    stmt = after_key(select(ApiKeyRow), (ApiKeyRow.created_at, ApiKeyRow.id), after, limit)
    return (await session.scalars(stmt)).all()


async def revoke(session: AsyncSession, row: ApiKeyRow, at: datetime) -> None:
    row.revoked_at = at
    await session.flush()


async def active_by_name(session: AsyncSession, name: str) -> ApiKeyRow | None:
    return await session.scalar(
        select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
    )


async def lock_active_admins(session: AsyncSession) -> Sequence[ApiKeyRow]:
    """The active admin keys, locked FOR UPDATE on PostgreSQL until the caller commits."""
    stmt = (
        select(ApiKeyRow)
        .where(ApiKeyRow.role == "admin", ApiKeyRow.revoked_at.is_(None))
        .order_by(ApiKeyRow.id)
        .with_for_update()
    )
    return (await session.scalars(stmt.execution_options(populate_existing=True))).all()


async def active_names(session: AsyncSession, names: Sequence[str], role: str) -> set[str]:
    """Which of `names` an active key of `role` holds."""
    stmt = select(ApiKeyRow.name).where(
        ApiKeyRow.name.in_(list(names)), ApiKeyRow.role == role, ApiKeyRow.revoked_at.is_(None)
    )
    return set((await session.scalars(stmt)).all())
