"""What the audit reads: the attempts it replays, and per case everything the replay
needs, in one batch of cases at a time (the case as it is now, its contacts, payments,
audited changes and the provider ids its callbacks named)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, AuditRow, CaseRow, PaymentRow, WebhookEventRow
from dialer.domain.attempts import LIVE_OR_DONE
from dialer.facts.as_of import ProviderOptOut
from dialer.facts.batch import load_facts
from strategy.model import Case, Channel

CONTACTS = sorted(s.value for s in LIVE_OR_DONE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reached_provider() -> Any:
    """The attempt holds a provider id, on its row or named by one of its callbacks."""
    return or_(
        AttemptRow.provider_sid.is_not(None),
        exists().where(
            WebhookEventRow.attempt_id == AttemptRow.id,
            WebhookEventRow.provider_sid.is_not(None),
        ),
    )


def _contact() -> Any:
    """A contact: in a state where a provider holds it, or (whatever its state) with a
    provider id, since a call placed is a call placed however its record ended."""
    return or_(AttemptRow.state.in_(CONTACTS), _reached_provider())


def audited(since: datetime | None) -> list[Any]:
    """The attempts the audit replays: contacts that reached a reservation, a provider or
    a campaign (reserved at or after `since`)."""
    where: list[Any] = [
        _contact(),
        or_(
            AttemptRow.reserved_at.is_not(None),
            AttemptRow.provider_sid.is_not(None),
            AttemptRow.sent_at.is_not(None),
            AttemptRow.campaign_id.is_not(None),
        ),
    ]
    if since is not None:
        where.append(func.coalesce(AttemptRow.reserved_at, AttemptRow.at) >= since)
    return where


def cases_page(
    since: datetime | None, portfolio: str | None, after: uuid.UUID | None, limit: int
) -> Any:
    stmt = select(AttemptRow.case_id).where(*audited(since))
    if portfolio is not None:
        stmt = stmt.join(CaseRow, CaseRow.id == AttemptRow.case_id).where(
            CaseRow.portfolio == portfolio
        )
    if after is not None:
        stmt = stmt.where(AttemptRow.case_id > after)
    return stmt.group_by(AttemptRow.case_id).order_by(AttemptRow.case_id).limit(limit)


@dataclass
class CaseData:
    """One case as the audit reads it."""

    case: Case  # as it is now
    contacts: list[AttemptRow]  # every contact of the case, in time order
    payments: list[tuple[datetime, Decimal]]
    changes: list[AuditRow]  # audited changes of the case, its parties and points, newest first
    provider_ids: dict[uuid.UUID, set[str]]  # attempt -> provider ids its callbacks named
    first_callback: dict[uuid.UUID, datetime] = field(default_factory=dict)  # attempt -> instant

    @property
    def provider_opt_outs(self) -> list[ProviderOptOut]:
        """Opt-outs the worker set on a provider error (Twilio 21610): no audit entry."""
        return [
            ProviderOptOut(str(o.contact_point_id), Channel(o.channel), o.updated_at)
            for o in self.contacts
            if o.state == "failed"
            and (o.error_code or "").startswith("opted_out")
            and o.updated_at is not None
        ]

    def ids_of(self, a: AttemptRow) -> set[str]:
        """Every provider id the attempt is known by (its row and its callbacks)."""
        return self.provider_ids.get(a.id, set()) | ({a.provider_sid} if a.provider_sid else set())

    def dialled_at(self, a: AttemptRow) -> datetime | None:
        """The instant the attempt was dialled (the worker reserves, may wait for a pacing
        slot, dials, and writes `sent_at` once the provider answered, possibly after the
        call's own callbacks): when its worker passed the fence
        (`dialing_at`, just before the provider call), else at the latest its `sent_at`
        or the provider's first callback for it, whichever is earlier; never before its
        reservation. None: it never reached a provider."""
        bounds = [
            t for t in (a.dialing_at, a.sent_at, self.first_callback.get(a.id)) if t is not None
        ]
        if not bounds:
            return None
        dialled = min(bounds)
        return max(dialled, a.reserved_at) if a.reserved_at is not None else dialled


async def load(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CaseData]:
    """Everything the replay needs for `case_ids`, keyed by case."""
    facts = await load_facts(session, case_ids, _EPOCH)  # the case only, no history
    contacts: dict[uuid.UUID, list[AttemptRow]] = defaultdict(list)
    for a in await session.scalars(
        select(AttemptRow)
        .where(AttemptRow.case_id.in_(case_ids), _contact())
        .order_by(AttemptRow.at, AttemptRow.id)
    ):
        contacts[a.case_id].append(a)
    payments: dict[uuid.UUID, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for p in await session.execute(
        select(PaymentRow.case_id, PaymentRow.at, PaymentRow.amount)
        .where(PaymentRow.case_id.in_(case_ids))
        .order_by(PaymentRow.at)
    ):
        payments[p[0]].append((p[1], p[2]))
    changes = await _changes(session, {cid: f.case for cid, f in facts.items()})
    ids = [a.id for rows in contacts.values() for a in rows]
    provider_ids, first_callback = await _callbacks(session, ids)
    out: dict[uuid.UUID, CaseData] = {}
    for cid, f in facts.items():
        rows = changes[cid]
        rows.sort(key=lambda r: (r.at, r.id), reverse=True)
        out[cid] = CaseData(
            f.case, contacts[cid], payments[cid], rows, provider_ids, first_callback
        )
    return out


async def _changes(
    session: AsyncSession, cases: dict[uuid.UUID, Case]
) -> dict[uuid.UUID, list[AuditRow]]:
    """The audited changes of each case, its parties and contact points."""
    owner: dict[str, uuid.UUID] = {}
    for cid, case in cases.items():
        owner[str(cid)] = cid
        for party in case.parties:
            owner[party.id] = cid
            for cp in party.contact_points:
                owner[cp.id] = cid
    changes: dict[uuid.UUID, list[AuditRow]] = defaultdict(list)
    for chunk in _chunks(list(owner), 500):
        for row in await session.scalars(
            select(AuditRow)
            .where(AuditRow.entity.in_(("case", "party", "contact_point")))
            .where(AuditRow.entity_id.in_(chunk))
        ):
            changes[owner[row.entity_id]].append(row)
    return changes


async def _callbacks(
    session: AsyncSession, attempt_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, set[str]], dict[uuid.UUID, datetime]]:
    """The provider ids the callbacks of each attempt named, and the first callback's
    instant."""
    provider_ids: dict[uuid.UUID, set[str]] = defaultdict(set)
    first_callback: dict[uuid.UUID, datetime] = {}
    for chunk in _chunks(attempt_ids, 500):
        for ev in await session.execute(
            select(
                WebhookEventRow.attempt_id,
                WebhookEventRow.provider_sid,
                func.min(WebhookEventRow.received_at),
            )
            .where(WebhookEventRow.attempt_id.in_(chunk))
            .where(WebhookEventRow.provider_sid.is_not(None))
            .group_by(WebhookEventRow.attempt_id, WebhookEventRow.provider_sid)
        ):
            if ev[0] is None or ev[1] is None:
                continue
            provider_ids[ev[0]].add(ev[1])
            if ev[2] is not None:
                first = _aware(ev[2])
                known = first_callback.get(ev[0])
                first_callback[ev[0]] = first if known is None else min(known, first)
    return provider_ids, first_callback


def _aware(value: datetime) -> datetime:
    """An aggregate (min) comes back without the column's type on some drivers: UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _chunks(items: list[Any], n: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
