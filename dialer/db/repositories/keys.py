from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import ApiKeyRow


async def add(session: AsyncSession, row: ApiKeyRow) -> None:
    session.add(row)
    await session.flush()


async def by_prefix(session: AsyncSession, prefix: str) -> ApiKeyRow | None:
    return await session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKeyRow | None:
    return await session.get(ApiKeyRow, key_id)


async def list_all(session: AsyncSession) -> Sequence[ApiKeyRow]:
    return (await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))).all()


async def revoke(session: AsyncSession, row: ApiKeyRow, at: datetime) -> None:
    row.revoked_at = at
    await session.flush()
