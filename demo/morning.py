"""`dialer demo`: one morning of the real service on the embedded default.

A fresh SQLite file, the HTTP service (uvicorn on a free localhost port, in this process),
the in-process queue, the worker's loops (`Runtime`) and the telephony simulator, which
posts signed callbacks back to the service over HTTP. The sample portfolio is imported,
the presets activated, and one morning campaign per portfolio started at a simulated
instant (whatever the wall clock says): simulated time moves only with the work (the
worker's pacing waits) and jumps over the idle hours between one zone's window and the
next, so the morning follows the sun from Shanghai to Honolulu in seconds, and the same
seed plays the same morning (`SimulatedClock`, `OneAtATime`). The set-up (`DemoService`,
`seed`) is shared with the tests that drive the dashboard in a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import secrets
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.inprocess import InProcessJobQueue
from adapters.ports import Delivery
from adapters.simulator import SimulatedTelephony, SimulatorSettings
from dialer.api.app import create_app
from dialer.core.auth import Role
from dialer.core.settings import Settings
from dialer.db.engine import build_engine
from dialer.db.migrate import upgrade_to_head
from dialer.db.models import AttemptRow, CaseRow, TaskRow
from dialer.dispatch import pacing, reconciler
from dialer.dispatch.runtime import Runtime, worker_config
from dialer.dispatch.worker import Dispatcher
from dialer.domain.attempts import FINAL_STATES, AttemptState
from dialer.schemas.campaigns import CampaignIn, ProgressOut
from dialer.services import assignment, campaigns, imports, keys, portfolios, strategies

# Tuesday 1 December 2026, 09:00 in Shanghai: the morning the demo simulates.
MORNING = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
WINDOW = "09:00-12:00"  # each party's own local time
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "portfolio.csv"
# name, guardrail profile, country, zone, preset (as the README's tour creates them)
PORTFOLIOS = (
    ("cn-loans", "cn-consumer", "CN", "Asia/Shanghai", "consumer-loan"),
    ("us-loans", "us-consumer", "US", "America/New_York", "us-consumer-loan"),
    ("b2b", "commercial", "CN", "Asia/Shanghai", "b2b-receivables"),
)
ACCOUNT_SID = "AC" + "d" * 32
LIVE = [s.value for s in pacing.LIVE] + [AttemptState.UNKNOWN.value]
FINAL = [s.value for s in FINAL_STATES]


class SimulatedClock:
    """Simulated time, read from nowhere else: it stands still while work is done and
    moves only when told, so the same seed plays the same morning whatever the machine's
    speed. The worker's waits for a pacing slot move it (`sleep`), and the morning's loop
    jumps it over idle stretches (`jump_to`)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def jump_to(self, instant: datetime) -> None:
        self._now = max(self._now, instant)

    async def sleep(self, seconds: float) -> None:
        """A wait in simulated time: over at once, the clock that much later."""
        if seconds > 0:
            self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class OneAtATime(Dispatcher):
    """The worker's dispatcher, taking one job at a time and only once every callback of
    the previous one has been answered: each decision then sees the whole history before
    it, as it would with real calls minutes apart, and never a race between a call's
    callbacks and the next decision (what made two runs of one seed differ)."""

    def __init__(self, *args: Any, simulator: SimulatedTelephony, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.simulator = simulator

    async def __call__(self, delivery: Delivery) -> None:
        await self.simulator.drain()
        await super().__call__(delivery)
        await self.simulator.drain()


@dataclass
class DemoRuntime(Runtime):
    """The worker's loops, with `OneAtATime` dispatch and waits in simulated time."""

    simulator: SimulatedTelephony | None = None

    def dispatcher(self) -> Dispatcher:
        assert self.simulator is not None and isinstance(self.clock, SimulatedClock)
        return OneAtATime(
            self.maker,
            self.telephony,
            self.mailer,
            self.clock,
            config=worker_config(self.settings),
            metrics=self.metrics,
            sleep=self.clock.sleep,
            simulator=self.simulator,
        )


@dataclass
class DemoService:
    """The running service: HTTP on `base_url`, the worker's loops, the simulator."""

    settings: Settings
    clock: SimulatedClock
    queue: InProcessJobQueue
    telephony: SimulatedTelephony
    maker: async_sessionmaker[AsyncSession]
    runtime: Runtime
    base_url: str


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def remove_database(database: Path) -> None:
    """Delete a SQLite file and its journal files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def demo_service(
    database: Path, *, start: datetime = MORNING, seed: int = 7, fresh: bool = True
) -> AsyncIterator[DemoService]:
    """Migrate `database` (deleted first when `fresh`) and run the whole service on it
    until the block exits. The worker's loops start with `service_loops`."""
    if fresh:
        await asyncio.to_thread(remove_database, database)
    sock = _free_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        telephony="simulator",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=SecretStr(secrets.token_hex(16)),  # this run's signing key
        public_base_url=base_url,
        simulator_seed=seed,
        callback_number="+14155550100",
        default_team_number="+14155550111",
        log_level="WARNING",
        log_format="text",
    )
    engine = build_engine(settings)
    await upgrade_to_head(engine)
    await engine.dispose()
    clock = SimulatedClock(start)
    queue = InProcessJobQueue(clock=clock, delivery_limit=settings.queue_delivery_limit)
    app = create_app(settings, clock=clock, queue=queue)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on", access_log=False)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
                raise RuntimeError("the demo service stopped while starting")
            await asyncio.sleep(0.01)
        maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
        telephony = SimulatedTelephony(
            SimulatorSettings(
                account_sid=ACCOUNT_SID,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                public_base_url=base_url,
                our_number=settings.twilio_from_number,
                seed=seed,
                # one call at a time (`OneAtATime`): short pauses keep the morning short
                delay=(0.0005, 0.002),
                first_delay=(0.002, 0.005),
            ),
            clock=clock,
        )
        # The webhooks redirect live calls (voicemail after the beep) through the same
        # simulator that placed them.
        app.state.telephony = telephony
        runtime = DemoRuntime(
            settings,
            app.state.engine,
            maker,
            queue,
            telephony,
            None,
            clock,
            app.state.metrics,
            simulator=telephony,
        )
        yield DemoService(settings, clock, queue, telephony, maker, runtime, base_url)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        sock.close()


# --- the data ------------------------------------------------------------------------------
def sample_lines(path: Path = SAMPLE, cases_per_portfolio: int | None = None) -> Iterator[str]:
    """The CSV's lines, keeping the first `cases_per_portfolio` cases of each portfolio."""
    with path.open(encoding="utf-8") as fh:
        header = fh.readline()
        yield header
        seen: dict[str, list[str]] = {}
        for line in fh:
            row = next(csv.reader(io.StringIO(line)))
            refs = seen.setdefault(row[0], [])
            if row[1] not in refs:
                refs.append(row[1])
            if cases_per_portfolio is None or len(refs) <= cases_per_portfolio:
                yield line


@dataclass(frozen=True, slots=True)
class Seeded:
    supervisor_key: str
    cases: int
    rejected: int


async def seed(
    maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    *,
    path: Path = SAMPLE,
    cases_per_portfolio: int | None = None,
) -> Seeded:
    """Portfolios with their presets active, the sample imported, each case's tier stored
    (an assignment refresh: the dashboard shows outcomes by tier), a supervisor key."""
    async with maker() as session:
        for name, profile, country, zone, preset in PORTFOLIOS:
            await portfolios.create_portfolio(
                session,
                name=name,
                profile=profile,
                country=country,
                timezone=zone,
                actor="demo",
                now=now,
            )
            row = await strategies.create_from_preset(
                session, portfolio=name, preset=preset, actor="demo", now=now
            )
            await strategies.activate(session, row.id, actor="demo", now=now)
        report = await imports.import_stream(
            session,
            enumerate(sample_lines(path, cases_per_portfolio), start=1),
            fmt=imports.ImportFormat.CSV,
            default_portfolio=None,
            settings=settings,
            actor="demo",
            now=now,
        )
        # Each case's tier stored, as a supervisor's refresh before the morning does (ten
        # minutes before: its escalation tasks are not the morning's).
        for name, *_ in PORTFOLIOS:
            await assignment.refresh(session, name, at=now - timedelta(minutes=10), actor="demo")
        _, key = await keys.create_key(
            session, role=Role.SUPERVISOR, name="demo", actor="demo", now=now
        )
    return Seeded(key, report.cases_created + report.cases_updated, len(report.errors))


@dataclass(frozen=True, slots=True)
class Scheduled:
    campaign_id: uuid.UUID
    portfolio: str
    start_at: datetime  # 09:00 in the portfolio's zone on the simulated day


async def create_campaigns(
    maker: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    channels: tuple[str, ...] = ("voice", "sms"),
    pacing_cps: float = 25.0,
) -> list[Scheduled]:
    """One draft morning campaign per portfolio, each to start when its portfolio's
    morning begins (the window is each party's own local time)."""
    scheduled = []
    async with maker() as session:
        for name, _, _, zone, _ in PORTFOLIOS:
            row = await campaigns.create_campaign(
                session,
                CampaignIn.model_validate(
                    {
                        "name": f"morning {now:%Y-%m-%d}",
                        "portfolio": name,
                        "channels": list(channels),
                        "window": WINDOW,
                        "pacing_cps": pacing_cps,
                        "max_in_progress": 40,
                    }
                ),
                actor="demo",
                now=now,
            )
            local = now.astimezone(ZoneInfo(zone))
            nine = local.replace(hour=9, minute=0, second=0, microsecond=0)
            if nine + timedelta(hours=3) <= local:  # this morning is over there: the next
                nine += timedelta(days=1)
            scheduled.append(Scheduled(row.id, name, max(now, nine.astimezone(UTC))))
    return scheduled


async def start_due(
    maker: async_sessionmaker[AsyncSession], schedule: list[Scheduled], now: datetime
) -> list[Scheduled]:
    """Start the campaigns whose morning has come; returns those still waiting."""
    waiting = []
    async with maker() as session:
        for item in schedule:
            if item.start_at <= now:
                await campaigns.transition(
                    session, item.campaign_id, "running", actor="demo", now=now
                )
            else:
                waiting.append(item)
    return waiting


# --- the morning ---------------------------------------------------------------------------
@dataclass(slots=True)
class Snapshot:
    planned: int = 0
    final: int = 0
    live: int = 0
    plan_done: bool = False
    now: datetime = MORNING


@dataclass(slots=True)
class MorningReport:
    campaigns: list[uuid.UUID]
    started: datetime  # simulated
    ended: datetime  # simulated
    elapsed_seconds: float  # wall clock
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, outcome)
    refusals: Counter[str] = field(default_factory=Counter)  # by rule (planning + dispatch)
    # planning: cases the planner did not plan, by rule (a case counts under each rule)
    planning_refusals: Counter[str] = field(default_factory=Counter)
    # dispatch: attempts the worker refused, by rule (an attempt counts under each rule)
    dispatch_refusals: Counter[str] = field(default_factory=Counter)
    promises: int = 0
    promised: Counter[str] = field(default_factory=Counter)  # whole units by currency
    tasks: Counter[str] = field(default_factory=Counter)  # by action
    not_final: int = 0
    stragglers: list[str] = field(default_factory=list)  # simulator calls cut short
    timed_out: bool = False
    swept: int = 0  # left sent although their call had ended: finished by the reconciler


async def snapshot(
    maker: async_sessionmaker[AsyncSession], campaign_ids: list[uuid.UUID], now: datetime
) -> Snapshot:
    async with maker() as session:
        snap = Snapshot(now=now, plan_done=True)
        for cid in campaign_ids:
            row = await campaigns.get_campaign(session, cid)
            snap.planned += row.planned or 0
            snap.plan_done = snap.plan_done and (row.plan_done or row.status == "draft")
        by_state = dict(
            (
                await session.execute(
                    select(AttemptRow.state, func.count())
                    .where(AttemptRow.campaign_id.in_(campaign_ids))
                    .group_by(AttemptRow.state)
                )
            ).all()
        )
    snap.final = sum(n for s, n in by_state.items() if s in FINAL)
    snap.live = sum(n for s, n in by_state.items() if s in LIVE)
    return snap


async def run_morning(
    service: DemoService,
    schedule: list[Scheduled],
    *,
    on_progress: Callable[[Snapshot], None] | None = None,
    concurrency: int = 1,
    limit_seconds: float = 900.0,  # a guard against a hang, not the expected duration
) -> MorningReport:
    """Start each campaign when its morning comes and run the worker's loops until every
    attempt is final (waiting for the simulator's callbacks), jumping the clock over idle
    hours to the next due job or campaign start; then stop the loops."""
    started, t0 = service.clock(), time.monotonic()
    campaign_ids = [item.campaign_id for item in schedule]
    waiting = await start_due(service.maker, schedule, started)
    runtime = service.runtime
    loops = asyncio.create_task(runtime.run(concurrency), name="runtime")
    timed_out = False
    quiet = report_swept = 0
    try:
        while True:
            if loops.done():
                loops.result()  # the loops never end by themselves: raise what ended them
            if waiting and waiting[0].start_at <= service.clock():
                waiting = await start_due(service.maker, waiting, service.clock())
            snap = await snapshot(service.maker, campaign_ids, service.clock())
            if on_progress is not None:
                on_progress(snap)
            idle = snap.live == 0 and service.telephony.in_flight == 0
            if not waiting and snap.plan_done and idle and snap.final >= snap.planned:
                break
            if snap.plan_done and snap.live and service.telephony.in_flight == 0:
                quiet += 1
                if quiet >= 20:  # ~1 s with nothing in flight: ask the provider, as the
                    report_swept += await _sweep(service)  # reconciler does for the stuck
                    quiet = 0
            else:
                quiet = 0
            due = service.queue.next_due()
            nexts = [t for t in (due, waiting[0].start_at if waiting else None) if t is not None]
            # Not while the worker holds a job: one it has reserved (after the snapshot
            # was read) and is about to dial would be dialled hours after its decision.
            held = service.queue.in_hand()
            if snap.plan_done and idle and not held and nexts and min(nexts) > service.clock():
                service.clock.jump_to(min(nexts))  # nothing to wait for until then
                await service.queue.publish([])  # wake the queue up on the new time
            if time.monotonic() - t0 > limit_seconds:
                timed_out = True
                break
            await asyncio.sleep(0.05)
        stragglers = await service.telephony.drain(wait_seconds=10.0)
    finally:
        runtime.stop.set()
        await asyncio.gather(loops, return_exceptions=True)
    report = await summarise(service.maker, campaign_ids, started, service.clock())
    report.elapsed_seconds = time.monotonic() - t0
    report.stragglers = stragglers
    report.timed_out = timed_out
    report.swept = report_swept
    return report


async def _sweep(service: DemoService) -> int:
    """Attempts left sent or ringing whose call has ended at the simulator: the
    reconciler looks them up now rather than after DIALER_STUCK_ATTEMPT_TIMEOUT_SECONDS."""
    stuck = timedelta(seconds=service.settings.stuck_attempt_timeout_seconds)
    found = await reconciler.reconcile(
        service.maker, service.telephony, service.clock() + stuck, stuck_after=stuck
    )
    return sum(found.moved.values())


def outcome_of(state: str, result: str) -> str:
    """What an attempt's summary line says: the call's or text's result once completed,
    else the state it ended in."""
    return result if state == AttemptState.COMPLETED.value else state


async def summarise(
    maker: async_sessionmaker[AsyncSession],
    campaign_ids: list[uuid.UUID],
    started: datetime,
    ended: datetime,
) -> MorningReport:
    report = MorningReport(campaign_ids, started, ended, 0.0)
    async with maker() as session:
        rows = await session.execute(
            select(AttemptRow.channel, AttemptRow.state, AttemptRow.result, func.count())
            .where(AttemptRow.campaign_id.in_(campaign_ids))
            .group_by(AttemptRow.channel, AttemptRow.state, AttemptRow.result)
        )
        for channel, state, result, n in rows:
            report.attempts[(channel, outcome_of(state, result))] += n
            if state not in FINAL:
                report.not_final += n
        for cid in campaign_ids:
            progress: ProgressOut = await campaigns.progress(session, cid)
            report.refusals.update(progress.refused_by_rule)
            row = await campaigns.get_campaign(session, cid)
            report.planning_refusals.update(row.refused_by_rule or {})
        report.dispatch_refusals = report.refusals - report.planning_refusals
        promises = await session.execute(
            select(AttemptRow.promise_amount, AttemptRow.case_id)
            .where(
                AttemptRow.campaign_id.in_(campaign_ids),
                AttemptRow.result == "promise_to_pay",
            )
            .order_by(AttemptRow.id)
        )
        for amount, case_id in promises:
            report.promises += 1
            case = await session.get(CaseRow, case_id)
            if amount is not None and case is not None:
                total = Decimal(report.promised.get(case.currency, 0)) + Decimal(amount)
                report.promised[case.currency] = int(total)
        for action, n in await session.execute(
            select(TaskRow.action, func.count())
            .where(TaskRow.created_at >= started)
            .group_by(TaskRow.action)
        ):
            report.tasks[action] += n
    return report
