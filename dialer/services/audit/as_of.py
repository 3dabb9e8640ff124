"""What the worker knew at an instant T, rebuilt from the rows and the audit log.

- history: the contacts of the case reserved strictly before T, and payments strictly
  before T. Attempts reserved in the same instant as T (a frozen clock, or microsecond
  ties) are accepted if *some* serial order of them passes (`checks.MAX_TIE_GROUP`).
- outcomes: a prior attempt's result may have landed after T (a webhook, an agent's
  record). When a prior attempt was updated after T, the replay also tries it as
  `pending`; the attempt passes if either reading passes.
- the case: today's row, with every audited change made after T undone from the audit
  log (case, party and contact point updates keep their `before` values; opt-outs and
  opt-ins their instants), an opt-out set by a provider error (Twilio 21610) undone if
  it came after T, parties and contact points created after T left out.

This is the audit's own conversion of stored rows to the engine's `Case` and `History`;
it is meant to move into the one facts reader (`dialer.facts`) once that reader takes an
`as_of` instant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dialer.db.models import AttemptRow
from dialer.facts.convert import recorded_unreachable
from dialer.services.audit.loader import CaseData
from strategy.model import (
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
    Channel,
    ContactPoint,
    History,
    Party,
    Result,
    Stage,
    Validity,
)


# --- history as of T ---------------------------------------------------------------------
def _as_attempt(a: AttemptRow, *, pending: bool = False) -> Attempt:
    return Attempt(
        at=a.at,
        channel=Channel(a.channel),
        party_id=str(a.party_id),
        contact_point_id=str(a.contact_point_id),
        result=Result.PENDING if pending else Result(a.result),
        id=str(a.id),
        promise_amount=None if pending else a.promise_amount,
        promise_date=None if pending else a.promise_date,
        callback_at=None if pending else a.callback_at,
    )


def went_first(order: Sequence[AttemptRow], a: AttemptRow) -> Sequence[AttemptRow]:
    ids = [o.id for o in order]
    return order[: ids.index(a.id)] if a.id in ids else ()


def histories(
    a: AttemptRow, d: CaseData, when: datetime, first: Sequence[AttemptRow]
) -> Iterable[History]:
    """The readings of the history the worker may have seen at `when`: contacts strictly
    before it (results as now, and as pending where they landed after `when`), then the
    ones recorded in the same instant that went first."""
    payments = tuple(p for p in d.payments if p[0] < when)
    before = [o for o in d.contacts if o.id != a.id and o.at < when]
    late = {o.id for o in before if o.updated_at is not None and o.updated_at > when}
    tied = [_as_attempt(o) for o in first]
    for pending in [False, True] if late else [False]:
        base = [_as_attempt(o, pending=pending and o.id in late) for o in before]
        yield History(attempts=(*base, *tied), payments=payments)


# --- the case as of T --------------------------------------------------------------------
def _case_field(key: str, value: Any) -> Any:
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


_CASE_KEYS = frozenset(
    {"amount", "balance", "currency", "due_date", "stage", "stage_started_on", "status",
     "flags", "dispute_resolved_at"}
)  # fmt: skip
# The recorded unreachability's columns (`dialer.services.reachability`), undone together.
_UNREACHABLE_KEYS = ("unreachable_since", "unreachable_until", "unreachable_source")
_PARTY_KEYS = frozenset(
    {"name", "relation", "knows_of_debt", "refused_contact", "timezone", "title"}
)
_POINT_KEYS = frozenset({"consent", "opted_out", "validity", "timezone", "do_not_call", "mobile"})


@dataclass
class _Undone:
    """The stored values to put back: audited changes made after T, newest first."""

    case: dict[str, Any] = field(default_factory=dict)
    parties: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    points: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    lifted: dict[str, set[Channel]] = field(default_factory=lambda: defaultdict(set))
    restored: dict[str, set[Channel]] = field(default_factory=lambda: defaultdict(set))


def _undone(d: CaseData, when: datetime) -> _Undone:
    """What changed after `when`: the oldest `before` after it wins; opt-outs after it are
    lifted and opt-ins after it restored, as are opt-outs the worker set on a provider
    error (which have no audit entry)."""
    out = _Undone()
    for row in d.changes:  # newest first
        if row.at <= when:
            break
        before = row.detail.get("before") if isinstance(row.detail, dict) else None
        if row.entity == "case" and isinstance(before, dict):
            out.case.update(
                {k: v for k, v in before.items() if k in _CASE_KEYS or k in _UNREACHABLE_KEYS}
            )
        elif row.entity == "party" and isinstance(before, dict):
            out.parties[row.entity_id].update({k: v for k, v in before.items() if k in _PARTY_KEYS})
        elif row.entity == "contact_point" and isinstance(before, dict):
            out.points[row.entity_id].update({k: v for k, v in before.items() if k in _POINT_KEYS})
        elif row.action == "contact_point.opt_out":
            ch = Channel(row.detail["channel"])
            out.lifted[row.entity_id].add(ch)
            out.restored[row.entity_id].discard(ch)
        elif row.action == "contact_point.opt_in":
            ch = Channel(row.detail["channel"])
            out.restored[row.entity_id].add(ch)
            out.lifted[row.entity_id].discard(ch)
    for o in d.contacts:
        if (
            o.state == "failed"
            and (o.error_code or "").startswith("opted_out")
            and o.updated_at is not None
            and o.updated_at > when
        ):
            out.lifted[str(o.contact_point_id)].add(Channel(o.channel))
    return out


def _parties_as_of(d: CaseData, when: datetime, undone: _Undone) -> tuple[Party, ...]:
    parties = []
    for p in d.case.parties:
        if d.created.get(p.id, when) > when:
            continue
        points = []
        for cp in p.contact_points:
            if d.created.get(cp.id, when) > when:
                continue
            fields = {k: _point_field(k, v) for k, v in undone.points.get(cp.id, {}).items()}
            cp2: ContactPoint = replace(cp, **fields) if fields else cp
            if cp.id in undone.lifted or cp.id in undone.restored:
                opted_out = (cp2.opted_out - undone.lifted[cp.id]) | undone.restored[cp.id]
                cp2 = replace(cp2, opted_out=opted_out)
            points.append(cp2)
        pfields = undone.parties.get(p.id, {})
        p2: Party = replace(p, **pfields) if pfields else p
        parties.append(replace(p2, contact_points=tuple(points)))
    return tuple(parties)


def case_as_of(d: CaseData, when: datetime) -> Case:
    """The case as it stood at `when`: audited changes made after it undone, opt-outs set
    by provider errors after it lifted, later parties and points left out."""
    undone = _undone(d, when)
    parties = _parties_as_of(d, when, undone)
    cfields = {k: _case_field(k, v) for k, v in undone.case.items()}
    if any(k in cfields for k in _UNREACHABLE_KEYS):
        current = d.case.recorded_unreachable
        since, until, source = (
            cfields.pop(k) if k in cfields else getattr(current, k.removeprefix("unreachable_"))
            if current is not None else None
            for k in _UNREACHABLE_KEYS
        )  # fmt: skip
        cfields["recorded_unreachable"] = recorded_unreachable(since, until, source)
    return replace(d.case, **cfields, parties=parties)
