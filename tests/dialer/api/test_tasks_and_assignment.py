from __future__ import annotations

from typing import Any

from dialer.core.auth import Role
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


def b2b_case(ref: str, due: str) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "portfolio": "b2b",
        "amount": "250000.00",
        "currency": "CNY",
        "due_date": due,
        "stage": "payment",
        "stage_started_on": "2026-08-01",
        "parties": [
            {"ref": "customer", "role": "debtor", "name": "Donghai Logistics",
             "timezone": "Asia/Shanghai",
             "contact_points": [{"kind": "phone", "value": "+86 21 5550 1000"}]},
            {"ref": "finance", "role": "third_party", "name": "Ms. Chen",
             "title": "Finance Manager", "knows_of_debt": True,
             "contact_points": [{"kind": "email", "value": "finance@donghai.example.cn"}]},
        ],
    }  # fmt: skip


async def _setup(api: Api) -> dict[str, Any]:
    h = api.auth(Role.SUPERVISOR)
    from strategy.presets import load_preset

    teams = {"payment_overdue_month": "managers", "payment_overdue_three_months": "legal"}
    r = await api.client.post(
        "/v1/strategies",
        json={"portfolio": "b2b", "teams": teams,
              "document": load_preset("b2b-receivables").model_dump(mode="json")},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    await api.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    r = await api.client.post(
        "/v1/cases", json=b2b_case("AR-1", "2026-08-20"), headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _refresh(api: Api, at: str = "2026-12-01T02:00:00+00:00") -> dict[str, Any]:
    r = await api.client.post(
        "/v1/portfolios/b2b/assignments/refresh", json={"at": at}, headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_refresh_assigns_tier_team_and_creates_tasks_exactly_once(api: Api) -> None:
    case = await _setup(api)
    first = await _refresh(api)
    assert first["cases"] == 1 and first["tier_changed"] == 1 and first["reassigned"] == 1
    assert first["tasks_created"] >= 4
    again = await _refresh(api)
    assert again["tasks_created"] == 0 and again["tier_changed"] == 0
    stored = (await api.client.get(f"/v1/cases/{case['id']}", headers=api.auth(Role.AGENT))).json()
    assert (stored["tier"], stored["team"]) == ("payment_overdue_three_months", "legal")
    legal = await api.client.get(
        "/v1/cases", params={"team": "legal"}, headers=api.auth(Role.SUPERVISOR)
    )
    assert [c["id"] for c in legal.json()["items"]] == [case["id"]]


async def test_approval_is_required_before_an_account_lock_proceeds(api: Api) -> None:
    await _setup(api)
    await _refresh(api)
    tasks = (
        await api.client.get(
            "/v1/tasks", params={"requires_approval": "true"}, headers=api.auth(Role.APPROVER)
        )
    ).json()["items"]
    lock = next(t for t in tasks if t["action"] == "account_lock")
    early = await api.client.post(f"/v1/tasks/{lock['id']}/complete", headers=api.auth(Role.AGENT))
    assert early.status_code == 409
    assert "approval" in early.json()["error"]["message"]
    r = await api.client.post(
        f"/v1/tasks/{lock['id']}/approve", json={"note": "owner agreed"},
        headers=api.auth(Role.APPROVER),
    )  # fmt: skip
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["decided_by"]) == ("approved", "approver:approver-1")
    twice = await api.client.post(
        f"/v1/tasks/{lock['id']}/reject", json={}, headers=api.auth(Role.APPROVER)
    )
    assert twice.status_code == 409
    done = await api.client.post(f"/v1/tasks/{lock['id']}/complete", headers=api.auth(Role.AGENT))
    assert done.status_code == 200 and done.json()["status"] == "done"


async def test_rejected_task_never_proceeds_and_plain_tasks_need_no_approval(api: Api) -> None:
    await _setup(api)
    await _refresh(api)
    tasks = (await api.client.get("/v1/tasks", headers=api.auth(Role.SUPERVISOR))).json()["items"]
    letter = next(t for t in tasks if t["action"] == "lawyer_letter")
    visit = next(t for t in tasks if t["action"] == "field_visit")
    r = await api.client.post(
        f"/v1/tasks/{letter['id']}/reject", json={}, headers=api.auth(Role.APPROVER)
    )
    assert r.json()["status"] == "rejected"
    r = await api.client.post(f"/v1/tasks/{letter['id']}/complete", headers=api.auth(Role.AGENT))
    assert r.status_code == 409
    r = await api.client.post(
        f"/v1/tasks/{visit['id']}/approve", json={}, headers=api.auth(Role.APPROVER)
    )
    assert r.status_code == 409
    r = await api.client.post(f"/v1/tasks/{visit['id']}/complete", headers=api.auth(Role.AGENT))
    assert r.status_code == 200


async def test_unknown_task_is_404(api: Api) -> None:
    r = await api.client.post(
        "/v1/tasks/00000000-0000-0000-0000-000000000000/approve",
        json={},
        headers=api.auth(Role.APPROVER),
    )
    assert r.status_code == 404


async def test_refresh_without_active_strategy_is_409(api: Api) -> None:
    r = await api.client.post(
        "/v1/portfolios/cn-loans/assignments/refresh", json={}, headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 409


async def test_payment_recorded_by_service(api: Api) -> None:
    case = await _setup(api)
    r = await api.client.post(
        f"/v1/cases/{case['id']}/payments",
        json={"at": "2026-11-30T03:00:00+00:00", "amount": "1000.00"},
        headers=api.auth(Role.SERVICE),
    )
    assert r.status_code == 201 and r.json()["amount"] == "1000.00"


async def test_refresh_needs_no_body_and_decides_now(api: Api) -> None:
    await _setup(api)
    r = await api.client.post(
        "/v1/portfolios/b2b/assignments/refresh", headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 200, r.text
    assert r.json()["cases"] == 1
    # a body that is not an object is still refused, naming why
    r = await api.client.post(
        "/v1/portfolios/b2b/assignments/refresh", json={"at": 5}, headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 422, r.text


async def _assign(api: Api, case_id: str, body: dict[str, Any]) -> Any:
    return await api.client.put(
        f"/v1/cases/{case_id}/assignment", json=body, headers=api.auth(Role.SUPERVISOR)
    )


async def test_assignment_takes_a_team_of_the_governing_strategy_and_an_agent_key(
    api: Api,
) -> None:
    case = await _setup(api)
    r = await _assign(api, case["id"], {"team": "legal", "agent": "agent-1"})
    assert r.status_code == 200, r.text
    assert (r.json()["team"], r.json()["agent"]) == ("legal", "agent-1")


async def test_assignment_to_a_name_no_agent_key_holds_is_422_naming_agent(api: Api) -> None:
    case = await _setup(api)
    for name in ("nobody-such", "supervisor-1"):  # no key; a key, but not an agent's
        r = await _assign(api, case["id"], {"agent": name, "team": "legal"})
        assert r.status_code == 422, r.text
        [field] = r.json()["error"]["fields"]
        assert field["field"] == "agent" and name in field["reason"]
    stored = (await api.client.get(f"/v1/cases/{case['id']}", headers=api.auth(Role.AGENT))).json()
    assert (stored["team"], stored["agent"]) == (None, None)


async def test_assignment_to_a_team_no_strategy_names_is_422_naming_team(api: Api) -> None:
    case = await _setup(api)
    r = await _assign(api, case["id"], {"team": "x"})
    assert r.status_code == 422, r.text
    [field] = r.json()["error"]["fields"]
    assert field["field"] == "team" and "legal, managers" in field["reason"]
    # a portfolio with no strategy has no teams at all
    r = await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.SERVICE))
    r = await _assign(api, r.json()["id"], {"team": "early"})
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["team"]
