"""Signed Twilio callbacks per second on EVERY callback route, against a bare endpoint, in
the same run, on PostgreSQL and on the SQLite default.

    .venv/bin/python bench/webhooks.py                        # every route, both databases
    .venv/bin/python bench/webhooks.py --database sqlite --route voice_status --calls 500
    BENCH_ROOT=/path/to/other/checkout .venv/bin/python bench/webhooks.py   # that code

Needs PostgreSQL at 127.0.0.1:5432/test (as the tests do) for `postgres`; the schemas and
files it makes are removed at the end.

For each database and route, two servers, each one uvicorn process on a free localhost port:
- `service`: the real app (`dialer.api.app:create_app`) on that route: signature, event
  row, the route's work (state move, TwiML, keypress, opt-out, inbound message), commit.
- `bare`: a raw ASGI app in this file that parses the form with `parse_qsl`, checks the
  same signature (`dialer.callbacks.signature.is_valid`) and does one INSERT, committed
  (asyncpg on PostgreSQL, aiosqlite on SQLite): the ceiling.
Both get the same kind of callbacks (all distinct, signed beforehand) from a small
keep-alive HTTP/1.1 client over asyncio streams, in `--rounds` alternating closed-loop
rounds (bare, service, ...; the median round's rate counts). Then a fresh service gets
an open-loop run at the database's target rate (`--rate`, 500/s on PostgreSQL; 200/s on
SQLite), latency counted from each request's scheduled time, so a stall is not hidden.
The last lines are `name: value unit`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg

HERE = Path(__file__).resolve().parent.parent
ROOT = Path(os.environ.get("BENCH_ROOT", HERE)).resolve()  # the code the servers run
sys.path.insert(0, str(HERE))

from dialer.callbacks.signature import compute_signature, is_valid, public_url  # noqa: E402

TOKEN = "bench-token-0123456789abcdef0123"
BASE = "https://dialer.example.com"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
WARM_UP = 100  # requests each server gets before it is measured
FAILED = [0]  # non-2xx answers of the current measurement
ACCOUNT = "AC" + "a" * 32
OURS = "+14155550100"


# --- the bare endpoint (runs inside its own uvicorn process) -----------------------------
_db: Any = None


async def _open_bare() -> Any:
    if os.environ.get("BENCH_SQLITE"):
        import aiosqlite

        conn = await aiosqlite.connect(os.environ["BENCH_SQLITE"])
        await conn.execute("PRAGMA journal_mode=WAL")
        return conn
    return await asyncpg.create_pool(
        os.environ["BENCH_DSN"],
        min_size=4,
        max_size=10,
        server_settings={"search_path": os.environ["BENCH_SCHEMA"]},
    )


async def _bare_insert(key: str, body: str) -> None:
    if os.environ.get("BENCH_SQLITE"):
        await _db.execute("INSERT INTO bare_events (key, fields) VALUES (?, ?)", (key, body))
        await _db.commit()
    else:
        await _db.execute("INSERT INTO bare_events (key, fields) VALUES ($1, $2)", key, body)


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Parse, validate the same signature, one INSERT committed. Nothing else."""
    global _db
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _db = await _open_bare()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    headers = dict(scope["headers"])
    url = public_url(BASE, scope["raw_path"], scope["query_string"])
    status = 403
    signature = headers.get(b"x-twilio-signature", b"").decode()
    if is_valid(TOKEN, url, pairs, signature):
        await _bare_insert(signature, body.decode())
        status = 204
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


# --- the routes and their callbacks --------------------------------------------------------
@dataclass(frozen=True)
class Seeded:
    attempt: str
    sid: str
    number: str


@dataclass(frozen=True)
class Route:
    path: str
    channel: str
    state: str
    callbacks: Callable[[Seeded], list[tuple[dict[str, str], dict[str, str]]]]  # fields, query
    answered_by: str | None = None


def _call(s: Seeded, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "CallSid": s.sid, "From": OURS, "To": s.number, **extra}


def _voice_status(s: Seeded) -> list[tuple[dict[str, str], dict[str, str]]]:
    out = []
    for seq, status in enumerate(("initiated", "ringing", "in-progress", "completed")):
        fields = _call(s, CallStatus=status, SequenceNumber=str(seq), ApiVersion="2010-04-01")
        if status == "completed":
            fields["CallDuration"] = "31"
        out.append((fields, {"attempt": s.attempt}))
    return out


def _sms(s: Seeded, status: str, **extra: str) -> dict[str, str]:
    base = {"AccountSid": ACCOUNT, "MessageSid": s.sid, "MessageStatus": status}
    return {**base, "From": OURS, "To": s.number, **extra}


ROUTES: dict[str, Route] = {
    "voice_status": Route("/v1/twilio/voice/status", "voice", "sent", _voice_status),
    "voice_amd": Route(
        "/v1/twilio/voice/amd",
        "voice",
        "in_progress",
        lambda s: [(_call(s, AnsweredBy="human"), {"attempt": s.attempt})],
    ),
    "voice_answer": Route(
        "/v1/twilio/voice/answer",
        "voice",
        "in_progress",
        lambda s: [(_call(s, CallStatus="in-progress"), {"attempt": s.attempt})],
    ),
    "voice_gather": Route(
        "/v1/twilio/voice/gather",
        "voice",
        "in_progress",
        lambda s: [(_call(s, Digits="2"), {"attempt": s.attempt, "step": "greeting"})],
    ),
    "voice_voicemail": Route(
        "/v1/twilio/voice/voicemail",
        "voice",
        "in_progress",
        lambda s: [(_call(s, CallStatus="in-progress"), {"attempt": s.attempt})],
        answered_by="machine_end_beep",
    ),
    "sms_status": Route(
        "/v1/twilio/sms/status",
        "sms",
        "sent",
        lambda s: [(_sms(s, st), {"attempt": s.attempt}) for st in ("sent", "delivered")],
    ),
    "sms_status_21610": Route(
        "/v1/twilio/sms/status",
        "sms",
        "sent",
        lambda s: [(_sms(s, "undelivered", ErrorCode="21610"), {"attempt": s.attempt})],
    ),
    "sms_inbound": Route(
        "/v1/twilio/sms/inbound",
        "sms",
        "completed",
        lambda s: [
            (
                {
                    "AccountSid": ACCOUNT,
                    "MessageSid": "SM" + uuid.uuid4().hex,
                    "From": s.number,
                    "To": OURS,
                    "Body": "hello, I will pay on Friday",
                },
                {},
            )
        ],
    ),
}


def requests_for(route: Route, seeded: Sequence[Seeded]) -> list[bytes]:
    """The route's callbacks for every seeded attempt, signed, as raw HTTP/1.1 requests;
    a multi-callback attempt's in order, attempts interleaved."""
    per = [route.callbacks(s) for s in seeded]
    out = []
    for step in range(max(len(p) for p in per)):
        for callbacks in per:
            if step >= len(callbacks):
                continue
            fields, query = callbacks[step]
            target = f"{route.path}?{urlencode(query)}" if query else route.path
            signature = compute_signature(TOKEN, f"{BASE}{target}", fields.items())
            body = urlencode(fields).encode()
            out.append(
                (
                    f"POST {target} HTTP/1.1\r\nHost: dialer.example.com\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
    return out


# --- set-up --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def pg_user() -> str:
    for user in [u for u in (os.environ.get("DIALER_TEST_PG_USER"), "postgres", "root") if u]:
        try:
            conn = await asyncpg.connect(host="127.0.0.1", user=user, database="test", timeout=3)
        except (OSError, asyncpg.PostgresError):
            continue
        await conn.close()
        return user
    raise SystemExit("PostgreSQL is not reachable at 127.0.0.1:5432/test")


@dataclass
class World:
    """One database (a PostgreSQL schema or a SQLite file) and how a server reaches it."""

    url: str  # SQLAlchemy URL
    schema: str | None
    sqlite: str | None

    def service_env(self) -> dict[str, str]:
        env = {
            "DIALER_TWILIO_AUTH_TOKEN": TOKEN,
            "DIALER_PUBLIC_BASE_URL": BASE,
            "DIALER_DATABASE_URL": self.url,
            "DIALER_LOG_LEVEL": "WARNING",
            "DIALER_TELEPHONY": "simulator",
            "DIALER_CALLBACK_NUMBER": "+14155550100",  # the third-party message names it
        }
        if self.schema:
            env["DIALER_DATABASE_SCHEMA"] = self.schema
        return env

    def bare_env(self, dsn: str) -> dict[str, str]:
        if self.sqlite:
            return {"BENCH_SQLITE": self.sqlite}
        return {"BENCH_DSN": dsn, "BENCH_SCHEMA": self.schema or ""}


async def seed(world: World, route: Route, calls: int) -> list[Seeded]:
    """Migrate, then add `calls` cases, each with a debtor, a phone and one attempt in the
    route's starting state; and the bare endpoint's table."""
    from sqlalchemy import insert, text

    from dialer.core.settings import Settings
    from dialer.db.engine import build_engine
    from dialer.db.migrate import upgrade_to_head
    from dialer.db.models import AttemptRow, CaseRow, ContactPointRow, PartyRow
    from dialer.db.models import Portfolio as PortfolioRow

    settings = Settings(database_url=world.url, database_schema=world.schema)
    engine = build_engine(settings)
    await upgrade_to_head(engine)
    seeded, cases, parties, points, attempts = [], [], [], [], []
    for i in range(calls):
        case, party, point, attempt = (uuid.uuid4() for _ in range(4))
        number = f"+1212{i:07d}"
        prefix = "CA" if route.channel == "voice" else "SM"
        seeded.append(Seeded(str(attempt), prefix + attempt.hex, number))
        cases.append(
            dict(
                id=case,
                portfolio="bench",
                external_ref=f"B-{i}",
                amount=Decimal(100),
                currency="USD",
                due_date=date(2026, 11, 1),
                stage="collection",
                status="open",
                flags=[],
                created_at=NOW,
                updated_at=NOW,
            )
        )
        parties.append(
            dict(
                id=party,
                case_id=case,
                key="debtor",
                position=0,
                role="debtor",
                name="Bench",
                knows_of_debt=False,
                refused_contact=False,
            )
        )
        points.append(
            dict(
                id=point,
                party_id=party,
                case_id=case,
                position=0,
                kind="phone",
                value=number,
                consent=[],
                opted_out=[],
                validity="verified",
                do_not_call=False,
            )
        )
        attempts.append(
            dict(
                id=attempt,
                case_id=case,
                party_id=party,
                contact_point_id=point,
                channel=route.channel,
                state=route.state,
                result="pending",
                provider_sid=prefix + attempt.hex,
                at=NOW,
                disclosure="full",
                voicemail_disclosure="identity",
                answered_by=route.answered_by,
            )
        )
    portfolio = {"name": "bench", "profile": "us-consumer", "country": "US", "timezone": "UTC"}
    async with engine.begin() as conn:
        await conn.execute(
            insert(PortfolioRow), [{**portfolio, "created_at": NOW, "updated_at": NOW}]
        )
        tables = [(CaseRow, cases), (PartyRow, parties), (ContactPointRow, points)]
        for table, rows in [*tables, (AttemptRow, attempts)]:
            for start in range(0, len(rows), 1000):
                await conn.execute(insert(table), rows[start : start + 1000])
        await conn.execute(text("CREATE TABLE bare_events (key text PRIMARY KEY, fields text)"))
    await engine.dispose()
    return seeded


# --- load ----------------------------------------------------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def connect(port: int, n: int) -> list[Connection]:
    return [Connection(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(n)]


async def closed_loop(port: int, reqs: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    conns = await connect(port, concurrency)
    latencies: list[float] = []
    errors = 0
    queue = iter(reqs)

    async def run(conn: Connection) -> None:
        nonlocal errors
        for raw in queue:
            t0 = time.perf_counter()
            status = await conn.request(raw)
            latencies.append(time.perf_counter() - t0)
            errors += status >= 300

    start = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.writer.close()
    FAILED[0] += errors  # counted and reported, not fatal: a collapse is a result too
    return len(reqs) / elapsed, latencies


async def fixed_rate(port: int, reqs: list[bytes], rate: float) -> list[float]:
    """Open loop: request i is due at start + i/rate; latency counts from then."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for c in await connect(port, 64):
        free.put_nowait(c)
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def one(i: int, raw: bytes) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conn = await free.get()
        status = await conn.request(raw)
        latencies.append(time.perf_counter() - due)
        free.put_nowait(conn)
        FAILED[0] += status >= 300

    await asyncio.gather(*(one(i, raw) for i, raw in enumerate(reqs)))
    while not free.empty():
        free.get_nowait().writer.close()
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere): the server's
    own cost per request, which a busy shared box's run-queue does not inflate."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):  # a minute: a loaded box imports slowly
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


def serve(app: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", *app, "--port", str(port), "--log-level", "warning",
           "--no-access-log", "--loop", "uvloop", "--http", "httptools"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})


async def measure(
    args: argparse.Namespace, dsn: str, database: str, name: str, make_world: Any
) -> dict[str, float]:
    """Closed-loop rounds (bare vs service), then the service at the database's rate."""
    route = ROUTES[name]
    FAILED[0] = 0
    per_attempt = len(route.callbacks(Seeded(str(uuid.uuid4()), "CA", "+1")))
    calls = max(1, args.calls // per_attempt)
    rate = args.rate if database == "postgres" else args.sqlite_rate
    rate_calls = int(rate * args.rate_seconds / per_attempt) + WARM_UP + 1
    service_w, bare_w, rate_w = [await make_world() for _ in range(3)]
    reqs = {
        "bare": requests_for(route, await seed(bare_w, route, calls + WARM_UP)),
        "service": requests_for(route, await seed(service_w, route, calls + WARM_UP)),
    }
    rate_reqs = requests_for(route, await seed(rate_w, route, rate_calls))
    procs: list[subprocess.Popen[bytes]] = []
    out: dict[str, float] = {}
    try:
        servers: dict[str, tuple[int, list[bytes], int]] = {}
        apps = {
            "bare": (["--app-dir", str(HERE / "bench"), "webhooks:bare_app"], bare_w.bare_env(dsn)),
            "service": (["--factory", "dialer.api.app:create_app"], service_w.service_env()),
        }
        for side, (app, env) in apps.items():
            port = free_port()
            proc = serve(app, env, port)
            procs.append(proc)
            await wait_ready(port, proc)
            await closed_loop(port, reqs[side][:WARM_UP], 8)
            servers[side] = (port, reqs[side][WARM_UP:], proc.pid)
        rounds = max(1, args.rounds)
        seen: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in servers}
        cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
        for r in range(rounds):
            for side, (port, pending, pid) in servers.items():
                size = len(pending) // rounds
                chunk = pending[r * size : (r + 1) * size if r < rounds - 1 else len(pending)]
                before = cpu_seconds(pid)
                rps, lat = await closed_loop(port, chunk, args.concurrency)
                cpu[side] += cpu_seconds(pid) - before
                seen[side][0].append(rps)
                seen[side][1].extend(lat)
        for side, (rates_seen, lat) in seen.items():
            out[f"{side}_rps"] = statistics.median(rates_seen)
            out[f"{side}_p99"] = pct(lat, 99)
            out[f"{side}_cpu_ms"] = cpu[side] * 1000 / len(lat)
        for p in procs:
            p.terminate()
            p.wait(10)
        port = free_port()
        proc = serve(["--factory", "dialer.api.app:create_app"], rate_w.service_env(), port)
        procs.append(proc)
        await wait_ready(port, proc)
        await closed_loop(port, rate_reqs[:WARM_UP], 8)
        lat = await fixed_rate(port, rate_reqs[WARM_UP:], rate)
        out["rate"] = rate
        out["failed"] = FAILED[0]
        out["rate_p50"], out["rate_p99"] = pct(lat, 50), pct(lat, 99)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait(10)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000, help="callbacks per side and route")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="PostgreSQL's fixed rate")
    parser.add_argument("--sqlite-rate", type=float, default=200.0)
    parser.add_argument("--rate-seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating closed-loop rounds")
    parser.add_argument("--database", choices=["postgres", "sqlite"], action="append")
    parser.add_argument("--route", choices=sorted(ROUTES), action="append")
    args = parser.parse_args()
    databases = args.database or ["postgres", "sqlite"]
    routes = args.route or list(ROUTES)
    user = await pg_user()
    dsn = f"postgresql://{user}@127.0.0.1:5432/test"
    admin = await asyncpg.connect(dsn)
    tmp = Path(tempfile.mkdtemp(prefix="bench_wh_"))
    schemas: list[str] = []

    async def postgres_world() -> World:
        schema = f"bench_wh_{uuid.uuid4().hex[:10]}"
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return World(f"postgresql+asyncpg://{user}@127.0.0.1:5432/test", schema, None)

    async def sqlite_world() -> World:
        path = tmp / f"{uuid.uuid4().hex[:10]}.db"
        return World(f"sqlite+aiosqlite:///{path}", None, str(path))

    results: dict[tuple[str, str], dict[str, float]] = {}
    try:
        for database in databases:
            make = postgres_world if database == "postgres" else sqlite_world
            for name in routes:
                r = await measure(args, dsn, database, name, make)
                results[database, name] = r
                print(f"{database} {name}: service {r['service_rps']:.0f} req/s,"
                      f" bare {r['bare_rps']:.0f} req/s, ratio"
                      f" {r['service_rps'] / r['bare_rps']:.2f}; p99 at {r['rate']:.0f} req/s"
                      f" {r['rate_p99']:.1f} ms; {r['failed']:.0f} non-2xx",
                      flush=True)  # fmt: skip
    finally:
        for s in schemas:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for (database, name), r in results.items():
        tag = f"{database}_{name}"
        print(f"{tag}_rps: {r['service_rps']:.0f} req/s")
        print(f"{tag}_bare_rps: {r['bare_rps']:.0f} req/s")
        print(f"{tag}_vs_bare: {r['service_rps'] / r['bare_rps']:.2f} x")
        print(f"{tag}_cpu_per_request: {r['service_cpu_ms']:.3f} ms")
        print(f"{tag}_bare_cpu_per_request: {r['bare_cpu_ms']:.3f} ms")
        print(f"{tag}_p99_closed_loop: {r['service_p99']:.1f} ms")
        print(f"{tag}_p50_at_{r['rate']:.0f}rps: {r['rate_p50']:.1f} ms")
        print(f"{tag}_p99_at_{r['rate']:.0f}rps: {r['rate_p99']:.1f} ms")
        print(f"{tag}_non_2xx: {r['failed']:.0f} requests")


if __name__ == "__main__":
    asyncio.run(main())
