"""Protective facts only tighten (architecture invariant 8): every write path may add a
case flag, a refusal, an opt-out, a do-not-call or a consent revocation, none removes one;
only a supervisor clears one, with a reason, audited, and the next decision shows it.
Money and status belong to the book: agents record outcomes and payments instead."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import Connection

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import alembic_config, upgrade_to_head
from dialer.db.models import ApiKeyRow, AuditRow, ContactPointRow
from dialer.facts.convert import case_rows
from dialer.schemas.cases import CaseIn
from dialer.services import cases, optouts, protective
from dialer.services.normalise import normalise_case
from strategy.model import Channel
from tests.databases import Database
from tests.dialer.api.test_decisions_api import _activate
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api, settings_for

EXAMPLE = Path(__file__).parents[3] / "examples" / "portfolio.csv"
RECORDED = "recorded 2026-12-01 02:00 UTC"  # the fixture's clock


async def _create(api: Api, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await api.client.post("/v1/cases", json=doc or cn_case(), headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _get(api: Api, case_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/cases/{case_id}", headers=api.auth(Role.SUPERVISOR))
    return dict(r.json())


async def _import(api: Api, body: bytes, ctype: str = "text/csv") -> dict[str, Any]:
    r = await api.client.post(
        "/v1/imports", content=body, headers={**api.auth(Role.SUPERVISOR), "Content-Type": ctype}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _jsonl(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc) + "\n").encode()


# --- PATCH never clears a flag ---------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.AGENT, Role.SERVICE, Role.SUPERVISOR])
async def test_patch_cannot_clear_case_flags_whatever_the_role(api: Api, role: Role) -> None:
    case = await _create(api, cn_case(flags=["cease", "dispute"]))
    r = await api.client.patch(
        f"/v1/cases/{case['id']}", json={"flags": []}, headers=api.auth(role)
    )
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "forbidden"
    assert "only a supervisor clears one" in error["message"]
    assert "protective-facts/clear" in error["message"]
    assert f"cease ({RECORDED} by service:service-1 (api))" in error["message"]
    assert {(f["field"], f["reason"]) for f in error["fields"]} == {
        ("flags", "may add cease, not remove it"),
        ("flags", "may add dispute, not remove it"),
    }
    assert (await _get(api, case["id"]))["flags"] == ["cease", "dispute"]


async def test_patch_may_add_a_flag_and_its_recorder_is_kept(api: Api) -> None:
    case = await _create(api, cn_case(flags=["dispute"]))
    r = await api.client.patch(
        f"/v1/cases/{case['id']}",
        json={"flags": ["dispute", "attorney"]},
        headers=api.auth(Role.AGENT),
    )
    assert r.status_code == 200, r.text
    assert r.json()["flags"] == ["attorney", "dispute"]
    timeline = (
        await api.client.get(f"/v1/cases/{case['id']}/timeline", headers=api.auth(Role.AGENT))
    ).json()
    facts = {
        (e["fact"], e["recorded_by"], e["source"])
        for e in timeline["entries"]
        if e["kind"] == "protective_fact" and e["entity"] == "case"
    }
    assert facts == {("dispute", "service:service-1", "api"), ("attorney", "agent:agent-1", "api")}


async def test_patch_cannot_resolve_a_dispute(api: Api) -> None:
    case = await _create(api)
    r = await api.client.patch(
        f"/v1/cases/{case['id']}",
        json={"dispute_resolved_at": "2026-12-01T00:00:00Z"},
        headers=api.auth(Role.SERVICE),
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["fields"][0]["field"] == "dispute_resolved_at"
    assert (await _get(api, case["id"]))["dispute_resolved_at"] is None


# --- money and status belong to the book -----------------------------------------------------
@pytest.mark.parametrize(
    "patch",
    [
        {"status": "closed"},
        {"balance": "1.00"},
        {"amount": "1.00"},
        {"flags": [], "status": "closed"},
    ],
)
async def test_an_agent_cannot_change_money_or_status(api: Api, patch: dict[str, Any]) -> None:
    case = await _create(api)
    r = await api.client.patch(f"/v1/cases/{case['id']}", json=patch, headers=api.auth(Role.AGENT))
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert "belong to the book" in error["message"]
    touched = {k for k in patch if k != "flags"}
    assert {f["field"] for f in error["fields"]} == touched
    after = await _get(api, case["id"])
    assert (after["status"], after["amount"], after["balance"]) == ("open", "12000.00", None)


async def test_a_service_key_changes_money_and_status(api: Api) -> None:
    case = await _create(api)
    r = await api.client.patch(
        f"/v1/cases/{case['id']}",
        json={"status": "closed", "balance": "10.00"},
        headers=api.auth(Role.SERVICE),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["balance"]) == ("closed", "10.00")


async def test_an_agent_records_a_payment_and_the_balance_follows(api: Api) -> None:
    case = await _create(api)
    r = await api.client.post(
        f"/v1/cases/{case['id']}/payments",
        json={"amount": "2000.00", "at": "2026-12-01T01:00:00Z"},
        headers=api.auth(Role.AGENT),
    )
    assert r.status_code == 201, r.text
    assert (await _get(api, case["id"]))["balance"] == "10000.00"


# --- parties and contact points --------------------------------------------------------------
async def test_refusal_opt_out_and_do_not_call_are_not_cleared_by_patch(api: Api) -> None:
    case = await _create(api)
    party, point = case["parties"][1], case["parties"][0]["contact_points"][0]
    h = api.auth(Role.AGENT)
    url = f"/v1/cases/{case['id']}/parties/{party['id']}"
    assert (await api.client.patch(url, json={"refused_contact": True}, headers=h)).is_success
    r = await api.client.patch(url, json={"refused_contact": False}, headers=h)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["fields"][0]["field"] == "refused_contact"
    assert f"refused_contact ({RECORDED} by agent:agent-1 (api))" in r.json()["error"]["message"]
    url = f"/v1/contact-points/{point['id']}"
    r = await api.client.patch(url, json={"opted_out": ["sms"], "do_not_call": True}, headers=h)
    assert r.status_code == 200, r.text
    r = await api.client.patch(url, json={"do_not_call": False}, headers=h)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["fields"] == [
        {"field": "do_not_call", "reason": "may add do_not_call, not remove it"}
    ]
    r = await api.client.patch(url, json={"opted_out": []}, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["fields"][0]["field"] == "opted_out"
    after = await _get(api, case["id"])
    assert after["parties"][1]["refused_contact"] is True
    cp = after["parties"][0]["contact_points"][0]
    assert (cp["opted_out"], cp["do_not_call"]) == (["sms"], True)


async def test_a_revoked_consent_is_not_granted_again_until_a_supervisor_clears_it(
    api: Api,
) -> None:
    doc = cn_case()
    doc["parties"][0]["contact_points"][0]["consent"] = ["voice", "sms"]
    case = await _create(api, doc)
    url = f"/v1/contact-points/{case['parties'][0]['contact_points'][0]['id']}"
    h = api.auth(Role.AGENT)
    r = await api.client.patch(url, json={"consent": ["sms"]}, headers=h)  # FCC 24-18
    assert r.status_code == 200, r.text
    r = await api.client.patch(url, json={"consent": ["sms", "voice"]}, headers=h)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["fields"] == [
        {"field": "consent", "reason": "may add consent_revoked voice, not remove it"}
    ]
    r = await api.client.post(
        f"/v1/cases/{case['id']}/protective-facts/clear",
        json={
            "fact": "consent_revoked",
            "contact_point_id": case["parties"][0]["contact_points"][0]["id"],
            "channel": "voice",
            "reason": "signed consent form received 2026-12-01",
        },
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 200, r.text
    r = await api.client.patch(url, json={"consent": ["sms", "voice"]}, headers=h)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["consent"]) == ["sms", "voice"]


# --- imports add, never remove ---------------------------------------------------------------
async def test_reimport_of_the_example_keeps_cease_and_bankruptcy_and_reports_them(
    api: Api,
) -> None:
    data = EXAMPLE.read_bytes()
    await _import(api, data)
    listed = await api.client.get(
        "/v1/cases", params={"portfolio": "cn-loans", "limit": 500}, headers=api.auth(Role.AGENT)
    )
    [case] = [c for c in listed.json()["items"] if c["external_ref"] == "CNL-20260005"]
    r = await api.client.patch(
        f"/v1/cases/{case['id']}",
        json={"flags": ["dispute", "cease", "bankruptcy"]},
        headers=api.auth(Role.AGENT),
    )
    assert r.status_code == 200, r.text
    report = await _import(api, data)
    assert report["errors"] == [] and report["cases_created"] == 0
    assert (await _get(api, case["id"]))["flags"] == ["bankruptcy", "cease", "dispute"]
    assert [(k["line"], k["external_ref"], k["field"], k["message"]) for k in report["kept"]] == [
        (16, "CNL-20260005", "flags", f"kept: bankruptcy, {RECORDED} by agent:agent-1 (api)"),
        (16, "CNL-20260005", "flags", f"kept: cease, {RECORDED} by agent:agent-1 (api)"),
    ]


async def test_jsonl_reimport_keeps_refusals_opt_outs_and_do_not_call_by_line(api: Api) -> None:
    doc = cn_case(flags=["deceased"])
    doc["parties"][1]["refused_contact"] = True
    doc["parties"][0]["contact_points"][1].update(opted_out=["sms"], do_not_call=True)
    first = await _import(api, _jsonl(doc), "application/x-ndjson")
    assert first["cases_created"] == 1 and first["kept"] == []
    # the same case without any of them, on line 2
    second = await _import(api, b"\n" + _jsonl(cn_case()), "application/x-ndjson")
    assert second["cases_updated"] == 1
    kept = {(k["line"], k["field"], k["fact"]) for k in second["kept"]}
    assert kept == {
        (2, "flags", "deceased"),
        (2, "refused_contact", "refused_contact"),
        (2, "opted_out", "opted_out:sms"),
        (2, "do_not_call", "do_not_call"),
    }
    assert all("by supervisor:supervisor-1 (import)" in k["message"] for k in second["kept"])
    case = (await api.client.get("/v1/cases", headers=api.auth(Role.AGENT))).json()["items"][0]
    stored = await _get(api, case["id"])
    assert stored["flags"] == ["deceased"]
    assert stored["parties"][1]["refused_contact"] is True
    cp = stored["parties"][0]["contact_points"][1]
    assert (cp["opted_out"], cp["do_not_call"]) == (["sms"], True)


async def test_a_reimport_adds_an_opt_out_to_an_existing_contact_point(api: Api) -> None:
    header = "portfolio,external_ref,amount,currency,due_date,party_ref,party_role,kind,value,"
    header += "opted_out\n"
    row = "cn-loans,CN-9,100.00,CNY,2026-11-20,debtor,debtor,phone,13800138000,{}\n"
    await _import(api, (header + row.format("")).encode())
    report = await _import(api, (header + row.format("sms")).encode())
    assert report["cases_updated"] == 1 and report["kept"] == []
    case = (await api.client.get("/v1/cases", headers=api.auth(Role.AGENT))).json()["items"][0]
    point = (await _get(api, case["id"]))["parties"][0]["contact_points"][0]
    assert point["opted_out"] == ["sms"]


async def test_a_reimport_does_not_resolve_a_dispute(api: Api) -> None:
    await _import(api, _jsonl(cn_case()), "application/x-ndjson")
    resolved = cn_case(dispute_resolved_at="2026-11-30T00:00:00Z")
    report = await _import(api, _jsonl(resolved), "application/x-ndjson")
    assert [(k["field"], k["fact"]) for k in report["kept"]] == [("dispute_resolved_at", "dispute")]
    case = (await api.client.get("/v1/cases", headers=api.auth(Role.AGENT))).json()["items"][0]
    assert (await _get(api, case["id"]))["dispute_resolved_at"] is None


# --- only a supervisor clears, with a reason -------------------------------------------------
def _rules(decision: dict[str, Any]) -> set[str]:
    return {reason["rule"] for r in decision["refused"] for reason in r["reasons"]}


async def test_a_supervisor_clears_cease_with_a_reason_and_the_next_decision_shows_it(
    api: Api,
) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _create(api, cn_case(flags=["cease"]))
    url = f"/v1/cases/{case['id']}/decision"
    at = {"at": "2026-12-01T10:00:00+08:00"}
    before = (await api.client.get(url, params=at, headers=api.auth(Role.AGENT))).json()
    assert "flag.cease" in _rules(before) and before["allowed"] == []
    clear = f"/v1/cases/{case['id']}/protective-facts/clear"
    body = {"fact": "cease", "reason": "the debtor withdrew the cease request in writing"}
    for role in (Role.AGENT, Role.SERVICE):
        r = await api.client.post(clear, json=body, headers=api.auth(role))
        assert r.status_code == 403, r.text
        assert "only a supervisor clears a protective fact" in r.json()["error"]["message"]
    r = await api.client.post(
        clear, json={"fact": "cease", "reason": "  "}, headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "reason"
    r = await api.client.post(clear, json=body, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200, r.text
    assert r.json()["flags"] == []
    after = (await api.client.get(url, params=at, headers=api.auth(Role.AGENT))).json()
    assert "flag.cease" not in _rules(after) and after["allowed"]
    timeline = (
        await api.client.get(f"/v1/cases/{case['id']}/timeline", headers=api.auth(Role.AGENT))
    ).json()
    [cleared] = [e for e in timeline["entries"] if e["kind"] == "protective_fact_cleared"]
    assert cleared["fact"] == "cease" and cleared["cleared_by"] == "supervisor:supervisor-1"
    assert cleared["reason"] == body["reason"]
    assert cleared["recorded"] == f"{RECORDED} by service:service-1 (api)"
    assert not [e for e in timeline["entries"] if e["kind"] == "protective_fact"]
    audit = await api.client.get(
        "/v1/audit", params={"entity_id": case["id"]}, headers=api.auth(Role.SUPERVISOR)
    )
    [entry] = [e for e in audit.json()["items"] if e["action"] == "protective.clear"]
    assert entry["detail"]["before"]["flags"] == ["cease"]
    assert entry["detail"]["after"]["flags"] == []
    r = await api.client.post(clear, json=body, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 409, r.text  # nothing left to clear


async def test_clearing_a_dispute_also_resolves_disputes_made_on_calls(api: Api) -> None:
    case = await _create(api, cn_case(flags=["dispute"]))
    r = await api.client.post(
        f"/v1/cases/{case['id']}/protective-facts/clear",
        json={"fact": "dispute", "reason": "the creditor verified the debt"},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 200, r.text
    assert r.json()["flags"] == []
    assert r.json()["dispute_resolved_at"] is not None


async def test_a_supervisor_clears_a_refusal_and_an_opt_out(api: Api) -> None:
    case = await _create(api)
    party, point = case["parties"][1], case["parties"][0]["contact_points"][0]
    h = api.auth(Role.AGENT)
    await api.client.patch(
        f"/v1/cases/{case['id']}/parties/{party['id']}", json={"refused_contact": True}, headers=h
    )
    await api.client.patch(
        f"/v1/contact-points/{point['id']}", json={"opted_out": ["sms"]}, headers=h
    )
    clear = f"/v1/cases/{case['id']}/protective-facts/clear"
    s = api.auth(Role.SUPERVISOR)
    r = await api.client.post(
        clear, json={"fact": "opted_out", "reason": "r", "contact_point_id": point["id"]}, headers=s
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "channel"
    r = await api.client.post(
        clear,
        json={
            "fact": "opted_out",
            "reason": "replied START",
            "contact_point_id": point["id"],
            "channel": "sms",
        },
        headers=s,
    )
    assert r.status_code == 200, r.text
    assert r.json()["parties"][0]["contact_points"][0]["opted_out"] == []
    r = await api.client.post(
        clear, json={"fact": "refused_contact", "reason": "asked to be called"}, headers=s
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "party_id"
    r = await api.client.post(
        clear,
        json={"fact": "refused_contact", "reason": "asked to be called", "party_id": party["id"]},
        headers=s,
    )
    assert r.status_code == 200, r.text
    assert r.json()["parties"][1]["refused_contact"] is False


# --- keys ------------------------------------------------------------------------------------
async def test_the_last_active_admin_key_cannot_be_revoked(api: Api) -> None:
    h = api.auth(Role.ADMIN)
    keys = (await api.client.get("/v1/keys", headers=h)).json()["items"]
    [admin] = [k for k in keys if k["role"] == "admin"]
    r = await api.client.delete(f"/v1/keys/{admin['id']}", headers=h)
    assert r.status_code == 409, r.text
    assert "last active admin key" in r.json()["error"]["message"]
    second = await api.client.post("/v1/keys", json={"role": "admin", "name": "root-2"}, headers=h)
    assert second.status_code == 201, second.text
    assert (await api.client.delete(f"/v1/keys/{admin['id']}", headers=h)).status_code == 200
    h2 = {"Authorization": f"Bearer {second.json()['key']}"}
    r = await api.client.delete(f"/v1/keys/{second.json()['id']}", headers=h2)
    assert r.status_code == 409, r.text
    assert (await api.client.get("/v1/keys", headers=h2)).status_code == 200


async def test_two_active_keys_cannot_share_a_name(api: Api) -> None:
    h = api.auth(Role.ADMIN)
    first = await api.client.post("/v1/keys", json={"role": "agent", "name": "agent-7"}, headers=h)
    assert first.status_code == 201, first.text
    r = await api.client.post("/v1/keys", json={"role": "agent", "name": "agent-7"}, headers=h)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["fields"] == [{"field": "name", "reason": "held by an active key"}]
    assert (await api.client.delete(f"/v1/keys/{first.json()['id']}", headers=h)).status_code == 200
    again = await api.client.post("/v1/keys", json={"role": "agent", "name": "agent-7"}, headers=h)
    assert again.status_code == 201, again.text


async def test_the_migration_separates_active_keys_that_already_share_a_name(
    database: Database,
) -> None:
    """Two active `agent-7` keys before 0007: the older keeps the name, the
    later one is renamed after its own prefix (audited), and the unique index then holds."""
    engine = build_engine(settings_for(database))

    def upgrade_to_0006(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")

    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0006)
        async with build_sessionmaker(engine)() as session:
            for i, prefix in enumerate(("aaaaaaaaaaaa", "bbbbbbbbbbbb")):
                session.add(
                    ApiKeyRow(
                        id=uuid.uuid4(),
                        name="agent-7",
                        role="agent",
                        prefix=prefix,
                        hash="0" * 64,
                        created_at=NOW + timedelta(minutes=i),
                    )
                )
            await session.commit()
        await upgrade_to_head(engine)
        async with build_sessionmaker(engine)() as session:
            names = sorted((await session.scalars(select(ApiKeyRow.name))).all())
            [renamed] = (
                await session.scalars(select(AuditRow).where(AuditRow.action == "key.rename"))
            ).all()
        assert names == ["agent-7", "agent-7~bbbbbbbbbbbb"]
        assert renamed.detail["after"] == {"name": "agent-7~bbbbbbbbbbbb"}
    finally:
        await engine.dispose()


async def test_a_stop_during_an_import_of_the_same_case_loses_neither_opt_out(
    api: Api,
) -> None:
    """The nightly file adds a voice opt-out while an inbound STOP adds the SMS one: the
    import holds the case from reading its facts to committing, so the STOP reads the
    point only after it and both opt-outs stay (without the hold, the STOP's list, read
    before the import wrote, would overwrite the voice opt-out)."""
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    try:
        async with maker() as session:
            case = await cases.create_case(
                session, CaseIn.model_validate(cn_case()), actor="t", now=NOW
            )
            point_id = case.parties[0].contact_points[0].id

        async def inbound_stop() -> None:
            async with maker() as session:
                point = await session.get(ContactPointRow, point_id)
                assert point is not None
                await optouts.opt_out(
                    session, [point], Channel.SMS, source="inbound sms", actor="twilio", now=NOW
                )
                await session.commit()

        file = cn_case()
        file["parties"][0]["contact_points"][0]["opted_out"] = ["voice"]
        rows = case_rows(normalise_case(CaseIn.model_validate(file), "CN"), "cn-loans", NOW)
        async with maker() as importer:
            await protective.hold(importer, case.id)
            stop = asyncio.create_task(inbound_stop())
            await asyncio.wait({stop}, timeout=1.0)  # the STOP gets as far as it can
            await protective.upsert(importer, [rows], actor="import", source="import", now=NOW)
            await importer.commit()
        await stop
        async with maker() as session:
            point = await session.get(ContactPointRow, point_id)
            assert point is not None and point.opted_out == ["sms", "voice"]
    finally:
        await engine.dispose()
