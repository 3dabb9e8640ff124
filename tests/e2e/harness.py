"""The end-to-end world: a PostgreSQL schema, a RabbitMQ namespace, a mock Twilio, and real
`dialer worker`-equivalent OS processes (`tests.e2e.worker_main`) working on a campaign.

The checks here read the outside world's record (the mock's log of create requests) against
the database's, so they hold whatever the code under test believes happened:
- at most one call or message per attempt (invariant 3), and none for a refused,
  cancelled or not_sent attempt; every sent one carries the sid the provider gave;
- caps per case, per contact point and per channel as the provider saw them (invariant 2);
- no attempt left planned/queued/reserved/unknown, nothing unpublished in the outbox,
  nothing left on the work queue (invariant 6: nothing lost, acked only once recorded);
- the compliance audit (`dialer.services.audit`) reports no violation.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.exceptions import AMQPException
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.db.models import AttemptRow, CampaignRow, ContactPointRow, OutboxRow, PartyRow
from dialer.dispatch import planner, reconciler
from dialer.schemas.campaigns import CampaignIn
from dialer.schemas.strategies import StrategyIn
from dialer.services import campaigns, strategies
from dialer.services.audit import audit
from dialer.services.imports import ImportFormat, import_stream
from tests.dialer.dispatch_world import INSIDE, mid_tier_strategy
from tests.dialer.factories import add_cn_loans
from tests.e2e.mock_twilio import MockTwilio
from tests.e2e.worker_main import BUCKETS, mock_telephony, shifted_clock

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "AC" + "0" * 32
TOKEN = "e2e-token"
PUBLIC = "https://dialer.example.com"
# What the provider holding (or having held) an attempt looks like, dispatch-wise.
PROVIDER_STATES = {"sent", "ringing", "in_progress", "completed"}
WAITING = {"planned", "queued", "reserved", "dialing", "unknown"}
DELIVERY_LIMIT = 20  # deliveries before the broker dead-letters a job
# What a look at the database or broker raises while it is restarted.
OUTAGE = (OSError, SQLAlchemyError, asyncpg.PostgresError, AMQPException)


def cases_jsonl(n: int) -> list[tuple[int, str]]:
    """n CN cases, 11 days past due (the mid tier), every phone number unique."""
    lines = []
    for i in range(n):
        doc = {
            "external_ref": f"E2E-{i:05d}",
            "portfolio": "cn-loans",
            "amount": "12000.00",
            "currency": "CNY",
            "due_date": "2026-11-20",
            "parties": [
                {
                    "ref": "debtor",
                    "role": "debtor",
                    "name": "Wang Fang",
                    "timezone": "Asia/Shanghai",
                    "contact_points": [
                        {"kind": "phone", "value": f"+86138{i:08d}", "validity": "verified"},
                        {"kind": "phone", "value": f"+86139{i:08d}"},
                    ],
                },
                {
                    "ref": "ref-1",
                    "role": "third_party",
                    "name": "Li Na",
                    "relation": "colleague",
                    "contact_points": [{"kind": "phone", "value": f"+86137{i:08d}"}],
                },
            ],
        }
        lines.append((i + 1, json.dumps(doc)))
    return lines


def tight_strategy(case_cap: int) -> dict[str, Any]:
    return mid_tier_strategy(case_cap=case_cap, spacing_minutes=None)


@dataclass
class Figures:
    """What a run did, printed into the test output."""

    name: str
    cases: int = 0
    jobs: int = 0  # attempts planned (each one job)
    duplicates_injected: int = 0
    crashes_injected: int = 0
    provider_requests: int = 0  # every create request the mock received
    provider_calls: int = 0  # calls/messages that exist at the provider
    states: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    audit_checked: int | None = None
    violations: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def print(self, record: Callable[[str, object], None] | None = None) -> None:
        rows = {
            "cases": self.cases,
            "jobs": self.jobs,
            "duplicates_injected": self.duplicates_injected,
            "crashes_injected": self.crashes_injected,
            "provider_requests": self.provider_requests,
            "provider_calls": self.provider_calls,
            "dead_letters": self.dead_letters,
            "audit_attempts_checked": self.audit_checked,
            "violations_found": len(self.violations),
            **self.extra,
        }
        print(f"\n[e2e {self.name}] " + " ".join(f"{k}={v}" for k, v in rows.items()))
        print(f"[e2e {self.name}] states " + json.dumps(dict(sorted(self.states.items()))))
        for v in self.violations[:20]:
            print(f"[e2e {self.name}] VIOLATION {v}")
        if record is not None:
            for k, v in rows.items():
                record(k, v)


@dataclass
class E2E:
    settings: Settings
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    mock: MockTwilio
    rabbit_url: str
    namespace: str
    workdir: Path
    t0: float = field(default_factory=time.time)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    crashes: int = 0
    spawned: int = 0

    @property
    def clock(self) -> Callable[[], datetime]:
        return shifted_clock(INSIDE, self.t0)

    # --- the world -----------------------------------------------------------------------
    async def seed(self, n_cases: int, *, case_cap: int) -> None:
        now = self.clock()
        await upgrade_to_head(self.engine)
        async with self.maker() as session:
            await add_cn_loans(session, actor="e2e", now=now)
            row = await strategies.create_draft(
                session,
                StrategyIn(portfolio="cn-loans", document=tight_strategy(case_cap)),
                actor="e2e",
                now=now,
            )
            await strategies.activate(session, row.id, actor="e2e", now=now)
            report = await import_stream(
                session,
                cases_jsonl(n_cases),
                fmt=ImportFormat.JSONL,
                default_portfolio="cn-loans",
                settings=self.settings,
                actor="e2e",
                now=now,
            )
        assert report.cases_created == n_cases, report.errors[:3]

    async def campaign(
        self,
        name: str,
        *,
        channels: tuple[str, ...] = ("voice",),
        cps: float = 500.0,
        max_in_progress: int | None = None,
    ) -> uuid.UUID:
        async with self.maker() as session:
            row = await campaigns.create_campaign(
                session,
                CampaignIn.model_validate(
                    {
                        "name": name,
                        "portfolio": "cn-loans",
                        "channels": list(channels),
                        "window": "09:00-11:30",
                        "pacing_cps": cps,
                        "max_in_progress": max_in_progress,
                    }
                ),
                actor="e2e",
                now=self.clock(),
            )
            await campaigns.transition(session, row.id, "running", actor="e2e", now=self.clock())
            return row.id

    async def plan_here(self, campaign_id: uuid.UUID) -> None:
        """Plan in the test process (outbox rows only; the workers' relays publish them)."""
        await planner.plan_campaign(self.maker, campaign_id, self.clock, batch=500)

    # --- the workers ---------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
        env.update(
            DIALER_DATABASE_URL=s.database_url,
            DIALER_DATABASE_SCHEMA=s.database_schema or "",
            DIALER_QUEUE_URL=self.rabbit_url,
            DIALER_QUEUE_NAMESPACE=self.namespace,
            DIALER_QUEUE_DELIVERY_LIMIT=str(DELIVERY_LIMIT),
            DIALER_TWILIO_ACCOUNT_SID=ACCOUNT,
            DIALER_TWILIO_AUTH_TOKEN=TOKEN,
            DIALER_PUBLIC_BASE_URL=PUBLIC,
            DIALER_WORKER_CONCURRENCY="8",
            DIALER_WORKER_METRICS_PORT="0",
            DIALER_TEST_TWILIO_URL=self.mock.url,
            DIALER_TEST_CLOCK_START=INSIDE.isoformat(),
            DIALER_TEST_CLOCK_T0=repr(self.t0),
            DIALER_TEST_STATS=str(self.workdir / "published.log"),
            PYTHONPATH=str(REPO),
        )
        env.update(extra)
        return env

    def spawn(self, **extra: str) -> subprocess.Popen[bytes]:
        self.spawned += 1
        log = open(self.workdir / f"worker-{self.spawned}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.worker_main"],
            cwd=REPO,
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def reap_crashed(self) -> list[subprocess.Popen[bytes]]:
        """Processes that died of SIGKILL since the last look (counted as crashes)."""
        dead = [p for p in self.procs if p.poll() == -signal.SIGKILL]
        for p in dead:
            self.procs.remove(p)
        self.crashes += len(dead)
        return dead

    async def stop_workers(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs:
            while p.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - a child process
                await asyncio.sleep(0.1)
            if p.poll() is None:
                p.kill()
                p.wait()
        self.procs.clear()

    def worker_logs(self) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}"
            for f in sorted(self.workdir.glob("worker-*.log"))
        )

    # --- waiting -------------------------------------------------------------------------
    async def counts(self) -> Counter[str]:
        async with self.maker() as session:
            rows = await session.execute(
                select(AttemptRow.state, func.count()).group_by(AttemptRow.state)
            )
            return Counter({str(s): int(n) for s, n in rows.all()})

    async def planning_done(self) -> bool:
        async with self.maker() as session:
            open_plans = await session.scalar(
                select(func.count())
                .select_from(CampaignRow)
                .where(CampaignRow.status == "running", CampaignRow.plan_done.is_(False))
            )
            unpublished = await session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
            )
        return not open_plans and not unpublished

    async def wait_until(
        self,
        condition: Callable[[], Awaitable[bool]],
        *,
        within: float,
        what: str,
        tick: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        deadline = time.monotonic() + within
        while not await self._holds(condition):
            if tick is not None:
                await tick()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}: {dict(await self.counts())}\n"
                    + self.worker_logs()
                )
            await asyncio.sleep(0.25)

    @staticmethod
    async def _holds(condition: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return await condition()
        except OUTAGE:  # the database or broker is being restarted: ask again later
            return False

    async def quiet(self, *states: str) -> bool:
        """Planning done and no attempt left in any of `states`."""
        counts = await self.counts()
        return await self.planning_done() and not any(counts.get(s) for s in states)

    # --- the reconciler ------------------------------------------------------------------
    async def reconcile_later(self, minutes: float = 10) -> dict[str, int]:
        """The production reconciler, run as the clock will read `minutes` from now (past
        its `reserved` and `unknown` thresholds), against the same mock provider."""
        telephony = mock_telephony(self.settings, self.mock.url)
        moved: Counter[str] = Counter()
        try:
            for _ in range(50):
                report = await reconciler.reconcile(
                    self.maker, telephony, self.clock() + timedelta(minutes=minutes)
                )
                moved.update(report.moved)
                if report.examined == 0 or not report.moved:
                    break
        finally:
            await telephony.close()
        return dict(moved)

    async def reconcile_then_dispatch(self) -> tuple[dict[str, int], int]:
        """With the workers stopped: the reconciler as the clock will read later, then the
        attempts it planned again (calls or texts found never placed, in a running
        campaign) dispatched by a fresh worker, which is stopped once nothing waits.
        Returns (attempts moved per state, attempts planned again)."""
        moved = await self.reconcile_later()
        replanned = (await self.counts()).get("planned", 0)
        if replanned:
            self.spawn()
            await self.wait_until(
                lambda: self.quiet("planned", "queued"), within=120, what="the re-planned"
            )
            await self.wait_until(self.queue_drained, within=60, what="their jobs")
            await self.stop_workers()
        return moved, replanned

    # --- the checks ----------------------------------------------------------------------
    async def queue_depths(self) -> tuple[int, int]:
        """(messages on the work queue, dead letters)."""
        connection = await aio_pika.connect(self.rabbit_url)
        try:
            channel = await connection.channel()
            work = await channel.declare_queue(f"{self.namespace}.jobs", passive=True)
            dead = await channel.declare_queue(f"{self.namespace}.dead-letters", passive=True)
            return (
                work.declaration_result.message_count or 0,
                dead.declaration_result.message_count or 0,
            )
        finally:
            await connection.close()

    async def queue_drained(self) -> bool:
        return (await self.queue_depths())[0] == 0

    def _ops_queue(self) -> RabbitJobQueue:
        return RabbitJobQueue(
            RabbitSettings(
                url=self.rabbit_url,
                namespace=self.namespace,
                delay_buckets=BUCKETS,
                delivery_limit=DELIVERY_LIMIT,
            )
        )

    async def dead_letter_states(self) -> dict[str, int]:
        """What an operator sees with `dialer dead-letters list`: the states of the
        attempts whose jobs are in the dead-letter queue."""
        queue = self._ops_queue()
        try:
            letters = await queue.dead_letters(limit=10_000)
        finally:
            await queue.close()
        ids = [uuid.UUID(d.job.attempt_id) for d in letters if d.job is not None]
        async with self.maker() as session:
            states = (
                await session.scalars(select(AttemptRow.state).where(AttemptRow.id.in_(ids)))
            ).all()
        return dict(Counter(states))

    async def replay_dead_letters(self) -> int:
        """What an operator does with `dialer dead-letters replay`."""
        queue = self._ops_queue()
        try:
            return await queue.replay_dead_letters()
        finally:
            await queue.close()

    def stats(self) -> list[list[str]]:
        log = self.workdir / "published.log"
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    def duplicates_injected(self) -> int:
        return sum(int(p[3]) for p in self.stats() if p and p[0] == "published")

    async def check(self, figures: Figures, *, case_cap: int) -> Figures:
        """Fill `figures` and its violations from the provider's log and the database."""
        v = figures.violations
        async with self.maker() as session:
            attempts = (await session.scalars(select(AttemptRow))).all()
            points = {
                p.id: (p.value, role)
                for p, role in (
                    await session.execute(
                        select(ContactPointRow, PartyRow.role).join(
                            PartyRow, PartyRow.id == ContactPointRow.party_id
                        )
                    )
                ).all()
            }
        by_id = {str(a.id): a for a in attempts}
        states = Counter(a.state for a in attempts)
        figures.states = dict(states)
        figures.jobs = len(attempts)
        created = self.mock.created()
        figures.provider_requests = len(self.mock.creates)
        figures.provider_calls = len(created)
        figures.crashes_injected = self.crashes
        figures.duplicates_injected = self.duplicates_injected()

        # Invariant 3: at most one provider call per attempt, and it is on record.
        for aid, n in self.mock.dials_by_attempt().items():
            if n > 1:
                v.append(f"attempt {aid} dialled {n} times")
        for c in created:
            a = by_id.get(c.attempt_id or "")
            if a is None:
                v.append(f"provider call {c.sid} names no attempt ({c.attempt_id})")
                continue
            if a.state not in PROVIDER_STATES and a.state != "failed":
                v.append(f"attempt {a.id} was dialled but is {a.state}")
            if a.provider_sid != c.sid:
                v.append(f"attempt {a.id} records sid {a.provider_sid}, provider has {c.sid}")
        dialled = {c.attempt_id for c in created}
        for a in attempts:
            if a.state in PROVIDER_STATES and str(a.id) not in dialled:
                v.append(f"attempt {a.id} is {a.state} but the provider never got it")
            if a.state == "refused" and not (a.refusal or {}).get("reasons"):
                v.append(f"attempt {a.id} refused without a reason")

        # Invariant 2: caps as the provider saw them (one local day: the run is minutes).
        per_case: Counter[uuid.UUID] = Counter()
        per_case_sms: Counter[uuid.UUID] = Counter()
        per_point: Counter[str] = Counter()
        third_party: Counter[uuid.UUID] = Counter()
        for c in created:
            a = by_id.get(c.attempt_id or "")
            if a is None:
                continue
            per_case[a.case_id] += 1
            per_point[c.to] += 1
            if c.kind == "sms":
                per_case_sms[a.case_id] += 1
            if points.get(a.contact_point_id, ("", ""))[1] == "third_party":
                third_party[a.case_id] += 1
        for case_id, n in per_case.items():
            if n > case_cap:
                v.append(f"case {case_id}: {n} contacts against a cap of {case_cap}")
        for case_id, n in per_case_sms.items():
            if n > 1:
                v.append(f"case {case_id}: {n} SMS against a cap of 1")
        for case_id, n in third_party.items():
            if n > 1:
                v.append(f"case {case_id}: third party contacted {n} times against 1")
        for number, n in per_point.items():
            if n > 4:
                v.append(f"contact point {number[:6]}***: {n} unanswered against 4")
        figures.extra["cases_contacted"] = len(per_case)
        figures.extra["max_contacts_per_case"] = max(per_case.values(), default=0)

        # Invariant 6: a job is acked only once its attempt is recorded (the workers noted
        # the attempt's state as each handler returned, just before the ack).
        acks = [p for p in self.stats() if p and p[0] == "acked"]
        figures.extra["acks_checked"] = sum(1 for a in acks if a[1] != "unchecked")
        for _, state, aid in acks:
            if state in ("planned", "queued", "None"):
                v.append(f"job {aid} acked while its attempt was {state}")
        # ... nothing waiting, nothing unpublished, nothing left on the queue.
        for state in WAITING:
            if states.get(state):
                v.append(f"{states[state]} attempts left {state}")
        if not await self.planning_done():
            v.append("planning or the outbox did not finish")
        work, dead = await self.queue_depths()
        figures.dead_letters = dead
        if work:
            v.append(f"{work} messages left on the work queue")

        await self.audit(figures)
        return figures

    async def audit(self, figures: Figures) -> None:
        """The compliance audit over everything recorded (it must find nothing)."""
        report = await audit(self.maker)
        figures.audit_checked = report.attempts_checked
        for violation in report.violations:
            figures.violations.append(
                f"audit {violation.rule}: {violation.detail} "
                f"(attempt {violation.attempt_id}, case {violation.case_id})"
            )
        if not report.ok() and not report.violations:
            figures.violations.append("audit: report not ok")


def open_e2e(database_url: str, schema: str, rabbit_url: str, workdir: Path) -> E2E:
    """The world and its mock provider, both on the clock the workers will read."""
    t0 = time.time()
    settings = Settings(
        database_url=database_url,
        database_schema=schema,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=SecretStr(TOKEN),
        public_base_url=PUBLIC,
    )
    engine = build_engine(settings)
    mock = MockTwilio(shifted_clock(INSIDE, t0)).start()
    return E2E(
        settings,
        engine,
        build_sessionmaker(engine),
        mock,
        rabbit_url,
        f"e2e-{uuid.uuid4().hex[:10]}",
        workdir,
        t0,
    )


async def close_e2e(world: E2E) -> None:
    await world.stop_workers()
    queue = RabbitJobQueue(
        RabbitSettings(url=world.rabbit_url, namespace=world.namespace, delay_buckets=BUCKETS)
    )
    await queue.delete_topology()
    world.mock.stop()
    await world.engine.dispose()
