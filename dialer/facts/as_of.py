"""The facts as they stood at an earlier instant T (`as_of`): what was recorded after T
is taken out.

- The case, its parties and contact points: every audited change made after T is undone
  from the audit log (the oldest `before` after T wins), opt-outs and opt-ins recorded
  after T are reversed, an opt-out set by a provider error (Twilio 21610, no audit entry)
  after T is lifted, and parties and contact points created after T are left out.
- History: contacts and payments recorded after T are left out (the readers bound it).

What cannot be undone: fields changed without an audit entry (a bulk re-import) are taken
as they are now. Both can only make a replay stricter, never more lenient about an
opt-out recorded before T.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, AuditRow
from dialer.domain.attempts import AttemptState
from dialer.facts.rows import recorded_unreachable
from strategy.model import Case, CaseFlag, CaseStatus, Channel, ContactPoint, Party, Stage, Validity


class Change(Protocol):
    """An audit log entry (`AuditRow`, or a row of its columns)."""

    @property
    def entity(self) -> str: ...
    @property
    def entity_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def detail(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ProviderOptOut:
    """An opt-out the worker set on a provider error: its contact point, channel, instant."""

    contact_point_id: str
    channel: Channel
    at: datetime


def rewind(
    case: Case,
    changes: Sequence[Change],
    provider_opt_outs: Iterable[ProviderOptOut],
    when: datetime,
) -> Case:
    """`case` (as stored now) as it stood at `when`. `changes` are the audit entries of the
    case, its parties and contact points, newest first (entries at or before `when` are
    ignored)."""
    after = [c for c in changes if c.at > when]
    case_changes: dict[str, Any] = {}
    party_changes: dict[str, dict[str, Any]] = defaultdict(dict)
    point_changes: dict[str, dict[str, Any]] = defaultdict(dict)
    lifted: dict[str, set[Channel]] = defaultdict(set)
    restored: dict[str, set[Channel]] = defaultdict(set)
    created_later = {c.entity_id for c in after if c.action in _CREATES}
    for row in after:  # newest first: the oldest `before` after `when` wins
        before = row.detail.get("before") if isinstance(row.detail, dict) else None
        if row.entity == "case" and isinstance(before, dict):
            case_changes.update({k: v for k, v in before.items() if k in _CASE_KEYS})
        elif row.entity == "party" and isinstance(before, dict):
            party_changes[row.entity_id].update(
                {k: v for k, v in before.items() if k in _PARTY_KEYS}
            )
        elif row.entity == "contact_point" and isinstance(before, dict):
            point_changes[row.entity_id].update(
                {k: v for k, v in before.items() if k in _POINT_KEYS}
            )
        elif row.action == "contact_point.opt_out":
            ch = Channel(row.detail["channel"])
            lifted[row.entity_id].add(ch)
            restored[row.entity_id].discard(ch)
        elif row.action == "contact_point.opt_in":
            ch = Channel(row.detail["channel"])
            restored[row.entity_id].add(ch)
            lifted[row.entity_id].discard(ch)
    for o in provider_opt_outs:
        if o.at > when:
            lifted[o.contact_point_id].add(o.channel)
    parties = []
    for p in case.parties:
        if p.id in created_later:
            continue
        points = []
        for cp in p.contact_points:
            if cp.id in created_later:
                continue
            fields = {k: _point_field(k, v) for k, v in point_changes.get(cp.id, {}).items()}
            cp2: ContactPoint = replace(cp, **fields) if fields else cp
            if cp.id in lifted or cp.id in restored:
                cp2 = replace(cp2, opted_out=(cp2.opted_out - lifted[cp.id]) | restored[cp.id])
            points.append(cp2)
        pfields = party_changes.get(p.id, {})
        p2: Party = replace(p, **pfields) if pfields else p
        parties.append(replace(p2, contact_points=tuple(points)))
    return replace(case, **_case_fields(case, case_changes), parties=tuple(parties))


async def changes_after(
    session: AsyncSession, cases: Mapping[Any, Case], when: datetime
) -> tuple[dict[Any, list[Change]], dict[Any, list[ProviderOptOut]]]:
    """What `rewind` needs for each case (keyed as `cases`): its audit entries after
    `when`, newest first, and the provider-error opt-outs recorded after it."""
    owner: dict[str, Any] = {}
    for key, c in cases.items():
        owner[c.id] = key
        for p in c.parties:
            owner[p.id] = key
            for cp in p.contact_points:
                owner[cp.id] = key
    changes: dict[Any, list[Change]] = defaultdict(list)
    names = list(owner)
    for i in range(0, len(names), 500):
        for row in await session.execute(
            select(
                AuditRow.entity, AuditRow.entity_id, AuditRow.action, AuditRow.at, AuditRow.detail
            )
            .where(
                AuditRow.entity.in_(("case", "party", "contact_point")),
                AuditRow.entity_id.in_(names[i : i + 500]),
                AuditRow.at > when,
            )
            .order_by(AuditRow.at.desc(), AuditRow.id.desc())
        ):
            changes[owner[row.entity_id]].append(row)
    opt_outs: dict[Any, list[ProviderOptOut]] = defaultdict(list)
    by_id = {uuid.UUID(c.id): key for key, c in cases.items()}
    for row in await session.execute(
        select(
            AttemptRow.case_id,
            AttemptRow.contact_point_id,
            AttemptRow.channel,
            AttemptRow.updated_at,
        ).where(
            AttemptRow.case_id.in_(list(by_id)),
            AttemptRow.state == AttemptState.FAILED.value,
            AttemptRow.error_code.startswith("opted_out"),
            AttemptRow.updated_at > when,
        )
    ):
        if row[3] is not None:  # (the statement asks for a later instant)
            opt_outs[by_id[row[0]]].append(ProviderOptOut(str(row[1]), Channel(row[2]), row[3]))
    return changes, opt_outs


_CREATES = frozenset({"party.create", "contact_point.create"})
# The recorded unreachability's columns (`dialer.services.reachability`), undone together.
_UNREACHABLE_KEYS = ("unreachable_since", "unreachable_until", "unreachable_source")
_CASE_KEYS = frozenset(
    {"amount", "balance", "currency", "due_date", "stage", "stage_started_on", "status",
     "flags", "dispute_resolved_at", *_UNREACHABLE_KEYS}
)  # fmt: skip
_PARTY_KEYS = frozenset(
    {"name", "relation", "knows_of_debt", "refused_contact", "timezone", "title"}
)
_POINT_KEYS = frozenset({"consent", "opted_out", "validity", "timezone", "do_not_call", "mobile"})


def _case_fields(case: Case, changes: Mapping[str, Any]) -> dict[str, Any]:
    fields = {k: _case_field(k, v) for k, v in changes.items()}
    if any(k in fields for k in _UNREACHABLE_KEYS):
        current = case.recorded_unreachable
        since, until, source = (
            fields.pop(k) if k in fields else getattr(current, k.removeprefix("unreachable_"))
            if current is not None else None
            for k in _UNREACHABLE_KEYS
        )  # fmt: skip
        fields["recorded_unreachable"] = recorded_unreachable(since, until, source)
    return fields


def _case_field(key: str, value: Any) -> Any:
    """A case column's value as the audit log stores it (JSON, `audit.jsonable`)."""
    if value is None:
        return None
    match key:
        case "amount" | "balance":
            return Decimal(str(value))
        case "due_date" | "stage_started_on":
            return date.fromisoformat(str(value))
        case "dispute_resolved_at" | "unreachable_since" | "unreachable_until":
            return datetime.fromisoformat(str(value))
        case "flags":
            return frozenset(CaseFlag(f) for f in value)
        case "status":
            return CaseStatus(value)
        case "stage":
            return Stage(value)
    return value


def _point_field(key: str, value: Any) -> Any:
    match key:
        case "consent" | "opted_out":
            return frozenset(Channel(c) for c in value or ())
        case "validity":
            return Validity(value)
        case "do_not_call":
            return bool(value)
    return value
