from __future__ import annotations

import copy
from typing import Any

from dialer.core.auth import Role
from strategy.presets import load_preset
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


def preset(name: str = "consumer-loan") -> dict[str, Any]:
    return load_preset(name).model_dump(mode="json")


async def _create(api: Api, document: dict[str, Any], **extra: Any) -> Any:
    return await api.client.post(
        "/v1/strategies",
        json={"portfolio": "cn-loans", "document": document, **extra},
        headers=api.auth(Role.SUPERVISOR),
    )


async def _active(api: Api) -> dict[str, Any]:
    r = await _create(api, preset(), teams={"early": "team-early", "mid": "team-mid"})
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/strategies/{r.json()['id']}/activate", headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _with_mid_sms_cap(document: dict[str, Any], limit: int) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    mid = next(t for t in doc["tiers"] if t["id"] == "mid")
    for cap in mid["caps"]:
        if cap["scope"] == "case" and cap.get("channels") == ["sms"]:
            cap["limit"] = limit
    return doc


async def test_create_numbers_versions_per_name(api: Api) -> None:
    first = await _create(api, preset())
    second = await _create(api, preset())
    assert first.status_code == second.status_code == 201
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["status"] == "draft"


async def test_strategy_wider_than_profile_is_rejected_listing_every_clause(api: Api) -> None:
    doc = preset()
    doc["profile"] = "us-consumer"
    r = await api.client.post(
        "/v1/strategies",
        json={"portfolio": "us-loans", "document": doc},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "strategy_rejected"
    clauses = {v["clause"] for v in error["violations"]}
    assert {"us.call_frequency", "us.call_after_conversation"} <= clauses
    assert all(v["source"] and v["path"] for v in error["violations"])
    assert len(error["fields"]) == len(error["violations"])


async def test_schema_error_in_document_is_422_naming_the_path(api: Api) -> None:
    doc = preset()
    doc["tiers"][0]["caps"] = [{"scope": "case", "limit": -1, "local_days": 1}]
    r = await _create(api, doc)
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "document.tiers.0.caps.0.limit" or r.json()[
        "error"
    ]["fields"][0]["field"].startswith("document.tiers[0].caps")


async def test_profile_mismatch_with_portfolio_is_rejected(api: Api) -> None:
    r = await api.client.post(
        "/v1/strategies",
        json={"portfolio": "cn-loans", "document": preset("b2b-receivables")},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 422
    assert "profile.mismatch" in {v["clause"] for v in r.json()["error"]["violations"]}


async def test_teams_must_name_tiers_of_the_document(api: Api) -> None:
    r = await _create(api, preset(), teams={"nonsense": "team-x"})
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "teams.nonsense"


async def test_validate_endpoints(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    ok = await api.client.post(
        "/v1/strategies/validate", json={"portfolio": "cn-loans", "document": preset()}, headers=h
    )
    assert ok.json() == {"valid": True, "profile": "cn-consumer", "violations": []}
    bad = await api.client.post(
        "/v1/strategies/validate",
        json={"portfolio": "b2b", "document": preset()},
        headers=h,
    )
    assert bad.status_code == 422
    created = (await _create(api, preset())).json()
    stored = await api.client.post(f"/v1/strategies/{created['id']}/validate", headers=h)
    assert stored.status_code == 200 and stored.json()["valid"] is True


async def test_diff_lists_the_changed_cap(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    v1 = (await _create(api, preset())).json()
    v2 = (await _create(api, _with_mid_sms_cap(preset(), 2))).json()
    r = await api.client.get(
        f"/v1/strategies/{v2['id']}/diff", params={"against": v1["id"]}, headers=h
    )
    assert r.status_code == 200, r.text
    changes = r.json()["changes"]
    assert [(c["path"], c["before"], c["after"]) for c in changes] == [
        ("document.tiers.mid.caps[3].limit", 1, 2)
    ]


async def test_activate_then_rollback_keeps_one_active_and_audits(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    v1 = await _active(api)
    v2 = (await _create(api, _with_mid_sms_cap(preset(), 0))).json()
    r = await api.client.post(f"/v1/strategies/{v2['id']}/activate", headers=h)
    assert r.json()["status"] == "active"
    listed = (
        await api.client.get("/v1/strategies", params={"portfolio": "cn-loans"}, headers=h)
    ).json()["items"]
    assert [(s["version"], s["status"]) for s in listed] == [(1, "retired"), (2, "active")]
    again = await api.client.post(f"/v1/strategies/{v2['id']}/activate", headers=h)
    assert again.status_code == 409
    r = await api.client.post(f"/v1/strategies/{v1['id']}/rollback", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "active"
    portfolio = (await api.client.get("/v1/portfolios/cn-loans", headers=h)).json()
    assert portfolio["active_strategy_id"] == v1["id"]
    audit = (await api.client.get("/v1/audit", params={"entity": "strategy"}, headers=h)).json()[
        "items"
    ]
    assert [e["action"] for e in audit] == [
        "strategy.create", "strategy.activate", "strategy.create", "strategy.activate",
        "strategy.rollback",
    ]  # fmt: skip
    assert all(e["actor"] == "supervisor:supervisor-1" and e["after_digest"] for e in audit)


async def test_simulate_reports_tiers_and_per_case_changes(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    await _active(api)
    for i, due in enumerate(["2026-11-20", "2026-11-25", "2026-11-29"]):
        r = await api.client.post(
            "/v1/cases", json=cn_case(f"S-{i}", due_date=due), headers=api.auth(Role.SERVICE)
        )
        assert r.status_code == 201
    draft = (await _create(api, _with_mid_sms_cap(preset(), 0))).json()
    r = await api.client.post(
        f"/v1/strategies/{draft['id']}/simulate",
        json={"at": "2026-12-01T02:00:00+00:00", "limit": 1},
        headers=h,
    )
    assert r.status_code == 200, r.text
    sim = r.json()
    assert sim["cases"] == 3
    assert sim["tiers_active"] == sim["tiers_draft"]
    assert sum(sim["tiers_draft"].values()) == 3
    assert sim["changed_cases"] >= 1
    assert sim["truncated"] == (sim["changed_cases"] > 1)
    change = sim["changes"][0]
    assert change["tier_after"] == "mid"
    assert all(c["candidate"].endswith("/sms") for c in change["newly_refused"])
    assert change["newly_allowed"] == []


async def test_supervisor_cannot_change_a_portfolio_profile(api: Api) -> None:
    r = await api.client.put(
        "/v1/portfolios/cn-loans/profile",
        json={"profile": "commercial"},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 403
    r = await api.client.put(
        "/v1/portfolios/cn-loans/profile",
        json={"profile": "us-consumer", "reason": "the book was sold to a US servicer"},
        headers=api.auth(Role.ADMIN),
    )
    assert r.status_code == 200 and r.json()["profile"] == "us-consumer"


async def test_a_profile_that_does_not_tighten_the_current_one_needs_a_reason(api: Api) -> None:
    # cn-consumer -> commercial would lift the 22:00-08:00 ban and the third-party rules
    # for every case of the portfolio at once: not without a reason, which is audited.
    admin = api.auth(Role.ADMIN)
    url = "/v1/portfolios/cn-loans/profile"
    r = await api.client.put(url, json={"profile": "commercial"}, headers=admin)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["reason"]
    blank = await api.client.put(url, json={"profile": "commercial", "reason": " "}, headers=admin)
    assert blank.status_code == 422, blank.text
    got = await api.client.get("/v1/portfolios/cn-loans", headers=admin)
    assert got.json()["profile"] == "cn-consumer"
    reason = "the book is business receivables, misfiled"
    r = await api.client.put(url, json={"profile": "commercial", "reason": reason}, headers=admin)
    assert r.status_code == 200 and r.json()["profile"] == "commercial"
    audit = await api.client.get("/v1/audit", params={"entity": "portfolio"}, headers=admin)
    [changed] = [e for e in audit.json()["items"] if e["action"] == "portfolio.set_profile"]
    assert changed["detail"] == {
        "from": "cn-consumer", "to": "commercial", "loosens": True, "reason": reason,
    }  # fmt: skip


async def test_a_profile_that_tightens_the_current_one_needs_no_reason(api: Api) -> None:
    admin = api.auth(Role.ADMIN)
    body = {"name": "us-tighten", "profile": "us-consumer", "country": "US"}
    assert (await api.client.post("/v1/portfolios", json=body, headers=admin)).status_code == 201
    url = "/v1/portfolios/us-tighten/profile"
    r = await api.client.put(url, json={"profile": "us-consumer-ma"}, headers=admin)
    assert r.status_code == 200 and r.json()["profile"] == "us-consumer-ma"
    back = await api.client.put(url, json={"profile": "us-consumer"}, headers=admin)
    assert back.status_code == 422, back.text  # lifting the Massachusetts overlay: say why


def test_diff_ignores_the_order_of_sets_but_not_of_lists() -> None:
    from dialer.services.strategies import diff_values

    before = {"channels": ["sms", "voice"], "tiers": [{"id": "a", "limit": 1}]}
    after = {"channels": ["voice", "sms"], "tiers": [{"id": "a", "limit": 2}]}
    assert diff_values(before, after) == [{"path": "tiers.a.limit", "before": 1, "after": 2}]
