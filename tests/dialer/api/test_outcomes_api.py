"""Agents' outcomes drive the ladders: tasks exactly once, a cease record blocks the
channel at once, a promise holds collection until it is broken, and the timeline shows
everything in order with the summary an agent reads before the next call."""

from __future__ import annotations

from typing import Any

from dialer.core.auth import Role
from strategy.presets import load_preset
from tests.dialer.factories import cn_case
from tests.dialer.support import Api

AT = {"at": "2026-12-01T10:00:00+08:00"}


async def _activate(
    api: Api, portfolio: str, preset: str, teams: dict[str, str] | None = None
) -> None:
    h = api.auth(Role.SUPERVISOR)
    body = {"portfolio": portfolio, "teams": teams or {},
            "document": load_preset(preset).model_dump(mode="json")}  # fmt: skip
    r = await api.client.post("/v1/strategies", json=body, headers=h)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    assert r.status_code == 200, r.text


async def _case(api: Api, doc: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post("/v1/cases", json=doc, headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _outcome(api: Api, case: dict[str, Any], **body: Any) -> dict[str, Any]:
    point = case["parties"][0]["contact_points"][0]["id"]
    payload = {"contact_point_id": point, "channel": "voice", **body}
    r = await api.client.post(
        f"/v1/cases/{case['id']}/outcomes", json=payload, headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _decision(api: Api, case: dict[str, Any], at: str = AT["at"]) -> dict[str, Any]:
    r = await api.client.get(
        f"/v1/cases/{case['id']}/decision", params={"at": at}, headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _rules(decision: dict[str, Any], point: str, channel: str) -> set[str]:
    rules = {r["rule"] for r in decision["case_reasons"]}
    for refusal in decision["refused"]:
        c = refusal["candidate"]
        if c["contact_point_id"] == point and c["channel"] == channel:
            rules |= {r["rule"] for r in refusal["reasons"]}
    return rules


def b2b_case() -> dict[str, Any]:
    return {
        "external_ref": "AR-1", "portfolio": "b2b", "amount": "250000.00", "currency": "CNY",
        "due_date": "2026-08-20", "stage": "payment", "stage_started_on": "2026-08-01",
        "parties": [{"ref": "customer", "role": "debtor", "name": "Donghai Logistics",
                     "timezone": "Asia/Shanghai",
                     "contact_points": [{"kind": "phone", "value": "+86 21 5550 1000"}]}],
    }  # fmt: skip


async def test_escalation_tasks_are_created_once_after_outcomes(api: Api) -> None:
    await _activate(api, "b2b", "b2b-receivables")
    case = await _case(api, b2b_case())
    await _outcome(api, case, result="refusal", notes="will not pay before the audit")
    tasks = (
        await api.client.get(
            "/v1/tasks", params={"case_id": case["id"]}, headers=api.auth(Role.SUPERVISOR)
        )
    ).json()["items"]
    actions = sorted(t["action"] for t in tasks)
    assert actions, "a receivable three months overdue escalates"
    assert any(t["requires_approval"] for t in tasks), "account lock / letters need approval"
    await _outcome(api, case, result="no_answer")
    again = (
        await api.client.get(
            "/v1/tasks", params={"case_id": case["id"]}, headers=api.auth(Role.SUPERVISOR)
        )
    ).json()["items"]
    assert sorted(t["action"] for t in again) == actions


async def test_agent_cease_record_blocks_those_channels_at_once(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api, cn_case())
    point = case["parties"][0]["contact_points"][0]["id"]
    await _outcome(api, case, result="refusal", opt_out=["voice", "sms"], notes="stop calling")
    r = await api.client.get(f"/v1/cases/{case['id']}", headers=api.auth(Role.AGENT))
    stored = r.json()["parties"][0]["contact_points"][0]
    assert sorted(stored["opted_out"]) == ["sms", "voice"]
    decision = await _decision(api, case, "2026-12-08T10:00:00+08:00")
    for channel in ("voice", "sms"):
        assert "optout.channel" in _rules(decision, point, channel)


async def test_a_promise_holds_collection_until_it_is_broken(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api, cn_case())
    point = case["parties"][0]["contact_points"][0]["id"]
    await _outcome(api, case, result="promise_to_pay", promise_amount="12000.00",
                   promise_date="2026-12-04", notes="salary on Friday")  # fmt: skip
    held = await _decision(api, case, "2026-12-02T10:00:00+08:00")
    assert "promise.pending" in _rules(held, point, "voice")
    broken = await _decision(api, case, "2026-12-08T10:00:00+08:00")
    assert "promise.pending" not in _rules(broken, point, "voice")


async def test_timeline_lists_everything_in_order_with_the_latest_summary(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api, cn_case())
    await _outcome(api, case, result="no_answer", at="2026-11-28T02:00:00+00:00")
    await _outcome(api, case, result="callback_requested", at="2026-11-30T02:00:00+00:00",
                   callback_at="2026-12-02T03:00:00+00:00", notes="call after lunch")  # fmt: skip
    r = await api.client.get(f"/v1/cases/{case['id']}/timeline", headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    body = r.json()
    kinds = [e["kind"] for e in body["entries"]]
    assert {"strategy_version", "attempt", "outcome"} <= set(kinds)
    stamps = [e["at"] for e in body["entries"]]
    assert stamps == sorted(stamps)
    attempts = [e for e in body["entries"] if e["kind"] == "attempt"]
    assert [a["result"] for a in attempts] == ["no_answer", "callback_requested"]
    summary = body["latest_summary"]
    assert (summary["result"], summary["notes"]) == ("callback_requested", "call after lunch")
    assert summary["callback_at"].startswith("2026-12-02T03:00")
    denied = await api.client.get(
        f"/v1/cases/{case['id']}/timeline", headers=api.auth(Role.APPROVER)
    )
    assert denied.status_code == 403


async def test_payments_lower_the_balance_and_a_paid_off_case_is_settled(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api, cn_case())
    amount = float(case["amount"])
    pay = f"/v1/cases/{case['id']}/payments"
    h = api.auth(Role.SERVICE)
    first = round(amount / 4, 2)
    r = await api.client.post(pay, json={"at": AT["at"], "amount": f"{first:.2f}"}, headers=h)
    assert r.status_code == 201, r.text
    stored = (await api.client.get(f"/v1/cases/{case['id']}", headers=h)).json()
    assert float(stored["balance"]) == round(amount - first, 2)
    assert not any(
        r["rule"] == "case.settled" for r in (await _decision(api, case))["case_reasons"]
    )
    # More than what is left: the balance stops at zero and the engine calls the case settled.
    r = await api.client.post(pay, json={"at": AT["at"], "amount": f"{amount:.2f}"}, headers=h)
    assert r.status_code == 201, r.text
    stored = (await api.client.get(f"/v1/cases/{case['id']}", headers=h)).json()
    assert float(stored["balance"]) == 0
    settled = await _decision(api, case)
    assert not settled["allowed"]
    assert "case.settled" in {r["rule"] for r in settled["case_reasons"]}


async def test_a_payment_that_is_not_positive_is_refused_with_the_field(api: Api) -> None:
    case = await _case(api, cn_case())
    r = await api.client.post(
        f"/v1/cases/{case['id']}/payments",
        json={"at": AT["at"], "amount": "0"},
        headers=api.auth(Role.SERVICE),
    )
    assert r.status_code == 422
    assert "amount" in r.text
