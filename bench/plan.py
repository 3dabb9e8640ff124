"""Planning a morning: N open cases -> planned attempts -> outbox -> RabbitMQ.

    .venv/bin/python bench/plan.py                    # 1,000,000 cases
    .venv/bin/python bench/plan.py --cases 100000     # a quicker run
    .venv/bin/python bench/plan.py --bundle 1         # one job a message (the old format)

Seeds a fresh PostgreSQL schema with N cases by COPY (each: a debtor with a verified
mobile in Asia/Shanghai, and a colleague as third-party contact with a phone; due dates
spread over 60 days so the cases fall into several tiers; each number's candidate zones
and line type stored as the import stores them, with the same function), activates the
consumer-loan preset and starts a campaign (voice, 09:00-11:30 local, the window open at
the planning instant, Tuesday 09:00 in Shanghai). Seeding is not timed.

Then, in child processes, as two `dialer worker` processes would run it: one plans (the
planner walks the cases in keyset batches, reading the next page while it decides the
current one, and relays the outbox while it plans), the other (`--relays`, default 1; 0
for the planner's process alone) relays the outbox too, both publishing to RabbitMQ with
confirms. The clock starts when the planner starts and stops when every planned job is
confirmed by the broker (nothing left unpublished in the outbox). Peak memory is the sum
of the processes' peak resident sets; each process's CPU is given with the part its
garbage collector took. As `dialer worker` does, the children freeze what they hold after
start-up (`dialer.dispatch.runtime.freeze_start_up_objects`: full collections no longer walk the
imported modules' objects; `--no-gc-freeze` to see what that saves). A planner that fails
stops the relays. The schema and the queues are removed.

The ceiling, in the same run on the same cases (the attempts and outbox emptied, the
campaign's cursor reset): the same planner, pages, facts read, attempt and outbox rows
written and relays, with the deciding replaced by a fixed choice (each case's first
contact point, called now): `ceiling_ratio` is the ceiling's time over the planner's.
CPU per case is given for the planner process, the relay processes and the PostgreSQL
backends serving them (their /proc CPU; PostgreSQL's background writers not counted).
Goal on the 2-core reference machine (unloaded): 1,000,000 cases in under 200 s, under
500 MB. `--profile FILE` writes the planner process's cProfile statistics.
The last lines are `name: value unit`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event, select

from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.db.models import CampaignRow
from dialer.dispatch import outbox, planner
from dialer.dispatch.runtime import freeze_start_up_objects
from dialer.facts.convert import number_facts
from dialer.schemas.campaigns import CampaignIn
from dialer.services import campaigns, portfolios, strategies

AT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # Tuesday 09:00 in Shanghai
PORTFOLIO = "bench"
SEED_CHUNK = 50_000
QUEUE_OPTIONS: dict[str, Any] = {}  # RabbitSettings fields from the command line (--bundle)


def _case_records(start: int, stop: int) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {"cases": [], "parties": [], "contact_points": []}
    for i in range(start, stop):
        cid = uuid.uuid4()
        due = date(2026, 11, 30) - timedelta(days=1 + i % 60)
        out["cases"].append(
            (cid, PORTFOLIO, f"P-{i:07d}", f"{1000 + (i * 37) % 50000}.00", "CNY", due,
             "collection", "open", "[]", "CN", AT, AT)
        )  # fmt: skip
        debtor, contact = uuid.uuid5(cid, "d"), uuid.uuid5(cid, "c")
        out["parties"].append(
            (debtor, cid, "debtor", 0, "debtor", f"Debtor {i}", None, "Asia/Shanghai", False, False)
        )
        out["parties"].append(
            (
                contact,
                cid,
                "contact-1",
                1,
                "third_party",
                f"Contact {i}",
                "colleague",
                None,
                False,
                False,
            )
        )
        for party, number, validity in (
            (debtor, f"+86138{i:08d}", "verified"),
            (contact, f"+86139{i:08d}", "unverified"),
        ):
            # The number's facts as the import stores them (`convert.number_facts`).
            zones, line_mobile = number_facts("phone", number)
            out["contact_points"].append(
                (uuid.uuid5(party, "p"), party, cid, 0, "phone", number, "[]", "[]", validity,
                 None, True, False, json.dumps(zones), line_mobile)
            )  # fmt: skip
    return out


COLUMNS = {
    "cases": ("id", "portfolio", "external_ref", "amount", "currency", "due_date", "stage",
              "status", "flags", "country", "created_at", "updated_at"),
    "parties": ("id", "case_id", "key", "position", "role", "name", "relation", "timezone",
                "knows_of_debt", "refused_contact"),
    "contact_points": ("id", "party_id", "case_id", "position", "kind", "value", "consent",
                       "opted_out", "validity", "timezone", "mobile", "do_not_call",
                       "number_zones", "number_mobile"),
}  # fmt: skip


async def seed(url: str, schema: str, count: int) -> uuid.UUID:
    settings = Settings(database_url=url, database_schema=schema)
    engine = build_engine(settings)
    try:
        await upgrade_to_head(engine)
        maker = build_sessionmaker(engine)
        async with maker() as session:
            await portfolios.create_portfolio(
                session, name=PORTFOLIO, profile="cn-consumer", country="CN",
                timezone="Asia/Shanghai", actor="bench", now=AT,
            )  # fmt: skip
            row = await strategies.create_from_preset(
                session, portfolio=PORTFOLIO, preset="consumer-loan", actor="bench", now=AT
            )
            await strategies.activate(session, row.id, actor="bench", now=AT)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for start in range(0, count, SEED_CHUNK):
                recs = _case_records(start, min(count, start + SEED_CHUNK))
                async with conn.transaction():
                    for table, rows in recs.items():
                        await conn.copy_records_to_table(
                            table, records=rows, columns=COLUMNS[table], schema_name=schema
                        )
            await conn.execute(f'ANALYZE "{schema}".cases')
        finally:
            await conn.close()
        async with maker() as session:
            body = CampaignIn(
                name="bench morning", portfolio=PORTFOLIO, channels=["voice"],  # type: ignore[list-item]
                window="09:00-11:30", pacing_cps=100, max_in_progress=None,
            )  # fmt: skip
            campaign = await campaigns.create_campaign(session, body, actor="bench", now=AT)
            await campaigns.transition(session, campaign.id, "running", actor="bench", now=AT)
            return campaign.id
    finally:
        await engine.dispose()


def peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM (Linux), which starts afresh at exec;
    `ru_maxrss` would also count the parent's size when it forked this child."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_GC = [0.0, 0.0]  # CPU seconds in the collector so far; when the running one started
_TICKS = os.sysconf("SC_CLK_TCK")


def _backend_pids(engine: Any) -> set[int]:
    """The PostgreSQL backend pids of the engine's connections, as they are opened."""
    pids: set[int] = set()

    def on_connect(dbapi_connection: Any, _: Any) -> None:
        pids.add(dbapi_connection.driver_connection.get_server_pid())

    event.listen(engine.sync_engine, "connect", on_connect)
    return pids


def backend_cpu(pids: set[int]) -> float:
    """CPU seconds (user + system) the backends used so far (/proc, this host)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # closed already: not counted
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _decide_nothing() -> None:
    """The ceiling: the planner's pipeline with a fixed choice instead of the engine's:
    each case's first party's first contact point, on the campaign's first channel, now."""
    from dialer.dispatch.choices import PlannedAction
    from strategy.decision import AllowedAction, Candidate, Decision
    from strategy.model import Disclosure

    def choose(facts: Any, cs: Any, now: datetime, window: Any, channels: Any) -> Any:
        party = facts.case.parties[0]
        point = party.contact_points[0]
        candidate = Candidate(party.id, party.role, point.id, channels[0])
        action = AllowedAction(
            candidate, Disclosure.FULL, "default", now, now, "ceiling", ("Asia/Shanghai",)
        )
        decision = Decision(facts.case.id, now, "ceiling", 1, "cn-consumer", None, 0)
        return [PlannedAction(action, now, decision)], []

    setattr(planner, "choose_actions", choose)  # noqa: B010 - replaced for the ceiling


def _count_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _GC[1] = time.process_time()
    else:
        _GC[0] += time.process_time() - _GC[1]


def _clock(epoch: float) -> Callable[[], datetime]:
    """The planning instant, moving with the wall clock from `epoch` (shared by the
    processes: a row the planner made due is due for every relay at once)."""

    def clock() -> datetime:
        return AT + timedelta(seconds=time.time() - epoch)

    return clock


async def plan(
    url: str,
    schema: str,
    amqp: str,
    namespace: str,
    cid: uuid.UUID,
    epoch: float,
    batch: int,
    profile: str | None = None,
) -> dict[str, Any]:
    """The measured part (run in a child process): the planner as `dialer worker` runs it,
    relaying the outbox while it plans; the clock stops when nothing is left unpublished."""
    settings = Settings(database_url=url, database_schema=schema)
    engine = build_engine(settings)
    clock = _clock(epoch)  # the queue's too: a job due now goes to the work queue
    queue = RabbitJobQueue(
        RabbitSettings(url=amqp, namespace=namespace, publish_batch=500, **QUEUE_OPTIONS),
        clock=clock,
    )
    await queue.connect()
    pids = _backend_pids(engine)
    maker = build_sessionmaker(engine)
    profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not wall
    started = time.perf_counter()
    cpu, gc_before = time.process_time(), _GC[0]
    if profiler is not None:
        profiler.enable()
    report = await planner.plan_campaign(maker, cid, clock, queue=queue, batch=batch)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile or "")
    planned_seconds = time.perf_counter() - started
    async with maker() as session:  # rows another process's relay holds are not yet out
        while await outbox.pending_count(session):  # noqa: ASYNC110 - polling the table
            await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    pg_cpu = backend_cpu(pids)
    await queue.close()
    await engine.dispose()
    return {
        "pg_cpu_seconds": pg_cpu,
        "cases": report.cases,
        "planned": report.planned,
        "refused": dict(report.refused.most_common(6)),
        "plan_seconds": planned_seconds,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "gc_seconds": _GC[0] - gc_before,
        "peak_rss_mb": peak_rss_mb(),
    }


async def relay(
    url: str, schema: str, amqp: str, namespace: str, cid: uuid.UUID, epoch: float
) -> dict[str, Any]:
    """Another worker process's outbox relay (`outbox.run_relay`), sharing the rows with
    the planner's (FOR UPDATE SKIP LOCKED), until the campaign is planned and published."""
    settings = Settings(database_url=url, database_schema=schema)
    engine = build_engine(settings)
    clock = _clock(epoch)
    queue = RabbitJobQueue(
        RabbitSettings(url=amqp, namespace=namespace, publish_batch=500, **QUEUE_OPTIONS),
        clock=clock,
    )
    await queue.connect()
    pids = _backend_pids(engine)
    maker = build_sessionmaker(engine)
    stop = asyncio.Event()
    cpu, gc_before = time.process_time(), _GC[0]
    task = asyncio.create_task(outbox.run_relay(maker, queue, clock, idle=0.02, stop=stop))
    while not stop.is_set():
        await asyncio.sleep(0.2)
        async with maker() as session:
            done = await session.scalar(select(CampaignRow.plan_done).where(CampaignRow.id == cid))
            if done and not await outbox.pending_count(session):
                stop.set()
    await task
    pg_cpu = backend_cpu(pids)
    await queue.close()
    await engine.dispose()
    return {
        "pg_cpu_seconds": pg_cpu,
        "cpu_seconds": time.process_time() - cpu,
        "gc_seconds": _GC[0] - gc_before,
        "peak_rss_mb": peak_rss_mb(),
    }


async def reset(url: str, schema: str, cid: uuid.UUID) -> None:
    """Back to before planning: the attempts and outbox truncated (as fresh as the seeded
    ones: no statistics saying they are empty), the campaign's cursor and counts cleared;
    the ceiling then plans the same cases."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'TRUNCATE "{schema}".attempts, "{schema}".outbox CASCADE')
        await conn.execute(
            f'UPDATE "{schema}".campaigns SET plan_cursor = NULL, plan_done = false,'
            " cases_seen = 0, planned = 0, refused_by_rule = '{}',"
            " plan_lease_owner = NULL, plan_lease_until = NULL WHERE id = $1",
            cid,
        )
    finally:
        await conn.close()


async def cleanup(url: str, schema: str, amqp: str, namespace: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    queue = RabbitJobQueue(RabbitSettings(url=amqp, namespace=namespace))
    await queue.delete_topology()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="cases per planning batch")
    parser.add_argument(
        "--relays", type=int, default=1, help="other worker processes relaying the outbox"
    )
    default_url = os.environ.get("DIALER_DATABASE_URL", "")
    if not default_url.startswith("postgresql"):
        default_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    parser.add_argument("--database-url", default=default_url)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument(
        "--bundle", type=int, default=None, help="jobs a message (default: RabbitSettings')"
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="children do not freeze their start-up objects (dialer worker does)",
    )
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false")
    parser.add_argument("--profile", default=None, help="the planner's cProfile statistics")
    parser.add_argument("--child", nargs=5, metavar=("ROLE", "SCHEMA", "NS", "CAMPAIGN", "EPOCH"))
    return parser.parse_args()


def _child_main(args: argparse.Namespace) -> None:
    role, schema, namespace, cid, epoch = args.child
    common = (args.database_url, schema, args.amqp, namespace, uuid.UUID(cid), float(epoch))
    if args.gc_freeze:
        freeze_start_up_objects()
    gc.callbacks.append(_count_gc)
    if role == "ceiling":
        _decide_nothing()
    if role == "relay":
        result = asyncio.run(relay(*common))
    else:
        result = asyncio.run(plan(*common, args.batch, args.profile if role == "planner" else None))
    print(json.dumps(result))


def _phase(
    args: argparse.Namespace, role: str, schema: str, namespace: str, cid: uuid.UUID
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One measured run: the `role` process (planner or ceiling) and the relays."""
    epoch = time.time()

    def child(role: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, __file__, "--database-url", args.database_url, "--amqp",
             args.amqp, "--batch", str(args.batch), "--child", role, schema, namespace,
             str(cid), str(epoch), *(["--bundle", str(args.bundle)] if args.bundle else []),
             *(["--profile", args.profile] if args.profile else []),
             *([] if args.gc_freeze else ["--no-gc-freeze"])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    relays = [child("relay") for _ in range(args.relays)]
    planning = child(role)
    outputs = [planning.communicate()[0]]
    if planning.returncode:  # the relays would wait for a campaign never planned
        for p in relays:
            p.terminate()
    outputs += [p.communicate()[0] for p in relays]
    if any(p.returncode for p in (planning, *relays)):
        raise SystemExit("a child process failed")
    r, *others = (json.loads(out.strip().splitlines()[-1]) for out in outputs)
    return r, others


def _report(name: str, r: dict[str, Any], others: list[dict[str, Any]]) -> None:
    cases = max(r["cases"], 1)
    relay_cpu = sum(o["cpu_seconds"] for o in others)
    pg_cpu = r["pg_cpu_seconds"] + sum(o["pg_cpu_seconds"] for o in others)
    print(
        f"{name}: planning alone {r['plan_seconds']:.1f} s, every job confirmed "
        f"{r['seconds']:.1f} s; CPU: planner process {r['cpu_seconds']:.1f} s "
        f"(gc {r['gc_seconds']:.1f} s), peak {r['peak_rss_mb']:.0f} MB; relay processes "
        f"{relay_cpu:.1f} s, peak {max((o['peak_rss_mb'] for o in others), default=0):.0f} MB;"
        f" PostgreSQL backends {pg_cpu:.1f} s (the planner's {r['pg_cpu_seconds']:.1f} s)",
        flush=True,
    )
    micro = 1e6 / cases
    print(f"{name}_planner_cpu: {r['cpu_seconds'] * micro:.0f} us/case")
    print(f"{name}_relay_cpu: {relay_cpu * micro:.0f} us/case")
    print(f"{name}_postgres_cpu: {pg_cpu * micro:.0f} us/case")


def main() -> None:
    args = _arguments()
    if args.bundle:
        QUEUE_OPTIONS["bundle_size"] = args.bundle
    if args.child:
        _child_main(args)
        return
    tag = uuid.uuid4().hex[:10]
    schema, namespace = f"bench_plan_{tag}", f"bench-plan-{tag}"

    async def create_schema() -> None:
        conn = await asyncpg.connect(args.database_url.replace("+asyncpg", ""))
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.close()

    asyncio.run(create_schema())
    ceiling: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    try:
        seeded = time.perf_counter()
        cid = asyncio.run(seed(args.database_url, schema, args.cases))
        print(f"seeded {args.cases} cases in {time.perf_counter() - seeded:.0f} s", flush=True)
        r, others = _phase(args, "planner", schema, namespace, cid)
        _report("planner", r, others)
        if args.ceiling:
            asyncio.run(reset(args.database_url, schema, cid))
            ceiling = _phase(args, "ceiling", schema, namespace, cid)
            _report("ceiling", *ceiling)
    finally:
        asyncio.run(cleanup(args.database_url, schema, args.amqp, namespace))
    load = os.getloadavg()
    print(f"refusals (cases, top rules): {r['refused']}")
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"cases: {r['cases']} cases")
    print(f"planned: {r['planned']} attempts")
    print(f"wall_time: {r['seconds']:.1f} s")
    print(f"rate: {r['cases'] / r['seconds']:.0f} cases/s")
    if ceiling is not None:
        print(f"ceiling_wall_time: {ceiling[0]['seconds']:.1f} s")
        print(f"ceiling_ratio: {ceiling[0]['seconds'] / r['seconds']:.2f}")
    # The processes together: the planner's and every relay's peak resident set.
    print(f"peak_memory: {r['peak_rss_mb'] + sum(o['peak_rss_mb'] for o in others):.0f} MB")


if __name__ == "__main__":
    main()
