"""A debtor recorded unreachable ("since D, skip-trace"): who may record and clear it, what
input is refused (with the field), the audit and timeline entries it leaves, and that every
reader that turns stored rows into the engine's `Case` sees the same recorded fact."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AuditRow
from dialer.facts.batch import load_facts
from dialer.facts.reader import load_case
from dialer.services.audit.as_of import case_as_of
from dialer.services.audit.loader import load
from strategy.model import RecordedUnreachable
from tests.dialer.factories import cn_case, us_case
from tests.dialer.support import NOW, Api

SINCE = NOW - timedelta(days=3)
UNTIL = NOW + timedelta(days=14)
FINDING = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), "source": "skip-trace"}


async def _case(api: Api) -> dict[str, Any]:
    r = await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _audit_entries(api: Api, case_id: str) -> list[AuditRow]:
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            return list(
                await session.scalars(
                    select(AuditRow)
                    .where(AuditRow.entity_id == case_id, AuditRow.action.like("case.unreachable%"))
                    .order_by(AuditRow.id)
                )
            )
    finally:
        await engine.dispose()


async def test_an_agent_records_it_audited_and_shown_on_the_case_and_timeline(api: Api) -> None:
    case = await _case(api)
    url = f"/v1/cases/{case['id']}/unreachable"
    r = await api.client.put(url, json=FINDING, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unreachable_source"] == "skip-trace"
    assert datetime.fromisoformat(body["unreachable_since"]) == SINCE
    assert datetime.fromisoformat(body["unreachable_until"]) == UNTIL
    [entry] = await _audit_entries(api, case["id"])
    assert entry.action == "case.unreachable.record" and entry.actor == "agent:agent-1"
    assert entry.detail["before"] == {
        "unreachable_since": None,
        "unreachable_until": None,
        "unreachable_source": None,
    }
    assert entry.detail["after"]["unreachable_source"] == "skip-trace"
    timeline = await api.client.get(
        f"/v1/cases/{case['id']}/timeline", headers=api.auth(Role.AGENT)
    )
    assert timeline.status_code == 200, timeline.text
    recorded = [e for e in timeline.json()["entries"] if e["kind"] == "unreachable_recorded"]
    assert [(e["source"], e["recorded_by"]) for e in recorded] == [("skip-trace", "agent:agent-1")]
    assert datetime.fromisoformat(recorded[0]["since"]) == SINCE
    assert datetime.fromisoformat(recorded[0]["until"]) == UNTIL

    # clearing only tightens: any case writer may, and it is audited with what it removed
    r = await api.client.delete(url, headers=api.auth(Role.SERVICE))
    assert r.status_code == 200, r.text
    assert r.json()["unreachable_since"] is None and r.json()["unreachable_until"] is None
    entries = await _audit_entries(api, case["id"])
    assert [e.action for e in entries] == ["case.unreachable.record", "case.unreachable.clear"]
    assert entries[1].detail["before"]["unreachable_source"] == "skip-trace"
    assert entries[1].detail["after"]["unreachable_since"] is None
    # clearing nothing changes nothing and records nothing
    r = await api.client.delete(url, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200 and len(await _audit_entries(api, case["id"])) == 2


async def test_only_agents_and_supervisors_may_record_it(api: Api) -> None:
    case = await _case(api)
    url = f"/v1/cases/{case['id']}/unreachable"
    for role in (Role.SERVICE, Role.APPROVER):
        r = await api.client.put(url, json=FINDING, headers=api.auth(role))
        assert r.status_code == 403, (role, r.text)
    for role in (Role.SUPERVISOR, Role.ADMIN):
        r = await api.client.put(url, json=FINDING, headers=api.auth(role))
        assert r.status_code == 200, (role, r.text)
    r = await api.client.put(
        f"/v1/cases/{uuid.uuid4()}/unreachable", json=FINDING, headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 404


async def test_bad_findings_are_422_naming_the_field(api: Api) -> None:
    case = await _case(api)
    url = f"/v1/cases/{case['id']}/unreachable"
    bad: list[tuple[dict[str, Any], str]] = [
        ({**FINDING, "since": (NOW + timedelta(hours=1)).isoformat()}, "since"),  # not yet known
        ({**FINDING, "until": (NOW - timedelta(minutes=1)).isoformat()}, "until"),  # expired
        ({**FINDING, "until": (NOW + timedelta(days=31)).isoformat()}, "until"),  # unbounded
        ({**FINDING, "source": "  "}, "source"),
        ({**FINDING, "source": "x" * 65}, "source"),
        ({"since": SINCE.isoformat(), "until": UNTIL.isoformat()}, "source"),
        ({**FINDING, "since": "2026-11-28T10:00:00"}, "since"),  # no offset
        ({**FINDING, "reason": "extra"}, "reason"),
        ({**FINDING, "since": "0001-01-01T00:00:00+05:00"}, "since"),  # no UTC instant
        ({**FINDING, "until": "9999-12-31T23:59:59-05:00"}, "until"),
    ]
    for doc, field in bad:
        r = await api.client.put(url, json=doc, headers=api.auth(Role.AGENT))
        assert r.status_code == 422, (doc, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], (doc, r.text)
    assert await _audit_entries(api, case["id"]) == []


async def test_a_finding_the_history_contradicts_is_refused(api: Api) -> None:
    """The debtor answered and promised after `since`: "unreachable since" is false."""
    case = await _case(api)
    point = case["parties"][0]["contact_points"][0]["id"]
    r = await api.client.post(
        f"/v1/cases/{case['id']}/outcomes",
        json={
            "contact_point_id": point,
            "channel": "voice",
            "result": "right_party",
            "at": (NOW - timedelta(days=1)).isoformat(),
        },
        headers=api.auth(Role.AGENT),
    )
    assert r.status_code == 201, r.text
    url = f"/v1/cases/{case['id']}/unreachable"
    r = await api.client.put(url, json=FINDING, headers=api.auth(Role.AGENT))
    assert r.status_code == 422, r.text
    [field] = r.json()["error"]["fields"]
    assert field["field"] == "since" and "reached" in field["reason"]
    # since after that conversation: allowed
    later = {**FINDING, "since": (NOW - timedelta(hours=1)).isoformat()}
    r = await api.client.put(url, json=later, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text


async def test_every_reader_builds_the_same_case_with_the_recorded_fact(api: Api) -> None:
    """`facts.reader.load_case` (decisions), `facts.load_facts` (planner, worker, simulate,
    assignment), the reader as of now, and the audit's `case_as_of` agree, recorded fact
    included; the audit's case as it stood before the record (and after its clearing) has
    none."""
    case = await _case(api)
    url = f"/v1/cases/{case['id']}/unreachable"
    r = await api.client.put(url, json=FINDING, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    expected = RecordedUnreachable(since=SINCE, until=UNTIL, source="skip-trace")
    case_id = uuid.UUID(case["id"])
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            stored = await load_case(session, case_id, NOW)
            assert stored is not None
            from_row = stored.facts.case
            reader_as_of = (await load_facts(session, [case_id], NOW, as_of=NOW))[case_id].case
            from_facts = (await load_facts(session, [case_id], NOW))[case_id].case
            data = (await load(session, [case_id]))[case_id]
        as_of_now = case_as_of(data, NOW)
        before = case_as_of(data, NOW - timedelta(seconds=1))
    finally:
        await engine.dispose()
    assert from_row.recorded_unreachable == expected
    assert from_row == from_facts == as_of_now == reader_as_of
    assert before.recorded_unreachable is None
    assert before == replace(from_row, recorded_unreachable=None)


async def test_a_recorded_unreachability_reaches_the_engine_until_it_is_cleared(
    api: Api,
) -> None:
    """US consumer ladder: a third party may be asked for location information only while
    the debtor cannot be reached (15 USC 1692b). Recorded through the API, the stored
    case's decision lets the neighbour's call through; cleared, it is refused again."""
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.post(
        "/v1/strategies/from-preset",
        json={"portfolio": "us-loans", "preset": "us-consumer-loan"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    assert r.status_code == 200, r.text
    doc = us_case()
    doc["parties"].append(
        {
            "ref": "nb",
            "role": "third_party",
            "name": "Neighbour",
            "relation": "neighbour",
            "contact_points": [{"kind": "phone", "value": "(212) 555-0101", "consent": ["voice"]}],
        }
    )
    r = await api.client.post("/v1/cases", json=doc, headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    case = r.json()
    third = case["parties"][1]["id"]
    at = (NOW + timedelta(hours=14)).isoformat()  # 11:00 in New York

    async def third_party_reasons() -> list[str] | None:
        d = await api.client.get(
            f"/v1/cases/{case['id']}/decision", params={"at": at}, headers=api.auth(Role.AGENT)
        )
        assert d.status_code == 200, d.text
        body = d.json()
        if any(a["candidate"]["party_id"] == third for a in body["allowed"]):
            return None
        return [
            x["rule"]
            for r in body["refused"]
            if r["candidate"]["party_id"] == third and r["candidate"]["channel"] == "voice"
            for x in r["reasons"]
        ]

    assert "party.debtor_reachable" in (await third_party_reasons() or [])
    url = f"/v1/cases/{case['id']}/unreachable"
    r = await api.client.put(url, json=FINDING, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    assert await third_party_reasons() is None  # allowed
    r = await api.client.delete(url, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    assert "party.debtor_reachable" in (await third_party_reasons() or [])
