"""Dispatch throughput and pacing through RabbitMQ, each beside its ceiling in the same run.

    .venv/bin/python -m bench.dispatch                        # 30,000 jobs, pacing at 1,000/s
    .venv/bin/python -m bench.dispatch --jobs 5000 --cps 100 --pacing-seconds 10  # quicker
    .venv/bin/python -m bench.dispatch --bundle 1             # one job a message
    BENCH_DISPATCH_PROFILE=/tmp/prof .venv/bin/python -m bench.dispatch  # + cProfile per worker

Jobs are compared with jobs, bundled alike (`--bundle`, default `RabbitSettings`'):
1. ceiling (`bench.dispatch_ceiling`): raw aio-pika publishing and consuming the same
   bundles, half of `--raw-seconds` before the phases below and half after, so that both
   sides of each ratio see the same load.
2. relay: a campaign of `--jobs` cases planned, then its outbox published (`relay_all`).
3. workers only: two worker processes (`Dispatcher`, `--concurrency` each) take those jobs
   from the full queue and dial a mocked provider; jobs/s between the 10th and the 90th
   percentile of their dials (their start and tail are not the steady state).
4. dispatch: another `--jobs` cases from the planner's start (planning, relaying and
   dispatching at once) until every attempt is recorded `sent`.
5. pacing: a campaign at `--cps` with `--pacing-seconds` worth of cases, planned and
   dispatched likewise; every dial's instant is recorded. Reported: the most dials in any
   one-second window (sliding, from each dial), the achieved rate (dials - 1 over the
   first-to-last span), the dials too late for their slot (each took a fresh one).
A PostgreSQL schema and queues of its own, removed afterwards. The last lines are
`name: value unit`. Figures and their history: `docs/performance.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from bench.dispatch_ceiling import Ceiling, raw_ceiling
from bench.dispatch_workers import (
    CONCURRENCY,
    CountingQueue,
    Workers,
    count_sent,
    engine_clock,
    mark_workers,
    new_campaign,
    rabbit_settings,
    run_phase,
    server_cpu,
    start_workers,
    stop_workers,
    worker_entry,
)
from bench.plan import AT, seed
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.dispatch import outbox, planner
from dialer.services import campaigns


@dataclass
class Run:
    """What the phases share: the database, the relay's queue, the workers."""

    args: argparse.Namespace
    schema: str
    namespace: str
    maker: Any
    clock: Any = None
    queue: CountingQueue | None = None
    procs: Workers = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def central_rate(times: list[float]) -> float:
    """Dials per second between the 10th and the 90th percentile dial."""
    times = sorted(times)
    first, last = len(times) // 10, len(times) - 1 - len(times) // 10
    return (last - first) / (times[last] - times[first])


async def prepare(run: Run, admin: asyncpg.Connection) -> None:
    """Seed the cases: `--jobs` for the relay and workers-only phases, `--jobs` for the
    dispatch phase, the pacing campaign's; each set a tier of its own."""
    a = run.args
    pacing_cases = int(a.cps * a.pacing_seconds)
    first = await seed(a.database_url, run.schema, 2 * a.jobs + pacing_cases)
    await admin.execute(
        f"UPDATE \"{run.schema}\".cases SET tier = CASE WHEN external_ref < $1 THEN 'drain'"
        " WHEN external_ref < $2 THEN 'throughput' ELSE 'pacing' END",
        f"P-{a.jobs:07d}",
        f"P-{2 * a.jobs:07d}",
    )
    async with run.maker() as session:  # the seeded campaign is not used: three of our own
        await campaigns.transition(session, first, "cancelled", actor="bench", now=AT)


async def relay_and_drain(run: Run, tmp: Path) -> None:
    """Phases 2 and 3: the relay publishes a planned campaign, then the workers start."""
    a, queue = run.args, run.queue
    assert queue is not None
    drain = await new_campaign(run.maker, 1_000_000, "drain", "drain")
    await planner.plan_campaign(run.maker, drain, run.clock, batch=1000)
    started = time.perf_counter()
    relayed = await outbox.relay_all(run.maker, queue, run.clock())
    run.figures["relay"] = relayed / (time.perf_counter() - started)
    t0 = run.figures["t0"]
    run.procs = start_workers(a, run.schema, run.namespace, t0, tmp)
    while await count_sent(run.maker, drain) < a.jobs:  # noqa: ASYNC110 - polling
        await asyncio.sleep(0.05)
    run.figures["drained"] = time.time()


async def throughput(run: Run) -> None:
    """Phase 4: planner, relay and workers at once."""
    assert run.queue is not None
    fast = await new_campaign(run.maker, 1_000_000, "throughput", "throughput")
    mark_workers(run.procs, 0)
    servers = server_cpu()
    planned, seconds, main_cpu, relayed = await run_phase(
        run.maker, fast, run.queue, run.clock, run.args.jobs
    )
    run.figures.update(
        servers_cpu=server_cpu() - servers,
        planning_seconds=planned,
        dispatch_seconds=seconds,
        main_cpu=main_cpu,
        relayed_seconds=relayed,
    )
    mark_workers(run.procs, 1)
    await asyncio.sleep(0.1)  # the workers read their marks


async def paced(run: Run) -> list[dict[str, Any]]:
    """Phase 5; stops the workers and returns what they recorded."""
    assert run.queue is not None
    a = run.args
    campaign = await new_campaign(run.maker, a.cps, "pacing", "pacing")
    run.figures["pacing_from"] = time.time()
    await run_phase(run.maker, campaign, run.queue, run.clock, int(a.cps * a.pacing_seconds))
    results = stop_workers(run.procs)
    run.procs = []
    return results


async def phases(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    schema, namespace = f"bench_dispatch_{tag}", f"bench-dispatch-{tag}"
    admin = await asyncpg.connect(args.database_url.replace("+asyncpg", ""))
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    tmp = Path(f"/tmp/{schema}")
    tmp.mkdir()  # noqa: ASYNC240
    engine = build_engine(Settings(database_url=args.database_url, database_schema=schema))
    run = Run(args, schema, namespace, build_sessionmaker(engine))
    try:
        await prepare(run, admin)
        t0 = time.time()
        run.figures["t0"] = t0
        run.clock = engine_clock(t0)
        run.queue = CountingQueue(rabbit_settings(args.amqp, namespace, args.bundle), run.clock)
        await run.queue.connect()
        await relay_and_drain(run, tmp)
        await throughput(run)
        results = await paced(run)
    finally:
        for proc, out in run.procs:
            Path(out + ".stop").touch()  # noqa: ASYNC240
            proc.wait(timeout=60)
        if run.queue is not None:
            await run.queue.close()
            await run.queue.delete_topology()
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return summarize(run, results)


def summarize(run: Run, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures from the workers' records (dial instants, CPU at the marks)."""
    f, a = run.figures, run.args
    dials = [t for r in results for t in r["times"]]
    paced = sorted(t for t in dials if t >= f["pacing_from"])
    drained = [t for t in dials if t <= f["drained"]]
    lags = sorted(x for r in results for x in r["lags"][r["marks"][1][3] :])
    late = sum(r["batches"][4] for r in results)
    late_before = sum(r["marks"][1][2] for r in results)
    return {
        **f,
        "drain": central_rate(drained),
        "drain_cpu": sum(r["marks"][0][1] - r["ready_cpu"] for r in results),
        "dispatch": a.jobs / f["dispatch_seconds"],
        "workers_cpu": sum(r["marks"][1][1] - r["marks"][0][1] for r in results),
        "lag": [lags[int(q * (len(lags) - 1))] * 1000 for q in (0.5, 0.9, 0.99, 1.0)],
        "late": late - late_before,
        "pacing_max": max(bisect.bisect_left(paced, t + 1.0) - i for i, t in enumerate(paced)),
        "pacing_achieved": (len(paced) - 1) / (paced[-1] - paced[0]),
        "pacing_dials": len(paced),
    }


async def main_async(args: argparse.Namespace) -> tuple[Ceiling, dict[str, Any]]:
    settings = rabbit_settings(args.amqp, "bench-raw", args.bundle)
    prefetch = RabbitJobQueue(settings).prefetch(args.concurrency)
    half = args.raw_seconds / 2
    before = await raw_ceiling(args.amqp, settings, prefetch, half, AT)
    figures = await phases(args)
    after = await raw_ceiling(args.amqp, settings, prefetch, half, AT)
    return before.add(after), figures


def report(args: argparse.Namespace, ceiling: Ceiling, r: dict[str, Any], load: Any) -> None:
    bundle = args.bundle or RabbitSettings().bundle_size
    ms = 1000 / args.jobs
    print(f"two worker processes, concurrency {args.concurrency} each, up to {bundle} jobs a "
          f"message; {args.jobs} jobs relayed then drained, {args.jobs} from the planner's "
          f"start, then pacing at {args.cps:g}/s for {r['pacing_dials']} dials")  # fmt: skip
    print(f"ceiling: {ceiling.published} jobs published in {ceiling.publish_seconds:.1f} s, "
          f"consumed in {ceiling.consume_seconds:.1f} s; throughput run: "
          f"{r['dispatch_seconds']:.1f} s, the planner returned after "
          f"{r['planning_seconds']:.1f} s, the relay had published all after "
          f"{r['relayed_seconds']:.1f} s")  # fmt: skip
    lag = ", ".join(f"{x:.1f}" for x in r["lag"])
    print(f"pacing run: the workers' event loops lag (p50, p90, p99, max): {lag} ms")
    lines = [
        ("raw_aio_pika_publish", ceiling.publish_rate, "jobs/s", 0),
        ("raw_aio_pika_consume", ceiling.consume_rate, "jobs/s", 0),
        ("relay_publish", r["relay"], "jobs/s", 0),
        ("relay_vs_raw_publish", r["relay"] / ceiling.publish_rate, "ratio", 3),
        ("dispatch_workers_only", r["drain"], "jobs/s", 0),
        ("workers_only_vs_raw_consume", r["drain"] / ceiling.consume_rate, "ratio", 4),
        ("dispatch", r["dispatch"], "jobs/s", 0),
        ("dispatch_vs_raw_consume", r["dispatch"] / ceiling.consume_rate, "ratio", 4),
        ("cpu_per_job_workers_only", r["drain_cpu"] * ms, "ms", 3),
        ("cpu_per_job_workers", r["workers_cpu"] * ms, "ms", 3),
        ("cpu_per_job_planner_relay", r["main_cpu"] * ms, "ms", 3),
        ("cpu_per_job_postgres_rabbitmq", r["servers_cpu"] * ms, "ms", 3),
        ("pacing_configured", args.cps, "calls/s", 0),
        ("pacing_max_one_second", r["pacing_max"], "calls", 0),
        ("pacing_max_vs_configured", r["pacing_max"] / args.cps, "ratio", 3),
        ("pacing_achieved", r["pacing_achieved"], "calls/s", 1),
        ("pacing_achieved_ratio", r["pacing_achieved"] / args.cps, "ratio", 3),
        ("pacing_late_dials", r["late"], "dials", 0),
        ("load_average_start", load[0], "", 2),
        ("load_average_end", os.getloadavg()[0], "", 2),
    ]
    for name, value, unit, digits in lines:
        print(f"{name}: {value:.{digits}f} {unit}".rstrip())
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--cps", type=float, default=1000.0)
    parser.add_argument("--pacing-seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="per worker")
    parser.add_argument("--raw-seconds", type=float, default=12.0, help="ceiling, each side")
    default_url = os.environ.get("DIALER_DATABASE_URL", "")
    if not default_url.startswith("postgresql"):
        default_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    parser.add_argument("--database-url", default=default_url)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument(
        "--bundle", type=int, default=None, help="jobs a message (default: RabbitSettings')"
    )
    parser.add_argument("--worker", nargs=4, metavar=("SCHEMA", "NS", "T0", "OUT"))
    args = parser.parse_args()
    if args.worker:
        worker_entry(args)
        return
    load = os.getloadavg()
    ceiling, figures = asyncio.run(main_async(args))
    report(args, ceiling, figures, load)


if __name__ == "__main__":
    main()
