"""The decision endpoint and the case list under HTTP load, against a bare endpoint.

    .venv/bin/python bench/api.py                        # PostgreSQL and SQLite
    .venv/bin/python bench/api.py --databases sqlite --seconds 3
    .venv/bin/python bench/api.py --before /tmp/main     # also an older tree, same run

For each database: `--cases` cases (two parties, three contact points, a few contacts
and a payment each) seeded through the services; `dialer serve` started as a subprocess
(one process, uvicorn's defaults); a bare FastAPI endpoint (`bare_app` below: no
database, a constant body) served the same way as the ceiling. The load is
`bench/httpload.py` in its own process, `--connections` keep-alive connections (20),
closed loop: the decision endpoint (`GET /v1/cases/{id}/decision`, cycling through
every case) and the case list (`GET /v1/cases?limit=50`). Measured in `--rounds`
alternating rounds (bare, decision, list, bare, ...); the median round counts.
`--before DIR` serves a second copy of the service from another checkout (PYTHONPATH),
measured in the same rounds. Each run also reports the server's CPU time per request
(its process's user + system time over the run, warm-up included, over every request
sent): on a machine shared with other work, req/s follows the CPU share the server got,
while CPU per request, and its ratio to the bare endpoint's (`cpu_vs_bare`), much less
so. Needs PostgreSQL at 127.0.0.1:5432/test for `postgres`. The last lines are
`name: value unit`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import httpload  # noqa: E402

bare_app = FastAPI()


@bare_app.get("/v1/cases/{case_id}/decision")
async def bare_decision(case_id: uuid.UUID) -> dict[str, Any]:
    return {"case_id": str(case_id), "tier": None, "allowed": [], "refused": []}


async def seed(url: str, schema: str | None, count: int) -> tuple[str, list[str]]:
    """A migrated database with an agent's key and `count` cases; (key, case ids)."""
    from dialer.core.auth import Role
    from dialer.core.settings import Settings
    from dialer.db.engine import build_engine, build_sessionmaker
    from dialer.db.migrate import upgrade_to_head
    from dialer.db.models import AttemptRow, PaymentRow
    from dialer.schemas.cases import CaseIn
    from dialer.services import cases, keys, portfolios, strategies

    settings = Settings(database_url=url, database_schema=schema)
    engine = build_engine(settings)
    await upgrade_to_head(engine)
    now = datetime.now(UTC)
    ids: list[str] = []
    async with build_sessionmaker(engine)() as session:
        _, key = await keys.create_key(session, role=Role.AGENT, name="bench", actor="b", now=now)
        await portfolios.create_portfolio(
            session, name="cn-loans", profile="cn-consumer", country="CN",
            timezone="Asia/Shanghai", actor="b", now=now,
        )  # fmt: skip
        version = await strategies.create_from_preset(
            session, portfolio="cn-loans", preset="consumer-loan", actor="b", now=now
        )
        await strategies.activate(session, version.id, actor="b", now=now)
        for i in range(count):
            row = await cases.create_case(
                session, CaseIn.model_validate(_doc(i)), actor="b", now=now
            )
            ids.append(str(row.id))
            debtor = row.parties[0]
            for h, result in ((30, "no_answer"), (54, "busy"), (80, "right_party")):
                session.add(
                    AttemptRow(
                        case_id=row.id, party_id=debtor.id,
                        contact_point_id=debtor.contact_points[0].id, channel="voice",
                        state="completed", result=result, at=now - timedelta(hours=h),
                    )
                )  # fmt: skip
            session.add(PaymentRow(case_id=row.id, at=now - timedelta(days=4), amount=Decimal(50)))
            if i % 100 == 99:
                await session.commit()
        await session.commit()
    await engine.dispose()
    return key, ids


def _doc(i: int) -> dict[str, Any]:
    return {
        "external_ref": f"B-{i}",
        "portfolio": "cn-loans",
        "amount": "12000.00",
        "currency": "CNY",
        "due_date": "2026-11-20",
        "parties": [
            {"ref": "debtor", "role": "debtor", "name": "Wang Fang", "timezone": "Asia/Shanghai",
             "contact_points": [
                 {"kind": "phone", "value": f"138{i:08d}", "validity": "verified"},
                 {"kind": "phone", "value": f"139{i:08d}", "consent": ["sms"]},
             ]},
            {"ref": "ref-1", "role": "third_party", "name": "Li Na", "relation": "colleague",
             "contact_points": [{"kind": "phone", "value": f"137{i:08d}"}]},
        ],
    }  # fmt: skip


SERVE = [sys.executable, "-c", "from dialer.cli.main import app; app()", "serve"]


async def measure(args: argparse.Namespace, database: str) -> dict[str, dict[str, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_api_"))
    schema: str | None = None
    admin: Any = None
    if database == "postgres":
        import asyncpg

        schema = f"bench_api_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(f"postgresql://{args.pg_user}@127.0.0.1:5432/test")
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        url = f"postgresql+asyncpg://{args.pg_user}@127.0.0.1:5432/test"
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    procs = []
    try:
        key, ids = await seed(url, schema, args.cases)
        env = {"DIALER_DATABASE_URL": url, "DIALER_LOG_LEVEL": "WARNING", "PYTHONPATH": ""}
        if schema:
            env["DIALER_DATABASE_SCHEMA"] = schema
        servers: dict[str, int] = {}
        trees = [("service", ROOT)] + ([("before", Path(args.before))] if args.before else [])
        for name, tree in trees:
            port = httpload.free_port()
            cmd = [*SERVE, "--host", "127.0.0.1", "--port", str(port)]
            procs.append(httpload.start(cmd, {**env, "PYTHONPATH": str(tree)}, cwd=tree))
            servers[name] = port
        port = httpload.free_port()
        bare = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "api:bare_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                "--no-access-log"]  # fmt: skip
        procs.append(httpload.start(bare, {}))
        servers["bare"] = port
        pids = {name: p.pid for p, name in zip(procs, servers, strict=True)}
        for p, port in zip(procs, servers.values(), strict=True):
            await httpload.wait_ready(port, p)
        auth = [f"Authorization: Bearer {key}"]
        runs = [("bare", servers["bare"], [f"/v1/cases/{ids[0]}/decision"])]
        for name in [n for n, _ in trees]:
            tag = "" if name == "service" else f"{name}_"
            decision_paths = [f"/v1/cases/{c}/decision" for c in ids]
            runs.append((f"{tag}decision", servers[name], decision_paths))
            runs.append((f"{tag}case_list", servers[name], ["/v1/cases?limit=50"]))
        seen: dict[str, list[dict[str, Any]]] = {n: [] for n, _, _ in runs}
        for r in range(args.rounds):
            for name, port, paths in runs:
                server = name.removesuffix("decision").removesuffix("case_list").rstrip("_")
                cpu = httpload.cpu_seconds(pids[server or "service"])
                found = httpload.load(
                    port, paths, auth, args.connections, args.seconds, args.warm_up
                )
                cpu = httpload.cpu_seconds(pids[server or "service"]) - cpu
                found["cpu_us"] = cpu / max(found["all_requests"], 1) * 1e6
                if found["errors"]:
                    raise SystemExit(f"{database} {name}: {found['errors']} failed requests")
                seen[name].append(found)
                print(f"{database} round {r + 1} {name}: {found['rps']:.0f} req/s,"
                      f" p50 {found['p50_ms']:.1f} ms, p99 {found['p99_ms']:.1f} ms,"
                      f" CPU {found['cpu_us']:.0f} us/request", flush=True)  # fmt: skip
        return {
            name: {
                k: statistics.median(f[k] for f in found)
                for k in ("rps", "p50_ms", "p99_ms", "cpu_us")
            }
            for name, found in seen.items()
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait(10)
        if admin is not None:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warm-up", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="another checkout's root, served the same way")
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    results = {db: await measure(args, db) for db in args.databases.split(",")}
    for db, found in results.items():
        bare = found["bare"]["rps"]
        for name, m in found.items():
            print(f"{db}_{name}_rps: {m['rps']:.0f} req/s")
            if name != "bare":
                print(f"{db}_{name}_vs_bare: {m['rps'] / bare:.3f} x")
            print(f"{db}_{name}_p50: {m['p50_ms']:.1f} ms")
            print(f"{db}_{name}_p99: {m['p99_ms']:.1f} ms")
            print(f"{db}_{name}_cpu: {m['cpu_us']:.0f} us/request")
            if name != "bare":
                cpu_ratio = found["bare"]["cpu_us"] / m["cpu_us"]
                print(f"{db}_{name}_cpu_vs_bare: {cpu_ratio:.3f} x")


if __name__ == "__main__":
    asyncio.run(main())
