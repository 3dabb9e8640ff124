"""Attempts, outcomes and payments: the history the engine decides on."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, OutcomeRow, PaymentRow
from dialer.domain.attempts import LIVE_OR_DONE

_CONTACTS = sorted(s.value for s in LIVE_OR_DONE)


async def for_cases(
    session: AsyncSession, case_ids: Sequence[uuid.UUID], until: datetime
) -> tuple[dict[uuid.UUID, list[AttemptRow]], dict[uuid.UUID, list[PaymentRow]]]:
    """Attempts and payments up to `until` for many cases, in time order.

    Only attempts that reached (or may have reached) a provider or a person count:
    planned, queued, refused, cancelled and never-sent ones are not contacts."""
    attempts: dict[uuid.UUID, list[AttemptRow]] = defaultdict(list)
    payments: dict[uuid.UUID, list[PaymentRow]] = defaultdict(list)
    if not case_ids:
        return attempts, payments
    ids = list(case_ids)
    for a in await session.scalars(
        select(AttemptRow)
        .where(
            AttemptRow.case_id.in_(ids),
            AttemptRow.at <= until,
            AttemptRow.state.in_(_CONTACTS),
        )
        .order_by(AttemptRow.at)
    ):
        attempts[a.case_id].append(a)
    for p in await session.scalars(
        select(PaymentRow)
        .where(PaymentRow.case_id.in_(ids), PaymentRow.at <= until)
        .order_by(PaymentRow.at)
    ):
        payments[p.case_id].append(p)
    return attempts, payments


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
