"""A batch large enough for the bulk path (COPY into a staging table, then one INSERT ...
SELECT ... ON CONFLICT per table on PostgreSQL; executemany on SQLite) creates, updates
and keeps protective facts exactly as a small one does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import ContactPointRow
from strategy.calendar import phone_facts
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api

CASES = 260  # over `repositories.cases._COPY_FROM` rows in every table


def _body(docs: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(d) + "\n" for d in docs).encode()


async def _import(api: Api, body: bytes) -> dict[str, Any]:
    h = {**api.auth(Role.SUPERVISOR), "Content-Type": "application/x-ndjson"}
    r = await api.client.post("/v1/imports", content=body, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _case(api: Api, ref: str) -> dict[str, Any]:
    h = api.auth(Role.AGENT)
    items = (await api.client.get("/v1/cases", params={"limit": 500}, headers=h)).json()["items"]
    [found] = [c for c in items if c["external_ref"] == ref]
    return dict((await api.client.get(f"/v1/cases/{found['id']}", headers=h)).json())


async def test_a_large_batch_creates_then_updates_and_keeps_every_protective_fact(
    api: Api,
) -> None:
    docs = [cn_case(f"BULK-{i:04d}") for i in range(CASES)]
    docs[7]["flags"] = ["cease"]
    docs[9]["parties"][1]["refused_contact"] = True
    docs[11]["parties"][0]["contact_points"][1].update(opted_out=["sms"], do_not_call=True)
    first = await _import(api, _body(docs))
    assert (first["cases_created"], first["cases_updated"], first["errors"]) == (CASES, 0, [])
    assert first["kept"] == []

    again = [cn_case(f"BULK-{i:04d}", amount="99.00") for i in range(CASES)]
    again[3]["parties"][0]["contact_points"].append({"kind": "email", "value": "a@B.example"})
    second = await _import(api, _body(again))
    assert (second["cases_created"], second["cases_updated"]) == (0, CASES)
    kept = {(k["line"], k["external_ref"], k["fact"]) for k in second["kept"]}
    assert kept == {
        (8, "BULK-0007", "cease"),
        (10, "BULK-0009", "refused_contact"),
        (12, "BULK-0011", "opted_out:sms"),
        (12, "BULK-0011", "do_not_call"),
    }

    assert (await _case(api, "BULK-0007"))["flags"] == ["cease"]
    assert (await _case(api, "BULK-0009"))["parties"][1]["refused_contact"] is True
    point = (await _case(api, "BULK-0011"))["parties"][0]["contact_points"][1]
    assert (point["opted_out"], point["do_not_call"]) == (["sms"], True)
    updated = await _case(api, "BULK-0003")
    assert updated["amount"] == "99.00"
    points = updated["parties"][0]["contact_points"]
    assert [(p["kind"], p["value"]) for p in points] == [
        ("phone", "+8613800138000"),
        ("phone", "+8613912345678"),
        ("email", "a@b.example"),
    ]
    # every phone's stored facts are the engine's own reading of it (parsed once per
    # distinct number by the import)
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            stored = (
                await session.execute(
                    select(
                        ContactPointRow.value,
                        ContactPointRow.number_zones,
                        ContactPointRow.number_mobile,
                    ).where(ContactPointRow.kind == "phone")
                )
            ).all()
    finally:
        await engine.dispose()
    assert len(stored) == 3 * CASES
    for value, zones, mobile in stored:
        expected = phone_facts(value)
        assert (tuple(zones), mobile) == expected and expected[0], value


async def test_the_next_batch_is_read_while_one_is_written_and_batches_stay_in_order(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database writes a batch while this process validates the next one (their work
    # overlaps); batches still reach the database one at a time, in file order, and the
    # report counts them all once the import returns.
    import asyncio

    from dialer.services import imports, protective
    from dialer.services.imports import ImportFormat

    consumed = 0
    seen: list[tuple[int, int, list[str]]] = []  # lines read at a write's start and end
    real = protective.upsert

    async def slow_upsert(session: Any, rows: Any, **kw: Any) -> Any:
        start = consumed
        await asyncio.sleep(0.05)
        done = await real(session, rows, **kw)
        seen.append((start, consumed, [r.case["external_ref"] for r in rows]))
        return done

    def lines() -> Iterator[tuple[int, str]]:
        nonlocal consumed
        for n in range(1, 61):
            consumed = n
            yield n, json.dumps(cn_case(f"PIPE-{n:02d}"))

    monkeypatch.setattr(protective, "upsert", slow_upsert)
    settings = api.settings.model_copy(update={"import_batch_size": 20})
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            report = await imports.import_stream(
                session, lines(), fmt=ImportFormat.JSONL, default_portfolio="cn-loans",
                settings=settings, actor="test", now=NOW,
            )  # fmt: skip
    finally:
        await engine.dispose()
    assert report.cases_created == 60 and not report.errors
    assert [refs for *_, refs in seen] == [
        [f"PIPE-{n:02d}" for n in range(k, k + 20)] for k in (1, 21, 41)
    ]
    first_start, first_end, _ = seen[0]
    assert first_end > first_start  # lines were read while the first batch was written
