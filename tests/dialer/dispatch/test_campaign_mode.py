"""A campaign's dialing mode over HTTP: ivr by default, agent modes voice only."""

from __future__ import annotations

from typing import Any

from dialer.core.auth import Role
from tests.dialer.support import Api

BODY: dict[str, Any] = {
    "name": "morning",
    "portfolio": "cn-loans",
    "channels": ["voice"],
    "window": "09:00-11:30",
    "pacing_cps": 5,
}


async def test_a_campaign_is_ivr_unless_told_and_keeps_its_mode(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.post(
        "/v1/campaigns", json=BODY | {"channels": ["voice", "sms"]}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["mode"] == "ivr" and r.json()["wrap_up_limit_s"] is None
    body = BODY | {"mode": "predictive", "wrap_up_limit_s": 90}
    r = await api.client.post("/v1/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await api.client.get(f"/v1/campaigns/{cid}", headers=h)
    assert r.json()["mode"] == "predictive" and r.json()["wrap_up_limit_s"] == 90


async def test_an_agent_mode_with_texts_is_refused_naming_channels(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    body = BODY | {"mode": "progressive", "channels": ["voice", "sms"]}
    r = await api.client.post("/v1/campaigns", json=body, headers=h)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["channels"], error
    assert "sms" in error["fields"][0]["reason"]


async def test_an_unknown_mode_and_a_zero_wrap_up_limit_are_refused(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.post("/v1/campaigns", json=BODY | {"mode": "robot"}, headers=h)
    assert r.status_code == 422 and "mode" in r.text
    r = await api.client.post("/v1/campaigns", json=BODY | {"wrap_up_limit_s": 0}, headers=h)
    assert r.status_code == 422 and "wrap_up_limit_s" in r.text
