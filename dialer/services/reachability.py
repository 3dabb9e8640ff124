"""The debtor's recorded unreachability: "unreachable since D (skip-trace)", stated by an
agent or supervisor instead of derived from attempts.

Recording it loosens protection: while it holds, the engine treats the debtor as
unreachable, which is what allows location contacts with third parties (15 USC 1692b;
12 CFR 1006.10; GB/T 45251-2025 on contacts) and the disclosures a tier raises for an
unreachable debtor. So it is audited (`case.unreachable.record`, with the values before,
which the compliance audit uses to rebuild the case as it stood), names its source, and
expires: `until` is in the future and at most `MAX_RECORDED` ahead. It cannot be stated
when the case's own history says otherwise (a right-party contact at or after `since`).
Clearing it only tightens, so whoever may write the case may clear it (also audited).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import FieldError, ValidationFailedError
from dialer.db.models import AttemptRow, CaseRow, OutcomeRow, PartyRow
from dialer.facts.batch import NOT_CONTACTS
from dialer.services.cases import _change_case, get_case
from strategy.model import RIGHT_PARTY_RESULTS, PartyRole

# The longest a recorded finding holds before someone must confirm it again: a skip-trace
# goes stale, and third parties may be asked only while the debtor really cannot be
# found. A house bound; no statute names one.
MAX_RECORDED = timedelta(days=30)
_COLUMNS = ("unreachable_since", "unreachable_until", "unreachable_source")
_RIGHT_PARTY = sorted(r.value for r in RIGHT_PARTY_RESULTS)
_NOT_CONTACTS = sorted(s.value for s in NOT_CONTACTS)


async def record(
    session: AsyncSession,
    case_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime,
    source: str,
    actor: str,
    now: datetime,
) -> CaseRow:
    """Record (or replace) the debtor's unreachability on a case, audited."""
    row = await get_case(session, case_id)
    errors: list[FieldError] = []
    if since > now:
        errors.append(FieldError("since", f"is after now ({now.isoformat()}): not yet known"))
    if until <= now:
        errors.append(FieldError("until", f"must be after now ({now.isoformat()})"))
    elif until - now > MAX_RECORDED:
        errors.append(
            FieldError(
                "until",
                f"at most {MAX_RECORDED.days} days ahead ({(now + MAX_RECORDED).isoformat()}):"
                " record it again once it is confirmed",
            )
        )
    if not errors:
        reached = await _reached_since(session, case_id, since)
        if reached is not None:
            errors.append(
                FieldError(
                    "since",
                    f"the debtor was reached at {reached.isoformat()}, after this instant",
                )
            )
    if errors:
        raise ValidationFailedError("the unreachability cannot be recorded", errors)
    changes = {
        "unreachable_since": since,
        "unreachable_until": until,
        "unreachable_source": source,
    }
    return await _change_case(
        session, row, changes, "case.unreachable.record", actor=actor, now=now
    )


async def clear(session: AsyncSession, case_id: uuid.UUID, *, actor: str, now: datetime) -> CaseRow:
    """Remove the recorded unreachability (audited); nothing to do when none is recorded."""
    row = await get_case(session, case_id)
    if all(getattr(row, c) is None for c in _COLUMNS):
        return row
    changes = dict.fromkeys(_COLUMNS)
    return await _change_case(session, row, changes, "case.unreachable.clear", actor=actor, now=now)


async def _reached_since(
    session: AsyncSession, case_id: uuid.UUID, since: datetime
) -> datetime | None:
    """The first right-party contact with the debtor at or after `since` (an attempt, or
    an agent's disposition: one that names no attempt is taken as the debtor's), if any:
    a finding it contradicts is not recorded."""
    debtor = PartyRole.DEBTOR.value
    attempt = await session.scalar(
        select(AttemptRow.at)
        .join(PartyRow, PartyRow.id == AttemptRow.party_id)
        .where(
            PartyRow.role == debtor,
            AttemptRow.case_id == case_id,
            AttemptRow.at >= since,
            AttemptRow.result.in_(_RIGHT_PARTY),
            or_(AttemptRow.state.not_in(_NOT_CONTACTS), AttemptRow.provider_sid.is_not(None)),
        )
        .order_by(AttemptRow.at)
        .limit(1)
    )
    contact_at = func.coalesce(AttemptRow.at, OutcomeRow.recorded_at)  # when it was made
    outcome = await session.scalar(
        select(contact_at)
        .select_from(OutcomeRow)
        .outerjoin(AttemptRow, AttemptRow.id == OutcomeRow.attempt_id)
        .outerjoin(PartyRow, PartyRow.id == AttemptRow.party_id)
        .where(
            or_(OutcomeRow.attempt_id.is_(None), PartyRow.role == debtor),
            OutcomeRow.case_id == case_id,
            contact_at >= since,
            OutcomeRow.result.in_(_RIGHT_PARTY),
        )
        .order_by(contact_at)
        .limit(1)
    )
    found = [t for t in (attempt, outcome) if t is not None]
    return min(found) if found else None
