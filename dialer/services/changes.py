"""An audited change: the values before and after, as JSON, with their digests.

The one conversion of a row's values for the audit log (`jsonable`): lists and sets are
JSON lists (sorted, of text), numbers and booleans stay, dates, decimals and ids are
text. The compliance audit (`dialer.services.audit`) reads them back to rebuild a case
as it stood.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.repositories import audit
from dialer.services.digest import digest


def jsonable(value: Any) -> Any:
    """A column's value as the audit log stores it."""
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(str(v) for v in value)
    return value if isinstance(value, str | int | bool | type(None)) else str(value)


async def record_change(
    session: AsyncSession,
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
    await audit.append(
        session,
        at=now,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before_digest=digest(b),
        after_digest=digest(a),
        detail={**(detail or {}), "before": b, "after": a},
    )
