"""The audit log keeps list values as JSON lists: written so by every change, read so by
the compliance audit, and migration 0009 converts rows written as Python reprs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from dialer.core.auth import Role
from dialer.core.digest import digest
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import alembic_config, upgrade_to_head
from dialer.db.models import AuditRow
from dialer.services.audit.as_of import case_as_of
from dialer.services.audit.loader import load
from strategy.model import CaseFlag, Channel
from tests.databases import Database
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api, settings_for


async def _entries(api: Api, action: str) -> list[AuditRow]:
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            stmt = select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)
            return list((await session.scalars(stmt)).all())
    finally:
        await engine.dispose()


async def test_case_and_contact_point_changes_store_lists_and_the_audit_reads_them(
    api: Api,
) -> None:
    r = await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 201, r.text
    case = r.json()
    point = case["parties"][0]["contact_points"][0]
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.patch(f"/v1/cases/{case['id']}", json={"flags": ["cease"]}, headers=h)
    assert r.status_code == 200, r.text
    url = f"/v1/contact-points/{point['id']}"
    r = await api.client.patch(url, json={"opted_out": ["sms", "voice"]}, headers=h)
    assert r.status_code == 200, r.text

    [case_change] = await _entries(api, "case.update")
    assert case_change.detail["before"]["flags"] == []
    assert case_change.detail["after"]["flags"] == ["cease"]
    assert case_change.after_digest == digest({"flags": ["cease"]})
    [point_change] = await _entries(api, "contact_point.update")
    assert point_change.detail["before"]["opted_out"] == sorted(point["opted_out"])
    assert point_change.detail["after"]["opted_out"] == ["sms", "voice"]

    case_id = uuid.UUID(case["id"])
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            data = (await load(session, [case_id]))[case_id]
    finally:
        await engine.dispose()
    now = case_as_of(data, NOW)
    before = case_as_of(data, NOW - timedelta(seconds=1))
    assert CaseFlag.CEASE in now.flags and CaseFlag.CEASE not in before.flags
    [now_point] = [cp for p in now.parties for cp in p.contact_points if cp.id == point["id"]]
    [then_point] = [cp for p in before.parties for cp in p.contact_points if cp.id == point["id"]]
    assert now_point.opted_out == {Channel.SMS, Channel.VOICE}
    assert then_point.opted_out == frozenset(Channel(c) for c in point["opted_out"])


def _to(revision: str) -> Any:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if revision == "0008" and connection.dialect.has_table(connection, "alembic_version"):
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return run


async def test_migration_0009_turns_list_reprs_into_json_lists_and_back(
    database: Database,
) -> None:
    """Rows written before 0009 (`"['cease']"`) become JSON lists, with their digests
    recomputed where they were the digest of those values; other text that merely looks
    like a list (a party's name) and other entries' digests are left as they were."""
    old_before = {"flags": "[]", "amount": "100.00"}
    old_after = {"flags": "['bankruptcy', 'cease']", "amount": "90.00"}
    point_before = {"consent": "['sms', 'voice']", "opted_out": "[]"}
    point_after = {"consent": "['voice']", "opted_out": "['sms']"}
    rows: list[dict[str, Any]] = [
        _row("case.update", "case", old_before, old_after, digest(old_before), digest(old_after)),
        _row(
            "contact_point.update",
            "contact_point",
            point_before,
            point_after,
            digest(point_before),
            digest(point_after),
        ),
        _row("party.update", "party", {"name": "[a]"}, {"name": "[b]"}, "x" * 64, "y" * 64),
        _row("strategy.activate", "portfolio", {}, {"flags": "['cease']"}, None, "z" * 64),
    ]
    engine = build_engine(settings_for(database))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0008"))
            await conn.execute(insert(AuditRow), rows)
        await upgrade_to_head(engine)
        after = await _read(engine)
        assert after[0]["before"] == {"flags": [], "amount": "100.00"}
        assert after[0]["after"] == {"flags": ["bankruptcy", "cease"], "amount": "90.00"}
        assert after[0]["digests"] == (
            digest({"flags": [], "amount": "100.00"}),
            digest({"flags": ["bankruptcy", "cease"], "amount": "90.00"}),
        )
        assert after[1]["before"] == {"consent": ["sms", "voice"], "opted_out": []}
        assert after[1]["after"] == {"consent": ["voice"], "opted_out": ["sms"]}
        assert after[2]["before"] == {"name": "[a]"}
        assert after[2]["digests"] == ("x" * 64, "y" * 64)
        assert after[3]["after"] == {"flags": ["cease"]}
        assert after[3]["digests"] == (None, "z" * 64)  # not the digest of those values: kept

        async with engine.begin() as conn:
            await conn.run_sync(_to("0008"))
        back = await _read(engine)
        assert back[0]["after"] == old_after and back[1]["before"] == point_before
        assert back[0]["digests"] == (digest(old_before), digest(old_after))
    finally:
        await engine.dispose()


def _row(
    action: str,
    entity: str,
    before: dict[str, Any],
    after: dict[str, Any],
    before_digest: str | None,
    after_digest: str | None,
) -> dict[str, Any]:
    return {
        "at": NOW,
        "actor": "t",
        "action": action,
        "entity": entity,
        "entity_id": str(uuid.uuid4()),
        "before_digest": before_digest,
        "after_digest": after_digest,
        "detail": {"before": before, "after": after},
    }


async def _read(engine: Any) -> list[dict[str, Any]]:
    async with build_sessionmaker(engine)() as session:
        found = (await session.scalars(select(AuditRow).order_by(AuditRow.id))).all()
        return [
            {
                "before": r.detail["before"],
                "after": r.detail["after"],
                "digests": (r.before_digest, r.after_digest),
            }
            for r in found
        ]
