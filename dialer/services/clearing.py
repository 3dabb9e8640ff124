"""A supervisor's clearing of one protective fact, with a reason (architecture invariant
8): the one way a protective fact goes. Audited with the values before and after, so the
compliance audit rebuilds the case as it stood; shown in the case's timeline; the next
decision no longer has the fact."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import CaseRow
from dialer.db.repositories import cases
from dialer.db.repositories import protective as facts_repo
from dialer.services.changes import record_change
from dialer.services.protective import (
    CASE_FACTS,
    CONSENT_REVOKED,
    DO_NOT_CALL,
    OPTED_OUT,
    REFUSED,
    Subject,
    hold,
    named,
    recorded,
    revocations,
)
from strategy.model import CaseFlag, Channel


def _missing(field: str, why: str) -> ValidationFailedError:
    return ValidationFailedError(f"{field} is required: {why}", [FieldError(field, why)])


def _absent(what: str) -> ConflictError:
    return ConflictError(f"nothing to clear: {what}", [FieldError("fact", what)])


@dataclass(frozen=True, slots=True)
class _Cleared:
    """What one clearing took away: the subject, the fact's stored name, the audit values."""

    subject: Subject
    name: str
    before: dict[str, Any]
    after: dict[str, Any]


def _clear_case_flag(case: CaseRow, fact: str, now: datetime) -> _Cleared:
    if fact not in case.flags and fact != CaseFlag.DISPUTE.value:
        raise _absent(f"the case has no {fact} flag")
    before = {"flags": case.flags, "dispute_resolved_at": case.dispute_resolved_at}
    case.flags = sorted(set(case.flags) - {fact})
    if fact == CaseFlag.DISPUTE.value:  # a dispute made on a call is resolved with it
        case.dispute_resolved_at = now
    after = {"flags": case.flags, "dispute_resolved_at": case.dispute_resolved_at}
    return _Cleared(Subject("case", case.id, case.id), fact, before, after)


def _clear_refusal(case: CaseRow, party_id: uuid.UUID | None) -> _Cleared:
    party = next((p for p in case.parties if p.id == party_id), None)
    if party is None:
        raise _missing("party_id", "name a party of this case")
    if not party.refused_contact:
        raise _absent("this party has not refused contact")
    party.refused_contact = False
    return _Cleared(Subject("party", party.id, case.id), REFUSED, {REFUSED: True}, {REFUSED: False})


async def _clear_point_fact(
    session: AsyncSession,
    case: CaseRow,
    fact: str,
    contact_point_id: uuid.UUID | None,
    channel: Channel | None,
) -> _Cleared:
    """Do-not-call, an opt-out or a consent revocation, all held on a contact point."""
    points = {cp.id: cp for p in case.parties for cp in p.contact_points}
    point = points.get(contact_point_id) if contact_point_id else None
    if point is None:
        raise _missing("contact_point_id", "name a contact point of this case")
    subject = Subject("contact_point", point.id, case.id)
    if fact == DO_NOT_CALL:
        if not point.do_not_call:
            raise _absent("the contact point is not marked do-not-call")
        point.do_not_call = False
        return _Cleared(subject, DO_NOT_CALL, {DO_NOT_CALL: True}, {DO_NOT_CALL: False})
    if channel is None:
        raise _missing("channel", f"name the channel of the {fact}")
    prefix = OPTED_OUT if fact == OPTED_OUT.rstrip(":") else CONSENT_REVOKED
    name = f"{prefix}{channel.value}"
    if prefix == OPTED_OUT:
        if channel.value not in point.opted_out:
            raise _absent(f"the contact point has not opted out of {channel.value}")
        before = {"opted_out": point.opted_out}
        point.opted_out = sorted(set(point.opted_out) - {channel.value})
        return _Cleared(subject, name, before, {"opted_out": point.opted_out})
    if name not in await revocations(session, point.id):
        raise _absent(f"no revocation of {channel.value} consent is recorded")
    return _Cleared(subject, name, {}, {})  # the consent itself is granted again by an update


async def clear(
    session: AsyncSession,
    case_id: uuid.UUID,
    *,
    fact: str,
    reason: str,
    party_id: uuid.UUID | None,
    contact_point_id: uuid.UUID | None,
    channel: Channel | None,
    actor: str,
    now: datetime,
) -> CaseRow:
    """A supervisor's clearing of one protective fact, with a reason: the fact goes, the
    audit log keeps the values before and after (so `dialer audit` rebuilds the case as it
    stood), who recorded it and why it was cleared. Clearing `dispute` also resolves the
    disputes made on calls (`dispute_resolved_at`). The caller's role is checked in
    `api.deps`; this commits."""
    await hold(session, case_id)
    case = await cases.get(session, case_id)
    if case is None:
        raise NotFoundError(f"no case {case_id}")
    reason = reason.strip()
    if not reason:
        raise _missing("reason", "say why the protective fact is cleared")
    if fact in CASE_FACTS and not (fact == DO_NOT_CALL and contact_point_id is not None):
        cleared = _clear_case_flag(case, fact, now)
    elif fact == REFUSED:
        cleared = _clear_refusal(case, party_id)
    else:
        cleared = await _clear_point_fact(session, case, fact, contact_point_id, channel)
    subject, name = cleared.subject, cleared.name
    found = await facts_repo.provenance(session, [(subject.entity_id, name)])
    await facts_repo.forget(session, subject.entity_id, name)
    case.updated_at = now
    await record_change(
        session,
        actor=actor,
        now=now,
        action="protective.clear",
        entity=subject.entity,
        entity_id=subject.entity_id,
        before=cleared.before,
        after=cleared.after,
        detail={
            "case_id": str(case.id),
            "fact": named(name),
            "reason": reason,
            "recorded": recorded(found.get((subject.entity_id, name))),
        },
    )
    await session.commit()
    row = await cases.get(session, case_id)
    assert row is not None
    return row
