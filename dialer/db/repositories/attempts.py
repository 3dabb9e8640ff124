"""Attempts as lists and exports read them (with their case's portfolio and reference),
and promises to pay by due day: keyset pages, columns only (no ORM objects, so an
export's session holds nothing between pages)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, CaseRow, ContactPointRow
from dialer.db.repositories.paging import after_key

_A, _C = AttemptRow, CaseRow
_LISTED = (
    _A.id, _A.case_id, _C.portfolio, _C.external_ref, _A.campaign_id, _A.party_id,
    _A.contact_point_id, _A.channel, _A.state, _A.result, _A.at, _A.planned_at,
    _A.reserved_at, _A.sent_at, _A.answered_by, _A.duration_seconds, _A.provider_status,
    _A.error_code, _A.promise_amount, _A.promise_date, _A.callback_at,
    _A.strategy_version_id, _A.profile, _A.allowed_by,
)  # fmt: skip
_PROMISED = (
    _A.id.label("attempt_id"), _A.case_id, _C.portfolio, _C.external_ref, _A.promise_date,
    _A.promise_amount, _C.currency, _C.balance, _A.result, _A.channel, _A.at, _C.agent,
)  # fmt: skip
_PROMISED = (
    _A.id.label("attempt_id"), _A.case_id, _C.portfolio, _C.external_ref, _A.promise_date,
    _A.promise_amount, _C.currency, _C.balance, _A.result, _A.channel, _A.at, _C.agent,
)  # fmt: skip
# The order of every attempts list and export: by instant, then id.
ATTEMPT_ORDER = (_A.at, _A.id)


def _filtered(
    columns: Sequence[Any],
    *,
    campaign: uuid.UUID | None = None,
    case: uuid.UUID | None = None,
    portfolio: str | None = None,
    channel: str | None = None,
    state: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    stmt = select(*columns).join(_C, _C.id == _A.case_id)
    for column, value in (
        (_A.campaign_id, campaign),
        (_A.case_id, case),
        (_C.portfolio, portfolio),
        (_A.channel, channel),
        (_A.state, state),
        (_A.result, outcome),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(_A.at >= since)
    if until is not None:
        stmt = stmt.where(_A.at < until)
    return stmt


async def page(
    session: AsyncSession,
    *,
    after: Sequence[Any] | None,
    limit: int,
    with_contact: bool = False,
    **filters: Any,
) -> Sequence[RowMapping]:
    """Attempts matching `filters` after the key (at, id), at most `limit`; with the
    contact point's kind and value when `with_contact` (the export)."""
    columns: list[Any] = list(_LISTED)
    if with_contact:
        columns += [
            ContactPointRow.kind.label("contact_kind"),
            ContactPointRow.value.label("contact_value"),
        ]
    stmt = _filtered(columns, **filters)
    if with_contact:
        stmt = stmt.join(ContactPointRow, ContactPointRow.id == _A.contact_point_id)
    stmt = after_key(stmt, ATTEMPT_ORDER, after, limit)
    rows: Sequence[RowMapping] = (await session.execute(stmt)).mappings().all()
    return rows


async def promises(
    session: AsyncSession,
    *,
    due_from: date | None,
    due_to: date | None,
    portfolio: str | None,
    after: Sequence[Any] | None,
    limit: int,
) -> Sequence[RowMapping]:
    """Attempts that recorded a promise to pay due in [due_from, due_to], by (due day,
    attempt id), with the case's reference, currency, balance and agent."""
    stmt = select(*_PROMISED).join(_C, _C.id == _A.case_id).where(_A.promise_date.is_not(None))
    if due_from is not None:
        stmt = stmt.where(_A.promise_date >= due_from)
    if due_to is not None:
        stmt = stmt.where(_A.promise_date <= due_to)
    if portfolio is not None:
        stmt = stmt.where(_C.portfolio == portfolio)
    stmt = after_key(stmt, (_A.promise_date, _A.id), after, limit)
    return (await session.execute(stmt)).mappings().all()
