"""The worker processes of `bench.dispatch`, and the campaign helpers its phases share.

Each worker is `python -m bench.dispatch --worker ...`: a `Dispatcher` consuming the
bench's queues with CONCURRENCY handler calls and a mocked provider that notes when each
call was placed (wall clock, one time line for every process). The parent signals through
files: `.markN` (note CPU time now), `.stop`; the worker writes its record as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adapters.fakes import FakeTelephony
from adapters.ports import CallRequest, Job, ProviderRef
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from bench.plan import AT
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AttemptRow, CampaignRow
from dialer.dispatch import outbox, planner
from dialer.dispatch.worker import Dispatcher
from dialer.services import campaigns

# Jobs in flight per worker process by default (its handler calls; the prefetch counts
# messages, see `RabbitJobQueue.prefetch`). A paced job holds its place while it waits.
CONCURRENCY = 64
POOL = 8  # connections per worker process: a batch, not a job, holds one

Workers = list[tuple[subprocess.Popen[bytes], str]]


class CountingQueue(RabbitJobQueue):
    """The relay's queue: notes when each published batch was confirmed."""

    def __init__(self, settings: RabbitSettings, clock: Any) -> None:
        super().__init__(settings, clock=clock)
        self.published: list[tuple[float, int]] = []

    async def publish(self, jobs: Sequence[Job]) -> None:
        await super().publish(jobs)
        self.published.append((time.perf_counter(), len(jobs)))


class MockProvider(FakeTelephony):
    """Accepts every call at once; remembers when (wall clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def place_call(self, request: CallRequest) -> ProviderRef:
        self.times.append(time.time())
        return ProviderRef("mock", f"CA{uuid.uuid4().hex}", "queued")


def rabbit_settings(amqp: str, namespace: str, bundle: int | None) -> RabbitSettings:
    """The queue of the relay and of the workers: jobs a message from `--bundle`."""
    settings = RabbitSettings(url=amqp, namespace=namespace)
    return replace(settings, bundle_size=bundle) if bundle else settings


def engine_clock(t0: float) -> Any:
    """The bench's instant: Tuesday 09:00 in Shanghai at `t0`, moving with the wall clock
    (shared by every process, so pacing slots and dials are on one time line)."""
    return lambda: AT + timedelta(seconds=time.time() - t0)


async def worker_main(args: argparse.Namespace) -> None:
    schema, namespace, t0, out = args.worker
    profile = os.environ.get("BENCH_DISPATCH_PROFILE")  # a directory: cProfile per worker
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler is not None:
        profiler.enable()
    settings = Settings(database_url=args.database_url, database_schema=schema)
    # a fixed pool, no ping per checkout: a job that meets a dropped connection fails
    engine = build_engine(settings, pool_size=POOL, pre_ping=False)
    clock = engine_clock(float(t0))
    queue = RabbitJobQueue(rabbit_settings(args.amqp, namespace, args.bundle), clock=clock)
    provider = MockProvider()
    await queue.connect()
    dispatcher = Dispatcher(build_sessionmaker(engine), provider, None, clock)
    ready_cpu = time.process_time()
    await queue.consume(dispatcher, concurrency=args.concurrency)
    lags: list[float] = []  # how late a 5 ms timer fires: the event loop's lag

    async def watch_lag() -> None:
        while True:
            due = time.perf_counter() + 0.005
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - due)

    watcher = asyncio.create_task(watch_lag())
    marks: list[tuple[float, float, int, int]] = []  # (wall, CPU, late dials, lags) at marks
    while not Path(out + ".stop").exists():  # noqa: ASYNC240 - signalled through a file
        if Path(out + f".mark{len(marks)}").exists():  # noqa: ASYNC240
            marks.append((time.time(), time.process_time(), dispatcher.late, len(lags)))
        await asyncio.sleep(0.02)
    watcher.cancel()
    await queue.close()
    await engine.dispose()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(Path(profile or ".") / f"{Path(out).stem}.prof"))
    record = {"times": provider.times, "marks": marks, "lags": lags, "ready_cpu": ready_cpu}
    record["batches"] = dispatcher.batch_counts()
    Path(out).write_text(json.dumps(record))  # noqa: ASYNC240 - once, at the end


def worker_entry(args: argparse.Namespace) -> None:
    asyncio.run(worker_main(args))


def start_workers(
    args: argparse.Namespace, schema: str, namespace: str, t0: float, tmp: Path
) -> Workers:
    procs = []
    for i in range(2):
        out = str(tmp / f"worker-{i}.json")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.dispatch", "--database-url", args.database_url,
             "--amqp", args.amqp, "--concurrency", str(args.concurrency),
             "--worker", schema, namespace, str(t0), out,
             *(["--bundle", str(args.bundle)] if args.bundle else [])],
            cwd=Path(__file__).parents[1],
        )  # fmt: skip
        procs.append((proc, out))
    return procs


def mark_workers(procs: Workers, n: int) -> None:
    """Each worker notes its CPU time at this mark (within 20 ms)."""
    for _, out in procs:
        Path(out + f".mark{n}").touch()


def stop_workers(procs: Workers) -> list[dict[str, Any]]:
    for _, out in procs:
        Path(out + ".stop").touch()
    results = []
    for proc, out in procs:
        proc.wait(timeout=120)
        results.append(json.loads(Path(out).read_text()))
    return results


def server_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL and RabbitMQ processes of this machine
    (all their work, not only this bench's: other clients' load shows here too)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            rest = fields[1].split()
        except (OSError, IndexError):
            continue
        if name.startswith(("postgres", "beam", "erl_child", "epmd", "inet_gethost")):
            # own time, and that of exited children (backends of closed connections)
            total += sum(int(x) for x in rest[11:15])
    return total / tick


async def count_sent(maker: Any, cid: uuid.UUID) -> int:
    async with maker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AttemptRow)
                .where(AttemptRow.campaign_id == cid, AttemptRow.state == "sent")
            )
            or 0
        )


async def new_campaign(maker: Any, cps: float, name: str, tier: str) -> uuid.UUID:
    """Created directly: the API caps pacing at 1,000/s, the throughput runs need more."""
    async with maker() as session:
        row = CampaignRow(
            id=uuid.uuid4(), name=name, portfolio="bench", filter={"tiers": [tier]},
            channels=["voice"],
            window="09:00-11:30", pacing_cps=cps, max_in_progress=None, status="draft",
            created_by="bench", created_at=AT, plan_done=False, cases_seen=0, planned=0,
            refused_by_rule={},
        )  # fmt: skip
        session.add(row)
        await session.commit()
        await campaigns.transition(session, row.id, "running", actor="bench", now=AT)
        return row.id


async def run_phase(
    maker: Any, cid: uuid.UUID, queue: CountingQueue, clock: Any, expected: int
) -> tuple[float, float, float, float]:
    """Plan and relay the campaign; seconds until the planner returned, seconds until
    `expected` attempts are sent, this process's CPU seconds meanwhile (planner, relay,
    and the polling here), and seconds until the relay had published them all."""
    started, cpu = time.perf_counter(), time.process_time()
    queue.published.clear()
    stop = asyncio.Event()
    relay = asyncio.create_task(outbox.run_relay(maker, queue, clock, idle=0.02, stop=stop))
    await planner.plan_campaign(maker, cid, clock, batch=1000)
    planned = time.perf_counter() - started
    while await count_sent(maker, cid) < expected:  # noqa: ASYNC110 - polling the table
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    stop.set()
    await relay
    relayed = next(
        (t for t, n in itertools.accumulate(queue.published, lambda a, b: (b[0], a[1] + b[1]))
         if n >= expected),
        time.perf_counter(),
    ) - started  # fmt: skip
    return planned, seconds, time.process_time() - cpu, relayed
