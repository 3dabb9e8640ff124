"""Attempts, outcomes and payments: the history the engine decides on."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, OutcomeRow, PaymentRow
from dialer.domain.attempts import LIVE_OR_DONE

_CONTACTS = sorted(s.value for s in LIVE_OR_DONE)


async def add_attempt(session: AsyncSession, row: AttemptRow) -> None:
    session.add(row)
    await session.flush()


async def get_attempt(session: AsyncSession, attempt_id: uuid.UUID) -> AttemptRow | None:
    return await session.get(AttemptRow, attempt_id)


async def add_outcome(session: AsyncSession, row: OutcomeRow) -> None:
    session.add(row)
    await session.flush()


async def add_payment(session: AsyncSession, row: PaymentRow) -> None:
    session.add(row)
    await session.flush()
