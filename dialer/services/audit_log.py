"""The audit log as the API lists it: pages in the order it was written."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AuditRow
from dialer.db.repositories import audit
from dialer.services import paging


async def list_entries(
    session: AsyncSession,
    *,
    entity: str | None,
    entity_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditRow], str | None]:
    """A page of entries by id (the order they were written) and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[AuditRow]:
        return await audit.list_entries(
            session, entity=entity, entity_id=entity_id, after=after, limit=n
        )

    return await paging.page(
        fetch, cursor=cursor, limit=limit, parts=(paging.bigint,), key=lambda r: (r.id,)
    )
