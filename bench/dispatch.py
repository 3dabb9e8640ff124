"""Dispatch throughput and pacing through RabbitMQ, beside raw aio-pika in the same run.

    .venv/bin/python -m bench.dispatch                          # 20,000 jobs, pacing at 200/s
    .venv/bin/python -m bench.dispatch --jobs 5000 --cps 100    # a quicker run
    .venv/bin/python -m bench.dispatch --bundle 1 ...           # one job a message
    BENCH_DISPATCH_PROFILE=/tmp/prof .venv/bin/python -m bench.dispatch ...  # + cProfile
                                                   # (CPU time) of each worker, in that dir

1. raw aio-pika: as many messages as jobs (one job a message) published with batched
   confirms to a fresh durable quorum queue, then consumed (manual ack, prefetch 256) by
   one process.
2. workers only: N cases of a campaign (as below) planned and published before the two
   worker processes start; jobs/s from their first dial to their last, and their CPU per
   job (from when they were connected to the end of the next run's start: idle between).
3. dispatch: N open cases in a fresh PostgreSQL schema and a running campaign (voice, its
   window open, pacing far above what the path can do, no in-progress limit); the planner
   writes attempts and outbox rows, the relay publishes them (confirmed), and two worker
   processes (`Dispatcher`, concurrency CONCURRENCY each: batches of the deliveries that
   arrive together are locked, decided again, given pacing slots and reserved in one
   transaction; each job dials a mocked provider; their `sent` records are written
   together) consume them. Jobs travel in bundles of up to `--bundle` (default
   `RabbitSettings.bundle_size`, 100) a message; a worker's prefetch is the bundles that
   fill its concurrency plus one (2, see `RabbitJobQueue.prefetch`), and a bundle is
   acked once each of its jobs is recorded (one job a message: prefetch = concurrency,
   each acked after its record).
   Timed from the planner's start until every attempt is recorded `sent`; the planner's
   own share (until it returned: the workers dispatch meanwhile) is printed beside it.
   CPU per job in that run: the two workers, this process (planner, relay), and every
   PostgreSQL and RabbitMQ process of the machine (so other clients' load shows there
   too).
4. pacing: another campaign at `--cps` calls per second, `--pacing-seconds` worth of cases,
   the same two workers; every dial's wall-clock instant is recorded by the mocked
   provider. Reported: the largest number of dials in any one-second window (sliding,
   starting at each dial) against the configured rate, the achieved rate (dials - 1 over
   the first-to-last span), the dials that came too late for their slot and took another
   (each wastes a slot), and how late the workers' event loops ran (a 5 ms timer).
The schema and the queues are removed afterwards. The last lines are `name: value unit`.

Figures, `--jobs 5000 --cps 100 --pacing-seconds 10` on the 2 shared cores, one job a
message -> bundles of 100, two pairs of runs back to back (load average 2.5 and 3.8-4.2
from other work; beam.smp's CPU over the whole run, the raw phase included):
    workers only:              782 -> 1,436 and 724 -> 869 jobs/s
      their CPU a job:         0.98 -> 0.54 and 1.08 -> 0.71 ms
    from the planner's start:  424 -> 1,134 and 350 -> 673 jobs/s
      workers' CPU a job:      1.02 -> 0.50 and 1.21 -> 0.63 ms
      planner and relay's:     0.50 -> 0.23 and 0.55 -> 0.28 ms
      PostgreSQL + RabbitMQ's: 0.90 -> 0.45 and 1.19 -> 0.53 ms
    beam.smp, the whole run:   4.7 -> 1.4 and 4.4 -> 1.2 CPU-s
    pacing at 100/s:           at most 98-100 dials in a second either way, 95-97 % achieved
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
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

import aio_pika
import asyncpg
from sqlalchemy import func, select

from adapters.fakes import FakeTelephony
from adapters.ports import CallRequest, Job, ProviderRef
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from bench.plan import AT, seed
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AttemptRow, CampaignRow
from dialer.dispatch import outbox, pacing, planner
from dialer.dispatch.worker import Dispatcher
from dialer.services import campaigns

# Jobs in flight per worker process (its handler calls; the prefetch counts messages, see
# `RabbitJobQueue.prefetch`). More makes larger batches, but the
# paced jobs sent back to wait then come in larger bursts, which make the event loop late
# for its dials (256 here: twice the late dials of 64 for no more throughput).
CONCURRENCY = 64
POOL = 8  # connections per worker process: a batch, not a job, holds one


class CountingQueue(RabbitJobQueue):
    """The relay's queue: notes when each published batch was confirmed."""

    def __init__(self, settings: RabbitSettings, *, clock: Any) -> None:
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


# --- raw aio-pika -----------------------------------------------------------------------
async def raw_aio_pika(amqp: str, count: int) -> tuple[float, float]:
    connection = await aio_pika.connect_robust(amqp)
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        body = json.dumps({"attempt_id": str(uuid.uuid4()), "pad": "x" * 150}).encode()
        started = time.perf_counter()
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=name,
                    )
                    for _ in range(min(500, count - start))
                )
            )
        published = time.perf_counter() - started
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=256)
        q = await consumer.get_queue(name)
        done = asyncio.Event()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen == count:
                done.set()

        started = time.perf_counter()
        tag = await q.consume(on_message)
        await done.wait()
        consumed = time.perf_counter() - started
        await q.cancel(tag)  # before the queue goes (else the broker cancels it, with a warning)
        await channel.queue_delete(name)
        return count / published, count / consumed
    finally:
        await connection.close()


# --- a worker process ---------------------------------------------------------------------
async def worker_main(
    url: str, schema: str, amqp: str, namespace: str, t0: float, out: str, bundle: int | None
) -> None:
    profile = os.environ.get("BENCH_DISPATCH_PROFILE")  # a directory: cProfile per worker
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler is not None:
        profiler.enable()
    settings = Settings(database_url=url, database_schema=schema)
    # a fixed pool (a job holds a connection only while it talks to the database), no
    # ping per checkout: a job that meets a dropped connection fails and is redelivered
    engine = build_engine(settings, pool_size=POOL, pre_ping=False)
    maker = build_sessionmaker(engine)
    clock = engine_clock(t0)
    queue = RabbitJobQueue(rabbit_settings(amqp, namespace, bundle), clock=clock)
    provider = MockProvider()
    await queue.connect()
    dispatcher = Dispatcher(maker, provider, None, clock)
    ready_cpu = time.process_time()
    await queue.consume(dispatcher, concurrency=CONCURRENCY)
    lags: list[float] = []  # how late a 5 ms timer fires: the event loop's lag

    async def watch_lag() -> None:
        while True:
            due = time.perf_counter() + 0.005
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - due)

    watcher = asyncio.create_task(watch_lag())
    stop = Path(out + ".stop")
    marks: list[tuple[float, float, int, int]] = []  # (wall, CPU, late dials, lags) at marks
    while not stop.exists():  # noqa: ASYNC240 - the parent signals through a file
        mark = Path(out + f".mark{len(marks)}")
        if mark.exists():  # noqa: ASYNC240
            marks.append((time.time(), time.process_time(), dispatcher.late, len(lags)))
        await asyncio.sleep(0.02)
    watcher.cancel()
    await queue.close()
    await engine.dispose()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(Path(profile or ".") / f"{Path(out).stem}.prof"))
    result = {
        "times": provider.times,
        "marks": marks,
        "batches": dispatcher.batch_counts(),
        "lags": lags,
        "ready_cpu": ready_cpu,
    }
    Path(out).write_text(json.dumps(result))  # noqa: ASYNC240 - once, at the end


Workers = list[tuple[subprocess.Popen[bytes], str]]


def start_workers(
    args: argparse.Namespace, schema: str, namespace: str, t0: float, tmp: Path
) -> Workers:
    procs = []
    for i in range(2):
        out = str(tmp / f"worker-{i}.json")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.dispatch", "--database-url", args.database_url,
             "--amqp", args.amqp, "--worker", schema, namespace, str(t0), out,
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
    """Created directly: the API caps pacing at 1,000/s, the throughput run needs more."""
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


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    raw_pub, raw_con = await raw_aio_pika(args.amqp, args.jobs)
    tag = uuid.uuid4().hex[:10]
    schema, namespace = f"bench_dispatch_{tag}", f"bench-dispatch-{tag}"
    pacing_cases = int(args.cps * args.pacing_seconds)
    dsn = args.database_url.replace("+asyncpg", "")
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    tmp = Path(f"/tmp/{schema}")
    tmp.mkdir()  # noqa: ASYNC240
    settings = Settings(database_url=args.database_url, database_schema=schema)
    engine = build_engine(settings)
    maker = build_sessionmaker(engine)
    procs: Workers = []
    queue: CountingQueue | None = None
    try:
        first = await seed(args.database_url, schema, 2 * args.jobs + pacing_cases)
        await admin.execute(
            f"UPDATE \"{schema}\".cases SET tier = CASE WHEN external_ref < $1 THEN 'drain'"
            " WHEN external_ref < $2 THEN 'throughput' ELSE 'pacing' END",
            f"P-{args.jobs:07d}",
            f"P-{2 * args.jobs:07d}",
        )
        async with maker() as session:  # the seeded campaign is not used: three of our own
            await campaigns.transition(session, first, "cancelled", actor="bench", now=AT)
        t0 = time.time()
        clock = engine_clock(t0)
        queue = CountingQueue(rabbit_settings(args.amqp, namespace, args.bundle), clock=clock)
        await queue.connect()

        # the workers alone: every job planned and published before they start
        drain = await new_campaign(maker, 1_000_000, "drain", "drain")
        await planner.plan_campaign(maker, drain, clock, batch=1000)
        await outbox.relay_all(maker, queue, clock())
        procs = start_workers(args, schema, namespace, t0, tmp)
        while await count_sent(maker, drain) < args.jobs:  # noqa: ASYNC110 - polling
            await asyncio.sleep(0.05)
        drained = time.time()

        fast = await new_campaign(maker, 1_000_000, "throughput", "throughput")
        mark_workers(procs, 0)
        servers = server_cpu()
        planned, seconds, main_cpu, relayed = await run_phase(maker, fast, queue, clock, args.jobs)
        servers = server_cpu() - servers
        mark_workers(procs, 1)
        await asyncio.sleep(0.1)  # the workers read their marks

        paced = await new_campaign(maker, args.cps, "pacing", "pacing")
        before = time.time()
        await run_phase(maker, paced, queue, clock, pacing_cases)
        results = stop_workers(procs)
        procs = []
        times = sorted(t for r in results for t in r["times"] if t >= before)
        first_dials = sorted(t for r in results for t in r["times"] if t <= drained)
        drain_cpu = sum(r["marks"][0][1] - r["ready_cpu"] for r in results)
        workers_cpu = sum(r["marks"][1][1] - r["marks"][0][1] for r in results)
        late_first = sum(r["marks"][1][2] for r in results)
        lags = sorted(x for r in results for x in r["lags"][r["marks"][1][3] :])
        batches = [sum(r["batches"][k] for r in results) for k in range(5)]
    finally:
        for proc, out in procs:
            Path(out + ".stop").touch()  # noqa: ASYNC240
            proc.wait(timeout=60)
        if queue is not None:
            await queue.close()
            await queue.delete_topology()
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    worst = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    achieved = (len(times) - 1) / (times[-1] - times[0])
    return {
        "raw_publish": raw_pub,
        "raw_consume": raw_con,
        "drain": (len(first_dials) - 1) / (first_dials[-1] - first_dials[0]),
        "drain_cpu": drain_cpu,
        "dispatch": args.jobs / seconds,
        "dispatch_seconds": seconds,
        "planning_seconds": planned,
        "relayed_seconds": relayed,
        "main_cpu": main_cpu,
        "workers_cpu": workers_cpu,
        "servers_cpu": servers,
        "batches": batches,
        "late_first": late_first,
        "lag": [lags[int(q * (len(lags) - 1))] * 1000 for q in (0.5, 0.9, 0.99, 1.0)],
        "pacing_max": worst,
        "pacing_achieved": achieved,
        "pacing_dials": len(times),
        "interval": pacing.slot_interval(args.cps).total_seconds(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--cps", type=float, default=200.0)
    parser.add_argument("--pacing-seconds", type=float, default=15.0)
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
        schema, namespace, t0, out = args.worker
        asyncio.run(
            worker_main(
                args.database_url, schema, args.amqp, namespace, float(t0), out, args.bundle
            )
        )
        return
    r = asyncio.run(main_async(args))
    slot = r["interval"] * 1000
    bundle = args.bundle or RabbitSettings().bundle_size
    print(f"two worker processes, concurrency {CONCURRENCY} each, up to {bundle} jobs a message; "
          f"{args.jobs} jobs from a full "
          f"queue, {args.jobs} from the planner's start, then pacing at {args.cps:g}/s for "
          f"{r['pacing_dials']} dials (slot {slot:.2f} ms)")  # fmt: skip
    print(f"raw_aio_pika_publish: {r['raw_publish']:.0f} msg/s")
    print(f"raw_aio_pika_consume: {r['raw_consume']:.0f} msg/s")
    ms = 1000 / args.jobs
    reserve_batches, reserved, record_batches, recorded, late = r["batches"]
    late_first = r["late_first"]
    print(f"throughput run: {r['dispatch_seconds']:.2f} s from the planner's start; the "
          f"planner returned after {r['planning_seconds']:.2f} s, the relay had published "
          f"every job after {r['relayed_seconds']:.2f} s (the workers dispatch "
          "meanwhile)")  # fmt: skip
    print(f"reservation batches: {reserve_batches} for {reserved} submissions; sent records: "
          f"{record_batches} batches for {recorded} (all runs); dials too late for their "
          f"slot took another: {late_first} before the pacing run, {late - late_first} in "
          "it")  # fmt: skip
    print(f"dispatch_workers_only: {r['drain']:.0f} jobs/s")
    print(f"cpu_per_job_workers_only: {r['drain_cpu'] * ms:.3f} ms")
    print(f"dispatch: {r['dispatch']:.0f} jobs/s")
    print(f"cpu_per_job_workers: {r['workers_cpu'] * ms:.3f} ms")
    print(f"cpu_per_job_planner_relay: {r['main_cpu'] * ms:.3f} ms")
    print(f"cpu_per_job_postgres_rabbitmq: {r['servers_cpu'] * ms:.3f} ms")
    print(f"dispatch_vs_raw_consume: {r['dispatch'] / r['raw_consume']:.3f} ratio")
    lag = ", ".join(f"{x:.1f}" for x in r["lag"])
    print(f"pacing run: the workers' event loops lag (p50, p90, p99, max): {lag} ms")
    print(f"pacing_configured: {args.cps:g} calls/s")
    print(f"pacing_max_one_second: {r['pacing_max']} calls")
    print(f"pacing_achieved: {r['pacing_achieved']:.1f} calls/s")
    print(f"pacing_achieved_ratio: {r['pacing_achieved'] / args.cps:.3f} ratio")


if __name__ == "__main__":
    main()
