"""Import throughput against a bare COPY of the same rows, in the same run.

    .venv/bin/python bench/import.py                 # 100,000 cases
    .venv/bin/python bench/import.py --cases 10000   # a quicker run

Each case has a debtor with two contact points (mobile, email) and a third-party contact
with a phone: 6 rows per case (1 case, 2 parties, 3 contact points). The import goes
through the real service (`dialer.services.imports.import_stream`: JSON lines parsed,
checked for storable text, validated with the API's schema, phones normalised with
`phonenumbers` and their candidate zones and line type derived and stored for the
planner, the cases locked and their stored protective facts read and merged, batched
upserts, one audit entry per batch) into a fresh PostgreSQL schema.

The ceiling is a bare COPY of the same rows (`copy_records_to_table`, one transaction)
into another fresh schema. It skips all of that work: the rows, the stored facts
included, are prepared before the clock starts, and it does no locking, no reading of
stored facts, no conflict handling, no audit entry. Both schemas are dropped. The last
lines are `name: value unit`: the ratio of rows/s (wall time), and the ratio of CPU
seconds (this process plus its PostgreSQL backend, from /proc: needs PostgreSQL on this
machine), which a loaded machine does not skew the way it skews wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.facts.convert import CaseRows, case_rows
from dialer.schemas.cases import CaseIn
from dialer.services import imports, portfolios
from dialer.services.normalise import normalise_case

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PORTFOLIO = "bench"
CASE_COLS = (
    "id", "portfolio", "external_ref", "amount", "balance", "currency", "due_date", "stage",
    "stage_started_on", "status", "flags", "country", "dispute_resolved_at", "created_at",
    "updated_at",
)  # fmt: skip
PARTY_COLS = (
    "id", "case_id", "key", "position", "role", "name", "relation", "knows_of_debt",
    "refused_contact", "timezone", "title",
)  # fmt: skip
POINT_COLS = (
    "id", "party_id", "case_id", "position", "kind", "value", "consent", "opted_out",
    "validity", "timezone", "do_not_call", "mobile", "number_zones", "number_mobile",
)  # fmt: skip
JSON_COLS = {"flags", "consent", "opted_out", "number_zones"}


def case_doc(i: int) -> dict[str, Any]:
    """A deterministic case: amounts, due dates and numbers follow from `i`."""
    due = date(2026, 8, 1) + timedelta(days=i % 130)
    return {
        "external_ref": f"B-{i:07d}",
        "portfolio": PORTFOLIO,
        "amount": f"{1000 + (i * 37) % 50000}.00",
        "currency": "CNY",
        "due_date": due.isoformat(),
        "parties": [
            {
                "ref": "debtor",
                "role": "debtor",
                "name": f"Debtor {i}",
                "timezone": "Asia/Shanghai",
                "contact_points": [
                    {"kind": "phone", "value": f"138{i:08d}", "validity": "verified"},
                    {"kind": "email", "value": f"debtor{i}@example.com"},
                ],
            },
            {
                "ref": "contact-1",
                "role": "third_party",
                "name": f"Contact {i}",
                "relation": "colleague",
                "contact_points": [{"kind": "phone", "value": f"139{i:08d}"}],
            },
        ],
    }


def jsonl(count: int) -> Iterator[tuple[int, str]]:
    for i in range(count):
        yield i + 1, json.dumps(case_doc(i)) + "\n"


def prepared_rows(count: int) -> list[CaseRows]:
    return [
        case_rows(normalise_case(CaseIn.model_validate(case_doc(i)), "CN"), PORTFOLIO, NOW)
        for i in range(count)
    ]


def records(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [
        tuple(json.dumps(r[c]) if c in JSON_COLS and r[c] is not None else r[c] for c in cols)
        for r in rows
    ]


async def fresh_schema(settings: Settings) -> None:
    engine = build_engine(settings)
    try:
        await upgrade_to_head(engine)
        async with build_sessionmaker(engine)() as session:
            await portfolios.create_portfolio(
                session, name=PORTFOLIO, profile="cn-consumer", country="CN",
                timezone="Asia/Shanghai", actor="bench", now=NOW,
            )  # fmt: skip
    finally:
        await engine.dispose()


def copy_tables(docs: list[CaseRows]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "cases": records([d.case for d in docs], CASE_COLS),
        "parties": records([p for d in docs for p in d.parties], PARTY_COLS),
        "contact_points": records([p for d in docs for p in d.contact_points], POINT_COLS),
    }


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a local PostgreSQL backend has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds spent by this process and one PostgreSQL backend: unlike wall time,
    not inflated when other work on the machine takes the cores."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = time.process_time() + backend_cpu(pid)

    def used(self) -> float:
        return time.process_time() + backend_cpu(self.pid) - self.start


async def copy(
    dsn: str, schema: str, tables: dict[str, list[tuple[Any, ...]]]
) -> tuple[float, float]:
    """The ceiling: the prepared rows written with COPY in one transaction (wall and CPU
    seconds)."""
    columns = {"cases": CASE_COLS, "parties": PARTY_COLS, "contact_points": POINT_COLS}
    conn = await asyncpg.connect(dsn)
    try:
        cpu = Cpu(await conn.fetchval("SELECT pg_backend_pid()"))
        started = time.perf_counter()
        async with conn.transaction():
            for table, recs in tables.items():
                await conn.copy_records_to_table(
                    table, records=recs, columns=columns[table], schema_name=schema
                )
        return time.perf_counter() - started, cpu.used()
    finally:
        await conn.close()


async def run(count: int, url: str) -> dict[str, float]:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    tag = uuid.uuid4().hex[:10]
    import_schema, copy_schema = f"bench_import_{tag}", f"bench_copy_{tag}"
    admin = await asyncpg.connect(dsn)
    try:
        for schema in (import_schema, copy_schema):
            await admin.execute(f'CREATE SCHEMA "{schema}"')
        imp = Settings(database_url=url, database_schema=import_schema, import_batch_size=2000)
        cpy = Settings(database_url=url, database_schema=copy_schema)
        await fresh_schema(imp)
        await fresh_schema(cpy)

        engine = build_engine(imp, pool_size=1)  # one connection: one backend to measure
        async with engine.connect() as conn:
            cpu = Cpu(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
        started = time.perf_counter()
        async with build_sessionmaker(engine)() as session:
            report = await imports.import_stream(
                session, jsonl(count), fmt=imports.ImportFormat.JSONL,
                default_portfolio=PORTFOLIO, settings=imp, actor="bench", now=NOW,
            )  # fmt: skip
        import_seconds, import_cpu = time.perf_counter() - started, cpu.used()
        await engine.dispose()
        assert not report.errors, report.errors[:3]
        assert report.cases_created == count

        tables = copy_tables(prepared_rows(count))
        total_rows = sum(len(v) for v in tables.values())
        copy_seconds, copy_cpu = await copy(dsn, copy_schema, tables)
        for table in tables:
            a = await admin.fetchval(f'SELECT count(*) FROM "{import_schema}".{table}')
            b = await admin.fetchval(f'SELECT count(*) FROM "{copy_schema}".{table}')
            assert a == b == len(tables[table]), (table, a, b)
    finally:
        for schema in (import_schema, copy_schema):
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    return {
        "cases": count,
        "rows": total_rows,
        "import_seconds": import_seconds,
        "copy_seconds": copy_seconds,
        "import": total_rows / import_seconds,
        "copy": total_rows / copy_seconds,
        "import_cases": count / import_seconds,
        "import_cpu": import_cpu,
        "copy_cpu": copy_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    default_url = os.environ.get("DIALER_DATABASE_URL", "")
    if not default_url.startswith("postgresql"):
        default_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    parser.add_argument("--database-url", default=default_url)
    args = parser.parse_args()
    r = asyncio.run(run(args.cases, args.database_url))
    print(
        f"{r['cases']:.0f} cases = {r['rows']:.0f} rows (case, 2 parties, 3 contact points each)\n"
        f"import service: {r['import_seconds']:.1f} s   COPY: {r['copy_seconds']:.2f} s"
    )
    print(f"import: {r['import']:.0f} rows/s")
    print(f"import_cases: {r['import_cases']:.0f} cases/s")
    print(f"copy: {r['copy']:.0f} rows/s")
    print(f"import_vs_copy: {r['import'] / r['copy']:.3f} ratio")
    print(f"import_cpu: {r['import_cpu']:.1f} s (this process and its PostgreSQL backend)")
    print(f"copy_cpu: {r['copy_cpu']:.2f} s")
    print(f"import_vs_copy_cpu: {r['copy_cpu'] / r['import_cpu']:.3f} ratio")


if __name__ == "__main__":
    main()
