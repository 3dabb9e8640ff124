"""The replay: each audited attempt is decided again with what the worker knew at its
reservation, and checked against the decision and, independently of the engine, against
the provider ids, opt-outs and approvals on record.

An attempt that reached the provider is a contact whatever state its record ended in: one
with a provider id (on the row or named by a callback) is replayed and counted in the
history of the others even when it is recorded `not_sent` (a stalled worker that dialled
after its attempt was given away). When such an attempt was also planned again and the
fresh attempt reached the provider too, both are reported `double_dial`; a provider id on
an attempt recorded as never placed is reported `record`.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.errors import NotFoundError
from dialer.db.models import AttemptRow, AuditRow, CaseRow, Portfolio, StrategyRow, TaskRow
from dialer.services.audit.as_of import case_as_of, histories, went_first
from dialer.services.audit.loader import CONTACTS, CaseData, audited, cases_page, load
from dialer.services.audit.report import AuditReport, Violation, rule_of
from dialer.services.strategies import compiled_for
from strategy.compiled import CompiledStrategy
from strategy.decision import Decision, Reason
from strategy.engine import decide
from strategy.model import Channel, Disclosure

MAX_TIE_GROUP = 5


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
            case_ids = list(await session.scalars(cases_page(since, portfolio, after, batch_size)))
            if not case_ids:
                break
            await auditor.batch(session, case_ids, since)
        after = case_ids[-1]
    await auditor.tasks(sessions, since, portfolio, batch_size)
    return auditor.report()


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
        data = await load(session, case_ids)
        replayed = set(
            await session.scalars(
                select(AttemptRow.id).where(AttemptRow.case_id.in_(case_ids), *audited(since))
            )
        )
        for d in data.values():
            groups: dict[datetime, list[AttemptRow]] = defaultdict(list)
            for a in d.contacts:
                if a.id in replayed:
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
        d: CaseData,
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
                for rule, detail in self._replay(a, cs, d, went_first(order, a))
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
        self, a: AttemptRow, cs: CompiledStrategy, d: CaseData, first: Sequence[AttemptRow]
    ) -> list[tuple[str, str]]:
        assert a.reserved_at is not None
        when = a.reserved_at
        case = case_as_of(d, when)
        dialled = d.dialled_at(a)
        verdicts = [
            self._check(a, decide(case, hist, when, cs), dialled)
            for hist in histories(a, d, when, first)
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
        replayable: Sequence[tuple[AttemptRow, CompiledStrategy]], d: CaseData
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


def _dialled_again(a: AttemptRow, d: CaseData) -> list[tuple[str, str]]:
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
    elif a.state not in CONTACTS:
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
