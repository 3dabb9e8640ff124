"""The planner: a campaign's open cases in keyset batches -> planned attempts + outbox rows.

Per batch (one transaction): read the next page of case ids after the campaign's cursor,
bulk-load their facts, ask the engine, and for every channel the campaign allows keep at
most one action: the engine's most preferred one allowed now if the campaign's local start
window is open in that party's zones, else the earliest instant inside the planning window
at which the engine allows it (found from refusals' `next_allowed` and a fresh decision
there). The planning window is today's while today's has not closed; a campaign started
after it closed plans for the next opening the engine allows (`_planning_window`).
Attempts (state planned) and their outbox rows are inserted in bulk (COPY on PostgreSQL),
the cursor and the counts move, and the transaction commits: a crash repeats at most the
batch that did not commit. One planner works on a campaign at a time (a lease on the
campaign row, locked for each batch). While a batch is decided the next page's ids and
facts are read on another connection; the next batch uses them only if they were read
after the cursor it finds under the lock. With a queue, a relay task publishes the outbox
while planning goes on. Memory is bounded by the batch size (two pages) whatever the
campaign's size. A campaign planned to the end whose attempts are all final becomes `done`
(`finish_completed`, run by `claim`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.ports import Job, JobQueue
from dialer.core.errors import ConflictError
from dialer.db.models import AttemptRow, CampaignRow, Portfolio, StrategyRow
from dialer.db.repositories import refusals as refusal_rows
from dialer.dispatch import outbox
from dialer.dispatch.windows import LocalWindow
from dialer.domain.attempts import AttemptState, is_final
from dialer.facts.batch import CaseFacts, load_facts, open_cases_page
from dialer.facts.strategies import compiled_for
from dialer.observability.metrics import Metrics
from dialer.services import campaigns
from strategy.compiled import CompiledStrategy
from strategy.decision import AllowedAction, Decision
from strategy.engine import decide
from strategy.model import Attempt, Channel, History

log = logging.getLogger(__name__)

_ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[assignment]
RUNNING = "running"
LEASE = timedelta(minutes=2)
RELAY_DRAINS = 2  # concurrent outbox drains while planning (PostgreSQL)
MAX_LOOKAHEAD_DECISIONS = 3  # fresh decisions per channel when the window is not open now


@dataclass(frozen=True, slots=True)
class PlannedAction:
    action: AllowedAction
    send_at: datetime
    decision: Decision


@dataclass(slots=True)
class PlanReport:
    cases: int = 0
    planned: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    done: bool = False


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


def choose_actions(
    facts: CaseFacts,
    cs: CompiledStrategy,
    now: datetime,
    window: LocalWindow,
    channels: Sequence[Channel],
) -> tuple[list[PlannedAction], list[str]]:
    """At most one action per campaign channel and its send time; or the rules that
    refused the case (for progress) when nothing could be planned. Each action chosen
    joins the history the next channel is decided on, so two channels planned for one
    case respect the spacing and caps between them as the worker will. The engine's
    decisions on one history are shared by the channels decided on it (a decision does
    not depend on the channel asked for): a channel that planned nothing leaves the
    history, so the next one reuses them instead of deciding again."""
    chosen: list[PlannedAction] = []
    rules: set[str] = set()
    history = facts.history
    decisions: dict[datetime, Decision] = {}
    last = len(channels) - 1
    for n, channel in enumerate(channels):
        picked, refused_by = _choose_channel(facts, history, cs, now, window, channel, decisions)
        if picked is None:
            rules.update(refused_by)
            continue
        chosen.append(picked)
        if n == last:
            break  # no channel left to decide on the history with this attempt
        a = picked.action
        planned = Attempt(picked.send_at, a.channel, a.party_id, a.contact_point_id)
        history = replace(history, attempts=(*history.attempts, planned))
        decisions = {}  # decided on the history before this attempt
    if chosen:
        return chosen, []
    return [], sorted(rules or {"campaign.no_candidate"})


def _choose_channel(
    facts: CaseFacts,
    history: History,
    cs: CompiledStrategy,
    now: datetime,
    window: LocalWindow,
    channel: Channel,
    decisions: dict[datetime, Decision],
) -> tuple[PlannedAction | None, set[str]]:
    """One channel's action, on `history`; `decisions` holds (and gains) the engine's
    decisions on that history by instant."""

    def decision_at(t: datetime) -> Decision:
        found = decisions.get(t)
        if found is None:
            found = decisions[t] = decide(facts.case, history, t, cs)
        return found

    first = decision_at(now)
    if first.case_reasons and not first.allowed:
        return None, {r.rule for r in first.case_reasons}
    zones: dict[str, list[str]] = first.extra.get("zones", {})
    rules: set[str] = set()
    targets: set[datetime] = set()
    for action in first.allowed:  # most preferred first
        if action.channel != channel:
            continue
        bounds = window.next_open(action.zones, now)
        if bounds is None:
            rules.add("campaign.window")
            continue
        if bounds[0] <= now:
            return PlannedAction(action, now, first), set()
        targets.add(bounds[0])  # later today, or the next day's window once today's closed
    rules.update(_later_starts(first, channel, now, now, window, zones, targets))
    tried: set[datetime] = set()
    while targets and len(tried) < MAX_LOOKAHEAD_DECISIONS:
        t = min(targets)
        targets.discard(t)
        tried.add(t)
        later = decision_at(t)
        for action in later.allowed:
            if action.channel != channel:
                continue
            bounds = _planning_window(window, action.zones, now, t)
            if bounds is not None and bounds[0] <= t < bounds[1]:
                return PlannedAction(action, t, later), set()
        # Refused there too (a weekend, a holiday): try when the engine says it may.
        _later_starts(later, channel, now, t, window, zones, targets)
        targets -= tried
    return None, rules


def _planning_window(
    window: LocalWindow, zones: Sequence[str], now: datetime, t: datetime
) -> tuple[datetime, datetime] | None:
    """The window an attempt for instant `t` must fall in: today's while today's has not
    closed at `now` (a morning campaign plans this morning); once it has (a campaign
    started in the afternoon), the first window from `t` on, so planning rolls on to the
    next day the engine allows."""
    today = window.today(zones, now)
    if today is not None and now < today[1]:
        return today
    return window.next_open(zones, t)


def _later_starts(
    decision: Decision,
    channel: Channel,
    now: datetime,
    at: datetime,
    window: LocalWindow,
    zones: dict[str, list[str]],
    into: set[datetime],
) -> set[str]:
    """Add the first instant each of the channel's refused candidates (in a decision
    taken at `at`) may be tried: the engine's `next_allowed`, moved into the planning
    window; return the rules that refused them."""
    rules: set[str] = set()
    for refusal in decision.refused:
        cand = refusal.candidate
        if cand.channel != channel:
            continue
        rules.update(refusal.rules)
        if refusal.next_allowed is None or refusal.next_allowed <= at:
            continue
        point_zones = zones.get(cand.contact_point_id) or []
        bounds = _planning_window(window, point_zones, now, refusal.next_allowed)
        if bounds is None:
            continue
        t = max(bounds[0], refusal.next_allowed)
        if t < bounds[1]:
            into.add(t)
    return rules


async def finish_completed(
    maker: async_sessionmaker[AsyncSession], now: datetime
) -> list[uuid.UUID]:
    """Running campaigns whose planning is finished and whose attempts are all final
    (completed, failed, refused, cancelled, not sent) become `done`."""
    outstanding = [s.value for s in AttemptState if not is_final(s)]
    async with maker() as session:
        finished = (
            await session.scalars(
                select(CampaignRow.id).where(
                    CampaignRow.status == RUNNING,
                    CampaignRow.plan_done.is_(True),
                    ~exists().where(
                        AttemptRow.campaign_id == CampaignRow.id,
                        AttemptRow.state.in_(outstanding),
                    ),
                )
            )
        ).all()
    done: list[uuid.UUID] = []
    for cid in finished:
        async with maker() as session:
            try:
                await campaigns.transition(session, cid, "done", actor="planner", now=now)
            except ConflictError:
                continue  # paused or cancelled meanwhile
            done.append(cid)
            log.info("campaign %s done: planned to the end, every attempt final", cid)
    return done


async def claim(
    maker: async_sessionmaker[AsyncSession], owner: str, now: datetime
) -> uuid.UUID | None:
    """Take the planning lease of one running campaign that still has cases to plan;
    first, close the campaigns that are finished (`finish_completed`): the planner loop
    of every worker calls this every few seconds."""
    await finish_completed(maker, now)
    async with maker() as session:
        candidates = (
            await session.scalars(
                select(CampaignRow.id).where(
                    CampaignRow.status == RUNNING,
                    CampaignRow.plan_done.is_(False),
                    (CampaignRow.plan_lease_until.is_(None))
                    | (CampaignRow.plan_lease_until < now)
                    | (CampaignRow.plan_lease_owner == owner),
                )
            )
        ).all()
        for cid in candidates:
            result = await session.execute(
                update(CampaignRow)
                .where(
                    CampaignRow.id == cid,
                    CampaignRow.status == RUNNING,
                    CampaignRow.plan_done.is_(False),
                    (CampaignRow.plan_lease_until.is_(None))
                    | (CampaignRow.plan_lease_until < now)
                    | (CampaignRow.plan_lease_owner == owner),
                )
                .values(plan_lease_owner=owner, plan_lease_until=now + LEASE)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                await session.commit()
                return cid
        await session.commit()
        return None


async def plan_campaign(
    maker: async_sessionmaker[AsyncSession],
    campaign_id: uuid.UUID,
    clock: Callable[[], datetime],
    *,
    queue: JobQueue | None = None,
    owner: str = "planner",
    batch: int = 1000,
    metrics: Metrics | None = None,
) -> PlanReport:
    """Plan the campaign to its end (or until it stops running or the lease is lost).
    With `queue`, a relay task publishes the outbox while the next batches are planned
    (each committed batch wakes it) and drains it before this returns; a broker failure
    it met is raised here."""
    report = PlanReport()
    strategies = StrategyCache()
    bind = maker.kw.get("bind")
    postgres = bind is not None and bind.dialect.name == "postgresql"
    wake = asyncio.Event()
    finished = False

    async def relay() -> None:
        assert queue is not None
        while True:
            wake.clear()
            last = finished
            # On PostgreSQL two drains share the rows (SKIP LOCKED): one waits for the
            # broker's confirms while the other reads or marks its rows.
            drains = RELAY_DRAINS if postgres else 1
            await asyncio.gather(*(outbox.relay_all(maker, queue, clock()) for _ in range(drains)))
            if last:
                return
            await wake.wait()

    def read_ahead(after: uuid.UUID, portfolio: str, case_filter: dict[str, Any]) -> _Ahead:
        async def read() -> _Page:
            async with maker() as session:
                page = open_cases_page(portfolio, after, batch, case_filter)
                ids = list((await session.scalars(page)).all())
                return _Page(after, ids, await load_facts(session, ids, clock()))

        return asyncio.create_task(read(), name="planner-read-ahead")

    relaying = asyncio.create_task(relay(), name="planner-relay") if queue else None
    ahead: _Ahead | None = None
    try:
        while True:
            now = clock()
            async with maker() as session:
                step = await _plan_batch(
                    session, campaign_id, now, owner, batch, strategies, ahead, read_ahead
                )
            if step is None:
                break
            cases, planned, refused, done, ahead = step
            report.cases += cases
            report.planned += planned
            report.refused.update(refused)
            if metrics is not None:  # the batch's refusals by rule, as committed for progress
                metrics.record_refusals(refused.elements())
            if relaying is not None and planned:
                if relaying.done():
                    relaying.result()  # the broker refused: raise it here
                wake.set()
            if done:
                report.done = True
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
        finished = True
        wake.set()
        await relaying
    return report


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
) -> tuple[int, int, Counter[str], bool, _Ahead | None] | None:
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
        return 0, 0, Counter(), True, None
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
    return (*step, following)


async def _decide_and_record(
    session: AsyncSession,
    campaign: CampaignRow,
    portfolio: Portfolio,
    ids: list[uuid.UUID],
    facts: dict[uuid.UUID, CaseFacts],
    now: datetime,
    owner: str,
    strategies: StrategyCache,
) -> tuple[int, int, Counter[str], bool]:
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
    return len(ids), len(records), refused, False


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
