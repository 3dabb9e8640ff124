from __future__ import annotations

from typing import Any

from dialer.core.auth import Role
from strategy.presets import load_preset
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


async def _activate(api: Api, portfolio: str, preset: str) -> dict[str, Any]:
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.post(
        "/v1/strategies/from-preset", json={"portfolio": portfolio, "preset": preset}, headers=h
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _case(api: Api, **overrides: Any) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/cases", json=cn_case(**overrides), headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_decision_for_a_stored_case_lists_allowed_and_refused(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api)
    r = await api.client.get(
        f"/v1/cases/{case['id']}/decision",
        params={"at": "2026-12-01T10:00:00+08:00"},
        headers=api.auth(Role.AGENT),
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["tier"] == "mid" and d["days_past_due"] == 11
    assert d["profile"] == "cn-consumer" and d["strategy_version"] == 1
    assert d["allowed"], "the debtor may be called on a Tuesday morning"
    assert all(a["candidate"]["party_role"] == "debtor" for a in d["allowed"])
    third = [r for r in d["refused"] if r["candidate"]["party_role"] == "third_party"]
    assert third and all(reason["rule"] for reason in third[0]["reasons"])
    assert d["at"] == "2026-12-01T10:00:00+08:00"


async def test_decision_at_night_names_the_window_and_the_next_allowed_time(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api)
    r = await api.client.get(
        f"/v1/cases/{case['id']}/decision",
        params={"at": "2026-12-01T23:00:00+08:00"},
        headers=api.auth(Role.AGENT),
    )
    d = r.json()
    assert d["allowed"] == []
    debtor = [x for x in d["refused"] if x["candidate"]["party_role"] == "debtor"]
    assert any(reason["rule"].startswith("window") for reason in debtor[0]["reasons"])
    assert debtor[0]["next_allowed"] is not None


async def test_decision_defaults_to_the_server_clock(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api)
    r = await api.client.get(f"/v1/cases/{case['id']}/decision", headers=api.auth(Role.AGENT))
    assert r.json()["at"] == "2026-12-01T02:00:00Z"


async def test_decision_without_an_active_strategy_is_409(api: Api) -> None:
    case = await _case(api)
    r = await api.client.get(f"/v1/cases/{case['id']}/decision", headers=api.auth(Role.AGENT))
    assert r.status_code == 409
    assert "no active strategy" in r.json()["error"]["message"]


async def test_decision_with_naive_at_is_422(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    case = await _case(api)
    r = await api.client.get(
        f"/v1/cases/{case['id']}/decision",
        params={"at": "2026-12-01T10:00:00"},
        headers=api.auth(Role.AGENT),
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "at"


async def test_preview_stores_nothing_and_sees_the_given_history(api: Api) -> None:
    doc = cn_case()
    body = {
        "case": doc,
        "at": "2026-12-01T10:00:00+08:00",
        "strategy": load_preset("consumer-loan").model_dump(mode="json"),
        "profile": "cn-consumer",
        "history": {
            "attempts": [
                {
                    "at": f"2026-12-01T0{h}:00:00+08:00",
                    "channel": "voice",
                    "party_id": "debtor",
                    "contact_point_id": "cp-0-0",
                    "result": "right_party",
                }
                for h in (8, 9)
            ]
        },
    }
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["case_id"] == "CN-1" and d["tier"] == "mid"
    listed = await api.client.get("/v1/cases", headers=api.auth(Role.SUPERVISOR))
    assert listed.json()["items"] == []


async def test_preview_with_stored_portfolio_strategy(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    body = {"case": cn_case(), "at": "2026-12-01T10:00:00+08:00", "portfolio": "cn-loans"}
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    assert r.json()["strategy"] == "consumer-loan"


async def test_preview_invalid_phone_names_the_field(api: Api) -> None:
    doc = cn_case()
    doc["parties"][1]["contact_points"][0]["value"] = "0"
    body = {"case": doc, "at": "2026-12-01T10:00:00+08:00", "portfolio": "cn-loans",
            "strategy": load_preset("consumer-loan").model_dump(mode="json")}  # fmt: skip
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.AGENT))
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "case.parties[1].contact_points[0].value"


async def test_preview_needs_a_strategy_source(api: Api) -> None:
    body = {"case": cn_case(), "at": "2026-12-01T10:00:00+08:00"}
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.AGENT))
    assert r.status_code == 422


async def test_finish_on_old_keeps_worked_cases_on_their_version(api: Api) -> None:
    """A case with attempts stays on v1 after v2 (finish_on_old) is activated."""
    v1 = await _activate(api, "cn-loans", "consumer-loan")
    worked = await _case(api, external_ref="W-1")
    fresh = await _case(api, external_ref="F-1")
    r = await api.client.post(
        f"/v1/cases/{worked['id']}/outcomes",
        json={"contact_point_id": worked["parties"][0]["contact_points"][0]["id"],
              "channel": "voice", "result": "no_answer", "at": "2026-11-30T02:00:00+00:00"},
        headers=api.auth(Role.AGENT),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    v2 = await _activate(api, "cn-loans", "consumer-loan")
    assert v2["version"] == 2
    h = api.auth(Role.AGENT)
    assert (await api.client.get(f"/v1/cases/{worked['id']}", headers=h)).json()[
        "strategy_version_id"
    ] == v1["id"]
    d_worked = (await api.client.get(f"/v1/cases/{worked['id']}/decision", headers=h)).json()
    d_fresh = (await api.client.get(f"/v1/cases/{fresh['id']}/decision", headers=h)).json()
    assert (d_worked["strategy_version"], d_fresh["strategy_version"]) == (1, 2)


def _us_preview(profile: str | None, **extra: Any) -> dict[str, Any]:
    doc = {
        "external_ref": "US-9",
        "amount": "950.50",
        "currency": "USD",
        "due_date": "2026-11-10",
        "country": "US",
        "parties": [
            {
                "ref": "debtor",
                "role": "debtor",
                "name": "Jordan Miles",
                "contact_points": [
                    {"kind": "phone", "value": "+12125550199", "consent": ["voice", "sms"]}
                ],
            }
        ],
    }
    body: dict[str, Any] = {
        "case": doc,
        "at": "2026-12-01T11:00:00-05:00",
        "strategy": load_preset("us-consumer-loan").model_dump(mode="json"),
        **extra,
    }
    if profile is not None:
        body["profile"] = profile
    return body


async def test_preview_under_another_profile_is_the_admins_and_only_a_stricter_one(
    api: Api,
) -> None:
    """A us-consumer strategy: its own profile for anyone; the Massachusetts overlay
    (which tightens us-consumer) for an admin only; a looser or unrelated profile for
    nobody. Each refusal is 422 naming `profile`."""
    url = "/v1/decisions/preview"
    for role in (Role.AGENT, Role.SUPERVISOR, Role.ADMIN):
        r = await api.client.post(url, json=_us_preview("us-consumer"), headers=api.auth(role))
        assert r.status_code == 200, (role, r.text)
        assert r.json()["profile"] == "us-consumer"
    for role in (Role.AGENT, Role.SUPERVISOR):
        r = await api.client.post(url, json=_us_preview("us-consumer-ma"), headers=api.auth(role))
        assert r.status_code == 422, (role, r.text)
        assert [f["field"] for f in r.json()["error"]["fields"]] == ["profile"]
        assert "only an admin" in r.json()["error"]["fields"][0]["reason"]
    r = await api.client.post(url, json=_us_preview("us-consumer-ma"), headers=api.auth(Role.ADMIN))
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == "us-consumer-ma"
    for looser in ("commercial", "cn-consumer"):
        for role in (Role.ADMIN, Role.SUPERVISOR):
            r = await api.client.post(url, json=_us_preview(looser), headers=api.auth(role))
            assert r.status_code == 422, (looser, role, r.text)
            assert [f["field"] for f in r.json()["error"]["fields"]] == ["profile"]
    # the portfolio's own profile is the strategy's own here: no profile named, no question
    r = await api.client.post(
        url, json=_us_preview(None, portfolio="us-loans"), headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == "us-consumer"
    # a document written for the overlay may not be previewed under its looser parent
    ma = _us_preview("us-consumer")
    ma["strategy"]["profile"] = "us-consumer-ma"
    for role in (Role.ADMIN, Role.SUPERVISOR):
        r = await api.client.post(url, json=ma, headers=api.auth(role))
        assert r.status_code == 422, (role, r.text)
        assert [f["field"] for f in r.json()["error"]["fields"]] == ["profile"]


async def test_preview_takes_a_recorded_unreachability_and_checks_its_order(api: Api) -> None:
    """A what-if may state the debtor unreachable (as PUT /cases/{id}/unreachable records
    it); one that ends before it starts, or names no source, is 422 naming the field."""
    url = "/v1/decisions/preview"
    found = {"since": "2026-11-20T00:00:00Z", "until": "2026-12-10T00:00:00Z", "source": "skip"}
    body = _us_preview(None, recorded_unreachable=found)
    r = await api.client.post(url, json=body, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    for bad, field in (
        ({**found, "until": found["since"]}, "recorded_unreachable.until"),
        ({**found, "source": " "}, "recorded_unreachable.source"),
    ):
        r = await api.client.post(
            url, json=_us_preview(None, recorded_unreachable=bad), headers=api.auth(Role.AGENT)
        )
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["error"]["fields"]] == [field], r.text
