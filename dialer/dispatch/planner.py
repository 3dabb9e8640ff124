"""The planner: a campaign's open cases in keyset batches -> planned attempts + outbox rows.

Per batch (one transaction): read the next page of case ids after the campaign's cursor,
bulk-load their facts, ask the engine which action to take when (`choices`), insert the
attempts (state planned) and their outbox rows in bulk (COPY on PostgreSQL), move the
cursor and the counts, commit: a crash repeats at most the batch that did not commit. One
planner works on a campaign at a time (`lifecycle.claim`'s lease, the campaign row locked
for each batch). While a batch is decided the next page's ids and facts are read on
another connection; the next batch uses them only if they were read after the cursor it
finds under the lock. Memory is bounded by the batch size (two pages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.ports import Job, JobQueue
from dialer.db.models import AttemptRow, CampaignRow, Portfolio, StrategyRow
from dialer.db.repositories import refusals as refusal_rows
from dialer.dispatch import outbox
from dialer.dispatch.choices import PlannedAction, choose_actions
from dialer.dispatch.lifecycle import LEASE, RUNNING
from dialer.domain.attempts import AttemptState
from dialer.domain.windows import LocalWindow
from dialer.facts.batch import CaseFacts, load_facts, open_cases_page
from dialer.facts.strategies import compiled_for
from dialer.observability.metrics import Metrics
from strategy.compiled import CompiledStrategy
from strategy.decision import Decision
from strategy.engine import decide
from strategy.model import Channel

log = logging.getLogger(__name__)

_ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[assignment]
RELAY_DRAINS = 2  # concurrent outbox drains while planning (PostgreSQL)


@dataclass(slots=True)
class PlanReport:
    cases: int = 0
    planned: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    done: bool = False

    def add(self, step: _Step) -> None:
        self.cases += step.cases
        self.planned += step.planned
        self.refused.update(step.refused)
        self.done = self.done or step.done


@dataclass(slots=True)
class _Step:
    """One committed batch: its cases, attempts planned and refusals by rule; whether the
    campaign is planned to its end; the next page being read ahead, if any."""

    cases: int
    planned: int
    refused: Counter[str]
    done: bool = False
    following: _Ahead | None = None


class StrategyCache:
    """Compiled strategies by version id: compiled once per planner run."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[uuid.UUID, str], CompiledStrategy] = {}
        self._rows: dict[uuid.UUID, StrategyRow] = {}

    async def get(
        self, session: AsyncSession, version_id: uuid.UUID, profile: str
    ) -> tuple[StrategyRow, CompiledStrategy] | None:
        row = self._rows.get(version_id)
        if row is None:
            row = await session.get(StrategyRow, version_id)
            if row is None:
                return None
            self._rows[version_id] = row
        key = (version_id, profile)
        if key not in self._compiled:
            self._compiled[key] = compiled_for(row, profile)
        return row, self._compiled[key]


async def plan_campaign(
    maker: async_sessionmaker[AsyncSession],
    campaign_id: uuid.UUID,
    clock: Callable[[], datetime],
    *,
    queue: JobQueue | None = None,
    wake: asyncio.Event | None = None,
    owner: str = "planner",
    batch: int = 1000,
    metrics: Metrics | None = None,
) -> PlanReport:
    """Plan the campaign to its end (or until it stops running or the lease is lost).
    Each committed batch sets `wake`, the process's relay (`outbox.run_relay`). With
    `queue` (no relay running beside it: a CLI run, a bench), the planner runs that relay
    itself, strictly: it drains the outbox before this returns, and a broker failure it
    met is raised here."""
    report = PlanReport()
    strategies = StrategyCache()
    finished = asyncio.Event()
    relaying: asyncio.Task[None] | None = None
    if queue is not None:
        wake = wake or asyncio.Event()
        relaying = _own_relay(maker, queue, clock, finished, wake)
    read_ahead = _reader(maker, clock, batch)
    ahead: _Ahead | None = None
    try:
        while True:
            async with maker() as session:
                step = await _plan_batch(
                    session, campaign_id, clock(), owner, batch, strategies, ahead, read_ahead
                )
            if step is None:
                break
            ahead = step.following
            report.add(step)
            if metrics is not None:  # the batch's refusals by rule, as committed for progress
                metrics.record_refusals(step.refused.elements())
            if relaying is not None and relaying.done():
                relaying.result()  # the broker refused: raise it here
            if wake is not None and step.planned:
                wake.set()
            if step.done:
                break
    except BaseException:
        for task in (relaying, ahead):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        raise
    if ahead is not None:  # the lease was lost or the campaign stopped: not needed
        ahead.cancel()
        with contextlib.suppress(BaseException):
            await ahead
    if relaying is not None:
        finished.set()
        await relaying
    return report


def _own_relay(
    maker: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    clock: Callable[[], datetime],
    finished: asyncio.Event,
    wake: asyncio.Event,
) -> asyncio.Task[None]:
    """The outbox relay run by the planner itself (strictly: see `outbox.run_relay`)."""
    postgres = maker.kw["bind"].dialect.name == "postgresql"
    relay = outbox.run_relay(
        maker, queue, clock, stop=finished, wake=wake,
        drains=RELAY_DRAINS if postgres else 1, strict=True,
    )  # fmt: skip
    return asyncio.create_task(relay, name="planner-relay")


def _reader(
    maker: async_sessionmaker[AsyncSession], clock: Callable[[], datetime], batch: int
) -> Callable[[uuid.UUID, str, dict[str, Any]], _Ahead]:
    """Starts reading the page after a cursor, and its facts, on another connection."""

    def read_ahead(after: uuid.UUID, portfolio: str, case_filter: dict[str, Any]) -> _Ahead:
        async def read() -> _Page:
            async with maker() as session:
                page = open_cases_page(portfolio, after, batch, case_filter)
                ids = list((await session.scalars(page)).all())
                return _Page(after, ids, await load_facts(session, ids, clock()))

        return asyncio.create_task(read(), name="planner-read-ahead")

    return read_ahead


@dataclass(frozen=True, slots=True)
class _Page:
    """A page of case ids after a cursor and their facts, read ahead of its batch."""

    after: uuid.UUID
    ids: list[uuid.UUID]
    facts: dict[uuid.UUID, CaseFacts]


_Ahead = asyncio.Task[_Page]


async def _plan_batch(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    now: datetime,
    owner: str,
    batch: int,
    strategies: StrategyCache,
    ahead: _Ahead | None = None,
    read_ahead: Callable[[uuid.UUID, str, dict[str, Any]], _Ahead] | None = None,
) -> _Step | None:
    """One batch in the session's transaction. `ahead`, if given, is the next page read
    while the previous batch was decided: it is used only if it was read after the cursor
    this batch finds under the campaign's lock (else another planner moved it, and the page
    is read again here). Before deciding, the page after this one starts being read
    (`read_ahead`), so the database works while this process decides."""
    stmt = select(CampaignRow).where(CampaignRow.id == campaign_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    campaign = await session.scalar(stmt.execution_options(populate_existing=True))
    if campaign is None or campaign.status != RUNNING or campaign.plan_done:
        return None
    if campaign.plan_lease_owner not in (None, owner) and (
        campaign.plan_lease_until is not None and campaign.plan_lease_until > now
    ):
        return None  # another planner holds it
    portfolio = await session.get(Portfolio, campaign.portfolio)
    if portfolio is None:
        return None
    after = uuid.UUID(campaign.plan_cursor) if campaign.plan_cursor else None
    page = await ahead if ahead is not None else None
    if page is not None and page.after == after:
        ids, facts = page.ids, page.facts
    else:
        ids = list((await session.scalars(open_cases_page(
            campaign.portfolio, after, batch, campaign.filter or {}
        ))).all())  # fmt: skip
        facts = {}
    if not ids:
        campaign.plan_done = True
        campaign.plan_lease_until = None
        campaign.updated_at = now
        await session.commit()
        return _Step(0, 0, Counter(), done=True)
    following = None
    if read_ahead is not None and len(ids) == batch:
        following = read_ahead(ids[-1], campaign.portfolio, campaign.filter or {})
    try:
        if page is None or page.after != after:
            facts = await load_facts(session, ids, now)
        step = await _decide_and_record(
            session, campaign, portfolio, ids, facts, now, owner, strategies
        )
    except BaseException:
        if following is not None:
            following.cancel()
        raise
    step.following = following
    return step


async def _decide_and_record(
    session: AsyncSession,
    campaign: CampaignRow,
    portfolio: Portfolio,
    ids: list[uuid.UUID],
    facts: dict[uuid.UUID, CaseFacts],
    now: datetime,
    owner: str,
    strategies: StrategyCache,
) -> _Step:
    campaign_id = campaign.id
    window = LocalWindow.parse(campaign.window or "00:00-24:00")
    channels = [Channel(c) for c in campaign.channels]
    # Each attempt's record and job are built as soon as its case is decided: the
    # decision is then garbage at once, not kept (and promoted by the collector) until
    # the batch's end. Ids for every channel of every case, made in one go.
    fresh = iter(new_ids(len(ids) * len(channels)))
    campaign_text = str(campaign_id)
    records: list[tuple[Any, ...]] = []
    texts: list[str] = []
    refused: Counter[str] = Counter()
    explained: list[dict[str, Any]] = []  # per case, for its timeline
    # The batch's strategies by version id, so most cases need no call into the cache.
    versions: dict[uuid.UUID | None, tuple[StrategyRow, CompiledStrategy] | None] = {}
    for cid in ids:
        f = facts.pop(cid, None)  # each case's facts freed once decided
        if f is None:
            continue
        version_id = f.strategy_version_id or portfolio.active_strategy_id
        if version_id in versions:
            found = versions[version_id]
        else:
            found = versions[version_id] = (
                await strategies.get(session, version_id, portfolio.profile) if version_id else None
            )
        if found is None:
            refused["strategy.none_active"] += 1
            explained.append(_refusal_row(campaign_id, cid, now, ["strategy.none_active"]))
            continue
        row, cs = found
        chosen, rules = choose_actions(f, cs, now, window, channels)
        if rules:
            refused.update(rules)
            why = decide(f.case, f.history, now, cs)  # refused cases only: their reasons
            explained.append(_refusal_row(campaign_id, cid, now, rules, why, channels, window))
        for p in chosen:
            attempt_id = next(fresh)
            records.append(_attempt_record(attempt_id, cid, row.id, p, campaign_id, now))
            texts.append(outbox.job_text(Job(attempt_id, f.case.id, campaign_text, p.send_at)))
    if records:
        await _record_attempts(session, records, texts, now)
    await refusal_rows.add(session, explained)
    merged = Counter(campaign.refused_by_rule or {})
    merged.update(refused)
    campaign.plan_cursor = str(ids[-1])
    campaign.cases_seen = (campaign.cases_seen or 0) + len(ids)
    campaign.planned = (campaign.planned or 0) + len(records)
    campaign.refused_by_rule = dict(merged)
    campaign.plan_lease_owner = owner
    campaign.plan_lease_until = now + LEASE
    campaign.updated_at = now
    await session.commit()
    return _Step(len(ids), len(records), refused)


# The planner's own rules, in plain words (the engine's come with their messages).
_PLANNER_RULES = {
    "campaign.window": "no contact the engine allows starts inside the campaign's window",
    "campaign.no_candidate": "no contact point on the campaign's channels",
    "strategy.none_active": "the portfolio has no active strategy",
}


def _refusal_row(
    campaign_id: uuid.UUID,
    case_id: uuid.UUID,
    now: datetime,
    rules: list[str],
    decision: Decision | None = None,
    channels: Sequence[Channel] = (),
    window: LocalWindow | None = None,
) -> dict[str, Any]:
    """Why nothing was planned for a case: its rules, their reasons in plain words (the
    engine's decision at `now`, on the campaign's channels) and the first instant the
    engine named when a contact would be allowed (None: it named none)."""
    texts = dict.fromkeys(
        f"{r}: {_PLANNER_RULES[r]}" + (f" {window}" if r == "campaign.window" else "")
        for r in rules
        if r in _PLANNER_RULES
    )
    next_allowed = None
    if decision is not None and decision.case_reasons and not decision.allowed:
        texts.update(dict.fromkeys(f"{r.rule}: {r.message}" for r in decision.case_reasons))
        untils = [r.next_allowed for r in decision.case_reasons]  # all of them must pass
        next_allowed = None if None in untils else max(u for u in untils if u is not None)
    elif decision is not None:
        mine = [x for x in decision.refused if x.candidate.channel in channels]
        texts.update(dict.fromkeys(f"{r.rule}: {r.message}" for x in mine for r in x.reasons))
        nexts = [x.next_allowed for x in mine if x.next_allowed is not None]
        next_allowed = min(nexts, default=None)
    return {
        "campaign_id": campaign_id,
        "case_id": case_id,
        "planned_at": now,
        "rules": rules,
        "reason": "; ".join(texts) or ", ".join(rules),
        "next_allowed": next_allowed,
    }


# The planned attempts' columns, in the order `_record_attempts` builds their records.
_ATTEMPT_COLUMNS = (
    "id", "case_id", "party_id", "contact_point_id", "channel", "state", "result",
    "strategy_version_id", "profile", "allowed_by", "planned_at", "at", "not_before",
    "campaign_id", "disclosure", "voicemail_disclosure", "template_key", "append_opt_out",
    "updated_at",
)  # fmt: skip
_TEXT_UUIDS = (0, 2, 3)  # id, party_id, contact_point_id: the engine's ids are text


def _attempt_record(
    attempt_id: str,
    case_id: uuid.UUID,
    strategy_version_id: uuid.UUID,
    p: PlannedAction,
    campaign_id: uuid.UUID,
    now: datetime,
) -> tuple[Any, ...]:
    """A planned attempt's row as a tuple in `_ATTEMPT_COLUMNS`' order, its UUIDs from the
    engine as text (COPY takes them so)."""
    a = p.action
    send_at = p.send_at
    return (
        attempt_id, case_id, a.party_id, a.contact_point_id, a.channel.value,
        AttemptState.PLANNED.value, "pending", strategy_version_id, p.decision.profile,
        a.allowed_by, now, send_at, send_at, campaign_id, a.disclosure.value,
        a.voicemail_disclosure.value, a.template_key, a.append_opt_out, now,
    )  # fmt: skip


async def _record_attempts(
    session: AsyncSession, records: list[tuple[Any, ...]], jobs: list[str], now: datetime
) -> None:
    """The batch's planned attempts (`_attempt_record`s) and their outbox rows (the jobs'
    documents as text), in the session's transaction: by COPY on PostgreSQL; elsewhere
    the records become rows of UUIDs for an executemany."""
    if not await outbox.copy_records(session, _ATTEMPTS, _ATTEMPT_COLUMNS, records):
        rows = []
        for record in records:
            values = list(record)
            for i in _TEXT_UUIDS:
                values[i] = uuid.UUID(values[i])
            rows.append(dict(zip(_ATTEMPT_COLUMNS, values, strict=True)))
        await outbox.bulk_insert(session, _ATTEMPTS, rows)
    await outbox.add_job_texts(session, jobs, now)


def new_ids(n: int) -> list[str]:
    """`n` random (version 4) UUIDs as text, as `str(uuid.uuid4())` writes them, from one
    read of the system's randomness (uuid4 reads it, and builds a UUID, once per id)."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]
