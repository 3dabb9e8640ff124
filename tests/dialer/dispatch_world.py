"""A dispatch test world: a migrated database with a portfolio, an active strategy, cases,
a campaign, the in-process queue on a manual clock, fake telephony, and a worker."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.fakes import FakeMailer, FakeTelephony
from adapters.inprocess import InProcessJobQueue, ManualClock
from adapters.ports import JobQueue
from adapters.templates import TemplateRegistry
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.db.models import AttemptRow
from dialer.dispatch import outbox, planner
from dialer.dispatch.context import WorkerConfig
from dialer.dispatch.worker import Dispatcher
from dialer.schemas.campaigns import CampaignIn
from dialer.schemas.cases import CaseIn
from dialer.schemas.strategies import StrategyIn
from dialer.services import campaigns, strategies
from dialer.services.cases import create_case
from strategy.presets import load_preset
from tests.databases import Database
from tests.dialer.factories import add_cn_loans, cn_case
from tests.dialer.support import settings_for

# Tuesday 2026-12-01 08:30 in Shanghai: before a 09:00-11:30 campaign window opens.
EARLY = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
# 10:00 in Shanghai: inside it.
INSIDE = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def mid_tier_strategy(case_cap: int = 8, spacing_minutes: int | None = 120) -> dict[str, Any]:
    """The consumer-loan preset, its mid tier's case cap and spacing changed."""
    doc = load_preset("consumer-loan").model_dump(mode="json")
    doc = copy.deepcopy(doc)
    doc["name"] = "consumer-loan-test"
    for tier in doc["tiers"]:
        if tier["id"] != "mid":
            continue
        for cap in tier["caps"]:
            if cap["scope"] == "case" and not cap.get("channels"):
                cap["limit"] = case_cap
        if spacing_minutes is None:
            tier["spacing"] = []
        else:
            for s in tier["spacing"]:
                s["minutes"] = spacing_minutes
    return doc


@dataclass
class World:
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    clock: ManualClock
    queue: InProcessJobQueue
    telephony: FakeTelephony
    mailer: FakeMailer
    postgres: bool
    case_ids: list[uuid.UUID] = field(default_factory=list)

    def dispatcher(
        self,
        *,
        templates: TemplateRegistry | None = None,
        maker: async_sessionmaker[AsyncSession] | None = None,
        config: WorkerConfig | None = None,
    ) -> Dispatcher:
        async def sleep(seconds: float) -> None:  # no sleeping: the clock moves instead
            self.clock.advance(timedelta(seconds=seconds))

        return Dispatcher(
            maker or self.maker,
            self.telephony,
            self.mailer,
            self.clock,
            templates=templates,
            sleep=sleep,
            config=config,
        )

    def dispatcher_with_clock(self, clock: Callable[[], datetime]) -> Dispatcher:
        """A worker on another clock, sleeping for real (the broker tests)."""
        return Dispatcher(self.maker, self.telephony, self.mailer, clock)

    async def add_cases(self, n: int, **overrides: Any) -> list[uuid.UUID]:
        ids = []
        async with self.maker() as session:
            for i in range(n):
                doc = CaseIn.model_validate(cn_case(f"CN-{len(self.case_ids) + i}", **overrides))
                row = await create_case(session, doc, actor="test", now=self.clock())
                ids.append(row.id)
        self.case_ids += ids
        return ids

    async def campaign(
        self,
        *,
        channels: Sequence[str] = ("voice",),
        window: str = "09:00-11:30",
        cps: float = 10.0,
        max_in_progress: int | None = None,
        start: bool = True,
        mode: str = "ivr",
    ) -> uuid.UUID:
        async with self.maker() as session:
            row = await campaigns.create_campaign(
                session,
                CampaignIn.model_validate(
                    {
                        "name": "morning",
                        "portfolio": "cn-loans",
                        "channels": list(channels),
                        "window": window,
                        "pacing_cps": cps,
                        "max_in_progress": max_in_progress,
                        "mode": mode,
                    }
                ),
                actor="test",
                now=self.clock(),
            )
            if start:
                await campaigns.transition(
                    session, row.id, "running", actor="test", now=self.clock()
                )
            return row.id

    async def plan(self, campaign_id: uuid.UUID, queue: JobQueue | None = None) -> None:
        await planner.plan_campaign(self.maker, campaign_id, self.clock, batch=7)
        await outbox.relay_all(self.maker, queue or self.queue, self.clock())

    async def attempts(self, **where: Any) -> list[AttemptRow]:
        async with self.maker() as session:
            stmt = select(AttemptRow).order_by(AttemptRow.at, AttemptRow.id)
            for key, value in where.items():
                stmt = stmt.where(getattr(AttemptRow, key) == value)
            return list((await session.scalars(stmt)).all())

    def dials(self) -> int:
        return sum(len(v) for v in self.telephony.calls.values()) + sum(
            len(v) for v in self.telephony.sms.values()
        )

    async def close(self) -> None:
        await self.queue.close()
        await self.engine.dispose()


@asynccontextmanager
async def open_world(
    db: Database, *, start: datetime = EARLY, strategy: dict[str, Any] | None = None
) -> AsyncIterator[World]:
    """`make_world`, closed when the block ends (the tests' `world` fixtures)."""
    world = await make_world(db, start=start, strategy=strategy)
    try:
        yield world
    finally:
        await world.close()


async def make_world(
    db: Database, *, start: datetime = EARLY, strategy: dict[str, Any] | None = None
) -> World:
    settings = settings_for(db)
    engine = build_engine(settings)
    await upgrade_to_head(engine)
    maker = build_sessionmaker(engine)
    clock = ManualClock(start)
    async with maker() as session:
        await add_cn_loans(session, actor="test", now=start)
        row = await strategies.create_draft(
            session,
            StrategyIn(portfolio="cn-loans", document=strategy or mid_tier_strategy()),
            actor="test",
            now=start,
        )
        await strategies.activate(session, row.id, actor="test", now=start)
    telephony = FakeTelephony(now=start)
    return World(
        engine,
        maker,
        clock,
        InProcessJobQueue(clock=clock),
        telephony,
        FakeMailer(),
        db.kind == "postgres",
    )
