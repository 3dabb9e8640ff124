from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AuditRow
from dialer.db.repositories.paging import after_key


async def append(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before_digest: str | None = None,
    after_digest: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            at=at,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            before_digest=before_digest,
            after_digest=after_digest,
            detail=detail or {},
        )
    )
    await session.flush()


async def list_entries(
    session: AsyncSession,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    after: Sequence[Any] | None = None,
    limit: int = 100,
) -> Sequence[AuditRow]:
    stmt = select(AuditRow)
    if entity:
        stmt = stmt.where(AuditRow.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditRow.entity_id == entity_id)
    stmt = after_key(stmt, (AuditRow.id,), after, limit)
    return (await session.scalars(stmt)).all()


async def entries_for(
    session: AsyncSession, action: str, entity_ids: Sequence[str]
) -> Sequence[AuditRow]:
    """The entries of one action about any of `entity_ids`, oldest first."""
    stmt = select(AuditRow).where(AuditRow.action == action, AuditRow.entity_id.in_(entity_ids))
    return (await session.scalars(stmt.order_by(AuditRow.id))).all()
