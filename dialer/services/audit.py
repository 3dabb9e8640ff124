"""The compliance audit: replay every dispatched attempt against the rules that allowed it.

For each attempt that reached a reservation (or a provider), the audit rebuilds what the
worker knew at the reservation instant T and asks `strategy.engine.decide` again, with the
strategy version and guardrail profile recorded on the attempt. The attempt's (party,
contact point, channel) must be among the allowed actions, and the disclosure it recorded
no more than the one granted. Independently of the engine it also checks: at most one
provider id per attempt, nothing dialled after a recorded opt-out of that contact point and
channel, the dial instant inside the allowed action's window, and no task that needs an
approval completed without one.

An attempt that reached the provider is a contact whatever state its record ended in: one
with a provider id (on the row or named by a callback) is replayed and counted in the
history of the others even when it is recorded `not_sent` (a stalled worker that dialled
after its attempt was given away). When such an attempt was also planned again and the
fresh attempt reached the provider too, both are reported `double_dial`; a provider id on
an attempt recorded as never placed is reported `record`.

The dial instant: the worker reserves an attempt, may wait for a pacing slot, dials, and
writes `sent_at` once the provider has answered, which can be after the call's own
callbacks (a keypad 9 during the call). The dial happened no later than `sent_at` and no
later than the first callback the provider sent for the attempt; the earlier of the two
is the instant judged (never before the reservation).

What is reconstructed, and how:
- history: the contacts of the case that were reserved strictly before T, and payments
  strictly before T. Attempts reserved in the same instant as T (a frozen clock, or
  microsecond ties) are accepted if *some* serial order of them passes (groups of up to
  `MAX_TIE_GROUP`; larger groups are checked against the strictly-earlier history only).
- outcomes: a prior attempt's result may have landed after T (a webhook, an agent's
  record). When a prior attempt was updated after T, the replay also tries it as
  `pending`; the attempt passes if either reading passes.
- the case: today's row, with every audited change made after T undone from the audit
  log (case, party and contact point updates keep their `before` values; opt-outs and
  opt-ins their instants), an opt-out set by a provider error (Twilio 21610) undone if
  it came after T, parties and contact points created after T left out.

What cannot be reconstructed: fields changed without an audit entry (a bulk import that
re-upserts a case) are taken as they are now, and an attempt's result as it stood between
two of its callbacks is unknown (only "final" and "pending" are tried). Both can only make
the replay stricter than the worker was, never more lenient about an opt-out, a cap or a
window recorded before T.

Memory is bounded: cases are read in keyset batches of `batch_size` with everything the
audit needs for them, and only violations (capped at `max_violations`) are kept.
"""

from __future__ import annotations

import ast
import itertools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.errors import NotFoundError
from dialer.db.models import (
    AttemptRow,
    AuditRow,
    CaseRow,
    PaymentRow,
    Portfolio,
    StrategyRow,
    TaskRow,
    WebhookEventRow,
)
from dialer.domain.attempts import LIVE_OR_DONE
from dialer.facts.batch import load_facts
from dialer.facts.convert import recorded_unreachable
from dialer.services.strategies import compiled_for
from strategy.compiled import CompiledStrategy
from strategy.decision import Decision, Reason
from strategy.engine import decide
from strategy.model import (
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
    Channel,
    ContactPoint,
    Disclosure,
    History,
    Party,
    Result,
    Stage,
    Validity,
)

# "refused": the engine refused the attempt for a reason of another kind (a dispute or
# cease flag, a refused party, a closed case, no consent, ...): the detail names its rules.
# "record": a provider id on an attempt recorded as never placed (`not_sent`, ...).
RULES = (
    "cap",
    "window",
    "disclosure",
    "opt_out",
    "approval",
    "double_dial",
    "no_decision",
    "refused",
    "record",
)
MAX_TIE_GROUP = 5
_CONTACTS = sorted(s.value for s in LIVE_OR_DONE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Errors the worker records when it failed an attempt closed, before any provider call.
_FAILED_CLOSED = ("disclosure", "template")


@dataclass(frozen=True)
class Violation:
    attempt_id: uuid.UUID  # for "approval": the task's id
    case_id: uuid.UUID
    rule: str  # one of RULES
    detail: str


@dataclass(frozen=True)
class AuditReport:
    attempts_checked: int
    violations: tuple[Violation, ...]
    by_rule: Mapping[str, int] = field(default_factory=dict)  # counts, even past the cap
    tasks_checked: int = 0

    def ok(self) -> bool:
        return not self.violations and not self.by_rule


def rule_of(reason_rule: str) -> str:
    """The audit's category for one of the engine's reason ids."""
    if reason_rule.startswith("optout."):
        return "opt_out"
    if reason_rule.startswith("window.") or reason_rule in {
        "guardrail.window",
        "cn.window",
        "commercial.working_hours",
        "us.inconvenient_time",
    }:
        return "window"
    if reason_rule.startswith(("cap.", "guardrail.cap.", "spacing.")) or reason_rule in {
        "us.call_frequency",
        "cn.conversations_per_day",
        "cn.unanswered_per_method",
    }:
        return "cap"
    return "refused"


async def audit(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime | None = None,
    portfolio: str | None = None,
    batch_size: int = 200,
    max_violations: int = 10_000,
    send_grace: timedelta = timedelta(seconds=30),
) -> AuditReport:
    """Replay every dispatched attempt (reserved at or after `since`, in `portfolio`).
    An unknown portfolio is an error (NotFoundError), not an empty, clean audit."""
    if portfolio is not None:
        async with sessions() as session:
            if await session.get(Portfolio, portfolio) is None:
                raise NotFoundError(f"no portfolio {portfolio!r}")
    auditor = _Auditor(max_violations, send_grace)
    after: uuid.UUID | None = None
    while True:
        async with sessions() as session:
            case_ids = list(await session.scalars(_cases_page(since, portfolio, after, batch_size)))
            if not case_ids:
                break
            await auditor.batch(session, case_ids, since)
        after = case_ids[-1]
    await auditor.tasks(sessions, since, portfolio, batch_size)
    return auditor.report()


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
    return or_(AttemptRow.state.in_(_CONTACTS), _reached_provider())


def _audited(since: datetime | None) -> list[Any]:
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


def _cases_page(
    since: datetime | None, portfolio: str | None, after: uuid.UUID | None, limit: int
) -> Any:
    stmt = select(AttemptRow.case_id).where(*_audited(since))
    if portfolio is not None:
        stmt = stmt.join(CaseRow, CaseRow.id == AttemptRow.case_id).where(
            CaseRow.portfolio == portfolio
        )
    if after is not None:
        stmt = stmt.where(AttemptRow.case_id > after)
    return stmt.group_by(AttemptRow.case_id).order_by(AttemptRow.case_id).limit(limit)


@dataclass
class _CaseData:
    case: Case  # as it is now
    contacts: list[AttemptRow]  # every contact of the case, in time order
    payments: list[tuple[datetime, Decimal]]
    changes: list[AuditRow]  # audited changes of the case, its parties and points, newest first
    created: dict[str, datetime]  # party / contact point id -> created at
    provider_ids: dict[uuid.UUID, set[str]]  # attempt -> provider ids its callbacks named
    first_callback: dict[uuid.UUID, datetime] = field(default_factory=dict)  # attempt -> instant

    def ids_of(self, a: AttemptRow) -> set[str]:
        """Every provider id the attempt is known by (its row and its callbacks)."""
        return self.provider_ids.get(a.id, set()) | ({a.provider_sid} if a.provider_sid else set())

    def dialled_at(self, a: AttemptRow) -> datetime | None:
        """The instant the attempt was dialled: when its worker passed the fence
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


class _Auditor:
    def __init__(self, max_violations: int, send_grace: timedelta) -> None:
        self.max_violations = max_violations
        self.send_grace = send_grace
        self.checked = 0
        self.tasks_checked = 0
        self.violations: list[Violation] = []
        self.by_rule: Counter[str] = Counter()
        self.compiled: dict[tuple[uuid.UUID, str], CompiledStrategy | None] = {}

    def report(self) -> AuditReport:
        return AuditReport(
            self.checked, tuple(self.violations), dict(self.by_rule), self.tasks_checked
        )

    def add(self, attempt_id: uuid.UUID, case_id: uuid.UUID, rule: str, detail: str) -> None:
        self.by_rule[rule] += 1
        if len(self.violations) < self.max_violations:
            self.violations.append(Violation(attempt_id, case_id, rule, detail))

    # --- one batch of cases --------------------------------------------------------------
    async def batch(
        self, session: AsyncSession, case_ids: Sequence[uuid.UUID], since: datetime | None
    ) -> None:
        data = await _load(session, case_ids)
        audited = set(
            await session.scalars(
                select(AttemptRow.id).where(AttemptRow.case_id.in_(case_ids), *_audited(since))
            )
        )
        for d in data.values():
            groups: dict[datetime, list[AttemptRow]] = defaultdict(list)
            for a in d.contacts:
                if a.id in audited:
                    groups[a.at].append(a)
            for at in sorted(groups):
                await self.group(session, groups[at], [o for o in d.contacts if o.at == at], d)

    async def strategy(
        self, session: AsyncSession, version_id: uuid.UUID, profile: str
    ) -> CompiledStrategy | None:
        key = (version_id, profile)
        if key not in self.compiled:
            row = await session.get(StrategyRow, version_id)
            self.compiled[key] = compiled_for(row, profile) if row is not None else None
        return self.compiled[key]

    async def group(
        self,
        session: AsyncSession,
        members: list[AttemptRow],
        ties: list[AttemptRow],
        d: _CaseData,
    ) -> None:
        """Attempts of one case recorded in the same instant: they pass if some serial
        order of them (every contact in that instant) lets each one through."""
        replayable: list[tuple[AttemptRow, CompiledStrategy]] = []
        for a in members:
            self.checked += 1
            ids = d.ids_of(a)
            if len(ids) > 1:
                self.add(a.id, a.case_id, "double_dial", f"provider ids {sorted(ids)}")
            for rule, detail in _dialled_again(a, d):
                self.add(a.id, a.case_id, rule, detail)
            if a.reserved_at is None or a.strategy_version_id is None or not a.profile:
                self.add(a.id, a.case_id, "no_decision", "dispatched without a recorded decision")
                continue
            cs = await self.strategy(session, a.strategy_version_id, a.profile)
            if cs is None:
                self.add(a.id, a.case_id, "no_decision", f"strategy {a.strategy_version_id} gone")
                continue
            replayable.append((a, cs))
        if not replayable:
            return
        orders: Iterable[Sequence[AttemptRow]] = (
            itertools.permutations(ties) if 1 < len(ties) <= MAX_TIE_GROUP else [()]
        )
        best: list[tuple[AttemptRow, str, str]] | None = None
        for order in orders:
            found = [
                (a, rule, detail)
                for a, cs in replayable
                for rule, detail in self._replay(a, cs, d, _went_first(order, a))
            ]
            if best is None or len(found) < len(best):
                best = found
            if not found:
                break
        merged: dict[tuple[uuid.UUID, str], list[str]] = defaultdict(list)
        for a, rule, detail in [*(best or ()), *self._recorded_opt_outs(replayable, d)]:
            merged[(a.id, rule)].append(detail)
        case_id = members[0].case_id
        for (attempt_id, rule), details in merged.items():
            self.add(attempt_id, case_id, rule, "; ".join(details))

    def _replay(
        self, a: AttemptRow, cs: CompiledStrategy, d: _CaseData, first: Sequence[AttemptRow]
    ) -> list[tuple[str, str]]:
        assert a.reserved_at is not None
        when = a.reserved_at
        case = case_as_of(d, when)
        dialled = d.dialled_at(a)
        verdicts = [
            self._check(a, decide(case, hist, when, cs), dialled)
            for hist in _histories(a, d, when, first)
        ]
        return min(verdicts, key=len)

    def _check(
        self, a: AttemptRow, decision: Decision, dialled: datetime | None
    ) -> list[tuple[str, str]]:
        cp = str(a.contact_point_id)
        channel = Channel(a.channel)
        action = decision.allowed_for(cp, channel)
        if action is None:
            refusal = decision.refusal_for(cp, channel)
            reasons: list[Reason] = [
                *decision.case_reasons,
                *(refusal.reasons if refusal else ()),
            ]
            if not reasons:
                return [("refused", f"{channel} to {cp} was not a candidate at {a.reserved_at}")]
            found: dict[str, list[str]] = defaultdict(list)
            for r in reasons:
                found[rule_of(r.rule)].append(r.rule)
            return [(k, f"refused at {a.reserved_at}: {', '.join(v)}") for k, v in found.items()]
        out: list[tuple[str, str]] = []
        if action.party_id != str(a.party_id):
            out.append(("refused", f"contact point belongs to party {action.party_id}"))
        for recorded, granted, what in (
            (a.disclosure, action.disclosure, "disclosure"),
            (a.voicemail_disclosure, action.voicemail_disclosure, "voicemail disclosure"),
        ):
            if recorded is None or Disclosure(recorded).rank > granted.rank:
                out.append(("disclosure", f"{what} {recorded} recorded, {granted} granted"))
        if dialled is not None and not (
            action.window_start - self.send_grace <= dialled <= action.window_end + self.send_grace
        ):
            out.append(
                (
                    "window",
                    f"dialled at {dialled.isoformat()}, allowed "
                    f"{action.window_start.isoformat()}..{action.window_end.isoformat()}",
                )
            )
        return out

    @staticmethod
    def _recorded_opt_outs(
        replayable: Sequence[tuple[AttemptRow, CompiledStrategy]], d: _CaseData
    ) -> list[tuple[AttemptRow, str, str]]:
        """Independently of the engine: dialled after an opt-out of that contact point and
        channel was recorded, and not lifted by an opt-in before the dial. An opt-out
        recorded during the call itself (keypad 9 while it is in progress, before the
        worker has written `sent_at`) came after the dial: it binds the next attempt."""
        out = []
        for a, _ in replayable:
            dialled = d.dialled_at(a) or a.reserved_at
            assert dialled is not None
            point = str(a.contact_point_id)
            opted_at: datetime | None = None
            for row in reversed(d.changes):  # oldest first
                if row.at >= dialled:
                    break
                if row.entity_id != point or row.detail.get("channel") != a.channel:
                    continue
                if row.action == "contact_point.opt_out":
                    opted_at = row.at
                elif row.action == "contact_point.opt_in":
                    opted_at = None
            if opted_at is not None:
                out.append(
                    (
                        a,
                        "opt_out",
                        f"{a.channel} dialled at {dialled.isoformat()} after an opt-out"
                        f" recorded at {opted_at.isoformat()}",
                    )
                )
        return out

    # --- approvals -----------------------------------------------------------------------
    async def tasks(
        self,
        sessions: async_sessionmaker[AsyncSession],
        since: datetime | None,
        portfolio: str | None,
        batch_size: int,
    ) -> None:
        """Tasks that need an approval and were done: each must have a recorded approval
        (decided before it was completed, and a `task.approve` entry in the audit log)."""
        after: uuid.UUID | None = None
        while True:
            stmt = select(TaskRow).where(
                TaskRow.requires_approval.is_(True), TaskRow.status == "done"
            )
            if since is not None:
                stmt = stmt.where(TaskRow.completed_at >= since)
            if portfolio is not None:
                stmt = stmt.join(CaseRow, CaseRow.id == TaskRow.case_id).where(
                    CaseRow.portfolio == portfolio
                )
            if after is not None:
                stmt = stmt.where(TaskRow.id > after)
            async with sessions() as session:
                tasks = list(await session.scalars(stmt.order_by(TaskRow.id).limit(batch_size)))
                if not tasks:
                    return
                approved = set(
                    await session.scalars(
                        select(AuditRow.entity_id).where(
                            AuditRow.entity == "task",
                            AuditRow.action == "task.approve",
                            AuditRow.entity_id.in_([str(t.id) for t in tasks]),
                        )
                    )
                )
            for task in tasks:
                self.tasks_checked += 1
                ok = (
                    task.decided_at is not None
                    and task.decided_by is not None
                    and (task.completed_at is None or task.decided_at <= task.completed_at)
                    and str(task.id) in approved
                )
                if not ok:
                    self.add(
                        task.id,
                        task.case_id,
                        "approval",
                        f"task {task.action} done by {task.completed_by}"
                        " without a recorded approval",
                    )
            after = tasks[-1].id


async def _load(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, _CaseData]:
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
    owner: dict[str, uuid.UUID] = {}
    for cid, f in facts.items():
        owner[str(cid)] = cid
        for party in f.case.parties:
            owner[party.id] = cid
            for cp in party.contact_points:
                owner[cp.id] = cid
    changes: dict[uuid.UUID, list[AuditRow]] = defaultdict(list)
    created: dict[uuid.UUID, dict[str, datetime]] = defaultdict(dict)
    for chunk in _chunks(list(owner), 500):
        for row in await session.scalars(
            select(AuditRow)
            .where(AuditRow.entity.in_(("case", "party", "contact_point")))
            .where(AuditRow.entity_id.in_(chunk))
        ):
            cid = owner[row.entity_id]
            if row.action in ("party.create", "contact_point.create"):
                created[cid][row.entity_id] = row.at
            changes[cid].append(row)
    provider_ids: dict[uuid.UUID, set[str]] = defaultdict(set)
    first_callback: dict[uuid.UUID, datetime] = {}
    ids = [a.id for rows in contacts.values() for a in rows]
    for chunk in _chunks(ids, 500):
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
    out: dict[uuid.UUID, _CaseData] = {}
    for cid, f in facts.items():
        rows = changes[cid]
        rows.sort(key=lambda r: (r.at, r.id), reverse=True)
        out[cid] = _CaseData(
            f.case, contacts[cid], payments[cid], rows, created[cid], provider_ids, first_callback
        )
    return out


def _aware(value: datetime) -> datetime:
    """An aggregate (min) comes back without the column's type on some drivers: UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _dialled_again(a: AttemptRow, d: _CaseData) -> list[tuple[str, str]]:
    """Independently of the engine: a fresh attempt is planned in place of one found never
    placed (the reconciler's re-plan, the worker's retry after a transient error; its
    notes name the original). If the original reached the provider after all (a stalled
    worker dialling after its attempt was given away), both are one planned contact
    dialled twice, whatever state the original's record ended in. An attempt recorded as
    never placed (`not_sent`) that the provider holds is a false record in any case."""
    out: list[tuple[str, str]] = []
    mine = d.ids_of(a)
    if not mine:
        return out
    again = [o for o in d.contacts if o.id != a.id and o.notes and str(a.id) in o.notes]
    dialled = [o for o in again if d.ids_of(o)]
    if dialled:
        names = ", ".join(f"{o.id} ({', '.join(sorted(d.ids_of(o)))})" for o in dialled)
        out.append(
            (
                "double_dial",
                f"dialled ({', '.join(sorted(mine))}, recorded {a.state}) and planned again"
                f" as {names}, dialled as well",
            )
        )
    elif a.state not in _CONTACTS:
        out.append(
            ("record", f"recorded {a.state} yet the provider holds {', '.join(sorted(mine))}")
        )
    for o in d.contacts:
        if o.id != a.id and a.notes and str(o.id) in a.notes and d.ids_of(o):
            out.append(
                (
                    "double_dial",
                    f"planned in place of {o.id} (recorded {o.state}), which was dialled as"
                    f" well ({', '.join(sorted(d.ids_of(o)))})",
                )
            )
    return out


def _chunks(items: list[Any], n: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


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


def _went_first(order: Sequence[AttemptRow], a: AttemptRow) -> Sequence[AttemptRow]:
    ids = [o.id for o in order]
    return order[: ids.index(a.id)] if a.id in ids else ()


def _histories(
    a: AttemptRow, d: _CaseData, when: datetime, first: Sequence[AttemptRow]
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
def _literal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        return ast.literal_eval(value)
    return value


def _case_field(key: str, value: Any) -> Any:
    value = _literal(value)
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
    value = _literal(value)
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


def case_as_of(d: _CaseData, when: datetime) -> Case:
    """The case as it stood at `when`: audited changes made after it undone (newest
    first), opt-outs set by provider errors after it lifted, later parties and points
    left out."""
    case = d.case
    case_changes: dict[str, Any] = {}
    party_changes: dict[str, dict[str, Any]] = defaultdict(dict)
    point_changes: dict[str, dict[str, Any]] = defaultdict(dict)
    lifted: dict[str, set[Channel]] = defaultdict(set)
    restored: dict[str, set[Channel]] = defaultdict(set)
    for row in d.changes:  # newest first: the oldest `before` after `when` wins
        if row.at <= when:
            break
        before = row.detail.get("before") if isinstance(row.detail, dict) else None
        if row.entity == "case" and isinstance(before, dict):
            case_changes.update(
                {k: v for k, v in before.items() if k in _CASE_KEYS or k in _UNREACHABLE_KEYS}
            )
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
    for o in d.contacts:  # the worker's opt-out on a provider error (no audit entry)
        if (
            o.state == "failed"
            and (o.error_code or "").startswith("opted_out")
            and o.updated_at is not None
            and o.updated_at > when
        ):
            lifted[str(o.contact_point_id)].add(Channel(o.channel))
    parties = []
    for p in case.parties:
        if d.created.get(p.id, when) > when:
            continue
        points = []
        for cp in p.contact_points:
            if d.created.get(cp.id, when) > when:
                continue
            fields = {k: _point_field(k, v) for k, v in point_changes.get(cp.id, {}).items()}
            cp2: ContactPoint = replace(cp, **fields) if fields else cp
            if cp.id in lifted or cp.id in restored:
                cp2 = replace(cp2, opted_out=(cp2.opted_out - lifted[cp.id]) | restored[cp.id])
            points.append(cp2)
        pfields = {k: _literal(v) for k, v in party_changes.get(p.id, {}).items()}
        p2: Party = replace(p, **pfields) if pfields else p
        parties.append(replace(p2, contact_points=tuple(points)))
    cfields = {k: _case_field(k, v) for k, v in case_changes.items()}
    if any(k in cfields for k in _UNREACHABLE_KEYS):
        current = case.recorded_unreachable
        since, until, source = (
            cfields.pop(k) if k in cfields else getattr(current, k.removeprefix("unreachable_"))
            if current is not None else None
            for k in _UNREACHABLE_KEYS
        )  # fmt: skip
        cfields["recorded_unreachable"] = recorded_unreachable(since, until, source)
    return replace(case, **cfields, parties=tuple(parties))
