"""The audit log: appended to, never updated; an audited change is the values before and
after, as JSON, with their digests.

The one conversion of a row's values for the audit log (`jsonable`): lists and sets are
JSON lists (sorted, of text), numbers and booleans stay, dates, decimals and ids are
text. The compliance audit (`dialer.services.audit`) reads them back to rebuild a case
as it stood. Appends are Core inserts, so the dispatch worker's connection and a
service's session write the same rows the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.core.digest import digest
from dialer.db.models import AuditRow
from dialer.db.repositories.paging import after_key

_AUDIT: Table = AuditRow.__table__  # type: ignore[assignment]


async def append(
    conn: AsyncSession | AsyncConnection,
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
    await conn.execute(
        insert(_AUDIT).values(
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


def jsonable(value: Any) -> Any:
    """A column's value as the audit log stores it."""
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(str(v) for v in value)
    return value if isinstance(value, str | int | bool | type(None)) else str(value)


async def record_change(
    conn: AsyncSession | AsyncConnection,
    *,
    actor: str,
    now: datetime,
    action: str,
    entity: str,
    entity_id: uuid.UUID,
    before: dict[str, Any],
    after: dict[str, Any],
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one change; `detail` adds keys beside `before` and `after`."""
    b = {k: jsonable(v) for k, v in before.items()}
    a = {k: jsonable(v) for k, v in after.items()}
    await append(
        conn,
        at=now,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before_digest=digest(b),
        after_digest=digest(a),
        detail={**(detail or {}), "before": b, "after": a},
    )


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
