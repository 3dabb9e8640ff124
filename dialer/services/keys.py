"""API keys: create (the plaintext is returned once, never stored or logged), authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.auth import Principal, Role, generate_key, key_matches, key_prefix
from dialer.db.models import ApiKeyRow
from dialer.db.repositories import audit, keys
from dialer.errors import NotFoundError, UnauthorizedError


async def create_key(
    session: AsyncSession, *, role: Role, name: str, actor: str, now: datetime
) -> tuple[ApiKeyRow, str]:
    new = generate_key()
    row = ApiKeyRow(
        id=uuid.uuid4(),
        name=name,
        role=role.value,
        prefix=new.prefix,
        hash=new.hash,
        created_at=now,
    )
    await keys.add(session, row)
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


async def list_keys(session: AsyncSession) -> Sequence[ApiKeyRow]:
    return await keys.list_all(session)


async def revoke_key(
    session: AsyncSession, key_id: uuid.UUID, *, actor: str, now: datetime
) -> ApiKeyRow:
    row = await keys.get(session, key_id)
    if row is None:
        raise NotFoundError(f"no API key {key_id}")
    if row.revoked_at is None:
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
