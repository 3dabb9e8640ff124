""" "Why was this case not called this morning": the planner records, per case and
campaign, the rules that refused it, their reasons and the next instant allowed, and the
case's timeline shows them."""

from __future__ import annotations

import uuid
from datetime import datetime

from dialer.core.auth import Role
from dialer.core.clock import fixed_clock
from dialer.dispatch.planner import plan_campaign
from strategy.presets import load_preset
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api


async def _activate(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    doc = load_preset("consumer-loan").model_dump(mode="json")
    body = {"portfolio": "cn-loans", "document": doc}
    r = await api.client.post("/v1/strategies", json=body, headers=h)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    assert r.status_code == 200, r.text


async def _case(api: Api, ref: str, **overrides: object) -> str:
    doc = cn_case(ref, **overrides)
    r = await api.client.post("/v1/cases", json=doc, headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _plan(api: Api) -> str:
    h = api.auth(Role.SUPERVISOR)
    body = {"name": "m", "portfolio": "cn-loans", "channels": ["voice"], "window": "09:00-11:30",
            "pacing_cps": 5}  # fmt: skip
    r = await api.client.post("/v1/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert (await api.client.post(f"/v1/campaigns/{cid}/start", headers=h)).status_code == 200
    await plan_campaign(api.app.state.sessionmaker, uuid.UUID(cid), fixed_clock(NOW))
    return str(cid)


async def _refusals(api: Api, case_id: str) -> list[dict[str, object]]:
    r = await api.client.get(f"/v1/cases/{case_id}/timeline", headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    return [e for e in r.json()["entries"] if e["kind"] == "plan_refusal"]


async def test_a_case_the_planner_refused_shows_rule_reason_and_next_allowed(api: Api) -> None:
    await _activate(api)
    disputed = await _case(api, "CN-D", flags=["dispute"])
    called = await _case(api, "CN-OK")
    cid = await _plan(api)
    [refusal] = await _refusals(api, disputed)
    assert refusal["campaign_id"] == cid
    assert refusal["rules"] == ["flag.dispute"]
    assert "flag.dispute: " in str(refusal["reason"]) and len(str(refusal["reason"])) > 20
    assert refusal["next_allowed"] is None  # a dispute holds until it is resolved
    assert datetime.fromisoformat(str(refusal["at"])) == NOW
    assert await _refusals(api, called) == []  # planned: nothing to explain


async def test_a_refusal_with_a_later_opening_names_it(api: Api) -> None:
    await _activate(api)
    case = await _case(api, "CN-E")
    cases = (await api.client.get(f"/v1/cases/{case}", headers=api.auth(Role.AGENT))).json()
    point = cases["parties"][0]["contact_points"][0]["id"]
    r = await api.client.post(
        f"/v1/cases/{case}/outcomes",
        json={"contact_point_id": point, "channel": "voice", "result": "no_answer",
              "at": "2026-12-01T09:50:00+08:00"},
        headers=api.auth(Role.AGENT),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    await _plan(api)
    [refusal] = await _refusals(api, case)
    # 120 minutes after the 09:50 call is 11:50, past the campaign's 11:30: nothing to
    # plan this morning, and the engine names 11:50 as the next instant it would allow.
    assert "spacing.party" in refusal["rules"]
    assert "spacing.party: at least 120 min between attempts per party" in str(refusal["reason"])
    assert refusal["next_allowed"] == "2026-12-01T03:50:00Z"


async def test_no_active_strategy_is_recorded_as_the_reason(api: Api) -> None:
    case = await _case(api, "CN-N")
    await _plan(api)
    [refusal] = await _refusals(api, case)
    assert refusal["rules"] == ["strategy.none_active"]
    assert "no active strategy" in str(refusal["reason"])
