"""API keys: create (the plaintext is returned once, never stored or logged), authenticate,
revoke; `VerifiedKeys` holds a verified key for a few seconds so that a request does not
read its key row again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.auth import Principal, Role, generate_key, hash_key, key_matches, key_prefix
from dialer.core.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)
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
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    actor: str,
    now: datetime,
    verified: VerifiedKeys | None = None,
) -> ApiKeyRow:
    """Revoke a key (not the last active admin's). `verified`: this process's cache, which
    forgets the key once the revocation is committed: here it stops working at once."""
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
    if verified is not None:
        verified.forget(row.id)
    return row


class VerifiedKeys:
    """Keys this process verified against the database in the last `seconds`, by the
    SHA-256 of the presented key (the plaintext is not held). A hit skips the key's row:
    the read was a fifth of a cached decision's cost. Only an accepted key is held, so a
    new key works at once, and a wrong one is read (and refused) every time.

    Revocation: the process that revokes a key forgets it on commit (`revoke_key`), so it
    is refused there on the next request; any other process refuses it at most `seconds`
    after it last read the row (DIALER_API_KEY_CACHE_SECONDS; 0 reads every request)."""

    def __init__(
        self, seconds: float, *, maxsize: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.maxsize = maxsize
        self.clock = clock
        self._held: dict[str, tuple[float, Principal]] = {}

    def get(self, presented: str) -> Principal | None:
        if self.seconds <= 0:
            return None
        digest = hash_key(presented)
        found = self._held.get(digest)
        if found is None:
            return None
        if self.clock() >= found[0]:
            del self._held[digest]
            return None
        return found[1]

    def put(self, presented: str, principal: Principal) -> None:
        if self.seconds <= 0:
            return
        if len(self._held) >= self.maxsize:  # oldest verified first out
            del self._held[next(iter(self._held))]
        self._held[hash_key(presented)] = (self.clock() + self.seconds, principal)

    def forget(self, key_id: uuid.UUID) -> None:
        for digest in [d for d, (_, p) in self._held.items() if p.key_id == key_id]:
            del self._held[digest]


async def authenticate(
    session: AsyncSession, presented: str | None, verified: VerifiedKeys | None = None
) -> Principal:
    """The principal of a presented key: from `verified` when it holds the key, else from
    its row (and then held there)."""
    if not presented:
        raise UnauthorizedError("missing credentials: send Authorization: Bearer <key>")
    if verified is not None and (held := verified.get(presented)) is not None:
        return held
    prefix = key_prefix(presented)
    row = await keys.by_prefix(session, prefix) if prefix else None
    if row is None or row.revoked_at is not None or not key_matches(presented, row.hash):
        raise UnauthorizedError("invalid or revoked API key")
    principal = Principal(key_id=row.id, name=row.name, role=Role(row.role))
    if verified is not None:
        verified.put(presented, principal)
    return principal


async def refuse_unknown_agents(session: AsyncSession, names: Sequence[str], field: str) -> None:
    """422 naming `field` for each of `names` that no active agent key holds: an agent is
    the holder of such a key (their "my cases" and desk are that key's), so work handed to
    any other name would reach nobody."""
    known = await keys.active_names(session, names, Role.AGENT.value)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValidationFailedError(
            f"no active agent key named {', '.join(repr(n) for n in unknown)}",
            [FieldError(field, f"{n!r} is not the name of an active agent key") for n in unknown],
        )
