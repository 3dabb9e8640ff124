"""API keys: create (the plaintext is returned once, never stored or logged), authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.auth import Principal, Role, generate_key, key_matches, key_prefix
from dialer.core.errors import ConflictError, FieldError, NotFoundError, UnauthorizedError
from dialer.db.models import ApiKeyRow
from dialer.db.repositories import audit, keys
from dialer.services import paging


async def create_key(
    session: AsyncSession, *, role: Role, name: str, actor: str, now: datetime
) -> tuple[ApiKeyRow, str]:
    """A new key. Its name is an identity (an agent's "my cases" are the cases assigned to
    that name; the audit names the actor by it), so no two active keys share a name; the
    unique index `uq_api_keys_active_name` holds it under concurrent requests too."""
    holder = await keys.active_by_name(session, name)
    if holder is not None:
        raise _name_taken(name, holder.role)
    new = generate_key()
    row = ApiKeyRow(
        id=uuid.uuid4(),
        name=name,
        role=role.value,
        prefix=new.prefix,
        hash=new.hash,
        created_at=now,
    )
    try:
        await keys.add(session, row)
    except IntegrityError as exc:  # a concurrent request took the name
        await session.rollback()
        raise _name_taken(name, None) from exc
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="key.create",
        entity="api_key",
        entity_id=str(row.id),
        detail={"name": name, "role": role.value, "prefix": new.prefix},
    )
    await session.commit()
    return row, new.plaintext


def _name_taken(name: str, role: str | None) -> ConflictError:
    held = f" (role {role})" if role else ""
    return ConflictError(
        f"an active key is already named {name!r}{held}: a key's name is its holder's "
        "identity; revoke that key first or choose another name",
        [FieldError("name", "held by an active key")],
    )


async def list_keys(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[ApiKeyRow], str | None]:
    """A page of keys by (created_at, id) and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[ApiKeyRow]:
        return await keys.page(session, after=after, limit=n)

    return await paging.page(
        fetch,
        cursor=cursor,
        limit=limit,
        parts=(paging.instant, uuid.UUID),
        key=lambda r: (r.created_at, r.id),
    )


async def revoke_key(
    session: AsyncSession, key_id: uuid.UUID, *, actor: str, now: datetime
) -> ApiKeyRow:
    row = await keys.get(session, key_id)
    if row is None:
        raise NotFoundError(f"no API key {key_id}")
    if row.revoked_at is None:
        if row.role == Role.ADMIN.value:
            # Locked on PostgreSQL: two admins revoking each other at once leave one.
            admins = await keys.lock_active_admins(session)
            if [a.id for a in admins] == [row.id]:
                raise ConflictError(
                    "this is the last active admin key: nobody could manage keys or "
                    "portfolios without it; create another admin key first"
                )
        await keys.revoke(session, row, now)
        await audit.append(
            session,
            at=now,
            actor=actor,
            action="key.revoke",
            entity="api_key",
            entity_id=str(row.id),
        )
        await session.commit()
    return row


async def authenticate(session: AsyncSession, presented: str | None) -> Principal:
    if not presented:
        raise UnauthorizedError("missing credentials: send Authorization: Bearer <key>")
    prefix = key_prefix(presented)
    row = await keys.by_prefix(session, prefix) if prefix else None
    if row is None or row.revoked_at is not None or not key_matches(presented, row.hash):
        raise UnauthorizedError("invalid or revoked API key")
    return Principal(key_id=row.id, name=row.name, role=Role(row.role))
