"""Webhook events (insert-or-ignore on the idempotency key), attempts as callbacks find
them, contact points by number, inbound messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, ContactPointRow, InboundMessageRow, WebhookEventRow

_EVENTS: Table = WebhookEventRow.__table__  # type: ignore[assignment]


async def insert_event(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    attempt_id: uuid.UUID | None,
    provider_sid: str | None,
    status: str,
    received_at: datetime,
    fields: dict[str, Any],
) -> int | None:
    """The new event's id, or None when an event with this key is already recorded."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(_EVENTS)
        .values(
            key=key,
            kind=kind,
            attempt_id=attempt_id,
            provider_sid=provider_sid,
            status=status,
            received_at=received_at,
            fields=fields,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(_EVENTS.c.id)
    )
    found: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def set_event_status(session: AsyncSession, event_id: int, status: str) -> None:
    await session.execute(
        update(WebhookEventRow).where(WebhookEventRow.id == event_id).values(status=status)
    )


async def attempt_for_update(
    session: AsyncSession, attempt_id: uuid.UUID | None, provider_sid: str | None
) -> AttemptRow | None:
    """The attempt a callback names (our id first, the provider's id second), locked
    against a concurrent callback for the same attempt (PostgreSQL; SQLite serialises
    writers anyway)."""
    if attempt_id is not None:
        stmt = select(AttemptRow).where(AttemptRow.id == attempt_id)
    elif provider_sid:
        stmt = select(AttemptRow).where(AttemptRow.provider_sid == provider_sid)
    else:
        return None
    stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(stmt)).first()


async def phone_points(session: AsyncSession, number: str) -> Sequence[ContactPointRow]:
    """Every phone contact point with this number, on any case, locked for update."""
    stmt = (
        select(ContactPointRow)
        .where(ContactPointRow.kind == "phone", ContactPointRow.value == number)
        .order_by(ContactPointRow.case_id, ContactPointRow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).all()


async def contact_point(session: AsyncSession, cp_id: uuid.UUID) -> ContactPointRow | None:
    stmt = (
        select(ContactPointRow)
        .where(ContactPointRow.id == cp_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).first()


async def add_inbound(session: AsyncSession, rows: Sequence[InboundMessageRow]) -> None:
    session.add_all(rows)
    await session.flush()


async def unmatched_events(
    session: AsyncSession, *, before: datetime, limit: int
) -> Sequence[WebhookEventRow]:
    stmt = (
        select(WebhookEventRow)
        .where(WebhookEventRow.status == "unmatched", WebhookEventRow.received_at <= before)
        .order_by(WebhookEventRow.received_at, WebhookEventRow.id)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def stuck_attempts(
    session: AsyncSession, *, states: Sequence[str], before: datetime, limit: int
) -> Sequence[AttemptRow]:
    """Attempts still in one of `states` whose last change is older than `before`."""
    stmt = (
        select(AttemptRow)
        .where(AttemptRow.state.in_(list(states)), AttemptRow.at <= before)
        .order_by(AttemptRow.at)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()
