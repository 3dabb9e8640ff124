"""The desk over HTTP: the agent's next preview case and its decision, starting and
skipping it (a skip's reason on the timeline and in the audit), supervisors assigning
agents to campaigns, and the browser endpoint's Voice SDK token."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from dialer.api.deps import settings_dependency
from dialer.core.auth import Role
from dialer.dispatch import planner
from tests.dialer.api.test_decisions_api import _activate
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api

AGENT = "agent-1"  # the name of the `agent` key the api fixture issues


async def _ready(api: Api, endpoint: str = f"client:{AGENT}") -> None:
    h = api.auth(Role.AGENT)
    r = await api.client.put("/v1/agents/me/endpoint", json={"endpoint": endpoint}, headers=h)
    assert r.status_code == 200, r.text
    r = await api.client.put("/v1/agents/me/state", json={"state": "available"}, headers=h)
    assert r.status_code == 200, r.text


async def _preview_campaign(api: Api, cases: int = 2) -> str:
    """A running preview campaign planned a minute ago: its calls are due now."""
    await _activate(api, "cn-loans", "consumer-loan")
    for i in range(cases):
        r = await api.client.post(
            "/v1/cases", json=cn_case(f"CN-{i}"), headers=api.auth(Role.SERVICE)
        )
        assert r.status_code == 201, r.text
    h = api.auth(Role.SUPERVISOR)
    body = {
        "name": "desk",
        "portfolio": "cn-loans",
        "channels": ["voice"],
        "window": "09:00-11:30",
        "pacing_cps": 100,
        "mode": "preview",
    }
    r = await api.client.post("/v1/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    cid = str(r.json()["id"])
    r = await api.client.post(f"/v1/campaigns/{cid}/start", headers=h)
    assert r.status_code == 200, r.text
    maker = api.app.state.sessionmaker
    await planner.plan_campaign(maker, uuid.UUID(cid), lambda: NOW - timedelta(minutes=1))
    return cid


async def _next(api: Api) -> dict[str, Any]:
    r = await api.client.get("/v1/agents/me/preview", headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_desk_shows_the_next_preview_case_and_its_decision(api: Api) -> None:
    await _ready(api)
    assert (await _next(api))["case"] is None  # no preview campaign yet
    await _preview_campaign(api)
    case = (await _next(api))["case"]
    assert case["call"]["party"] == {"name": "Wang Fang", "role": "debtor"}
    assert case["call"]["allowed_now"] is True and case["call"]["disclosure"] == "full"
    assert case["call"]["window_start"] and case["call"]["window_end"]
    assert case["debt"]["currency"] == "CNY"
    # what may be said to whom: the debtor in full, never the debt to a third party
    roles = {(s["role"], s["disclosure"]) for s in case["may_say"]}
    assert ("debtor", "full") in roles
    assert all(s["disclosure"] != "full" for s in case["may_say"] if s["role"] == "third_party")
    assert case["decision"]["allowed"] and case["decision"]["tier"] == case["tier"]


async def test_an_agent_starts_the_offered_call_once_and_only_when_available(api: Api) -> None:
    await _preview_campaign(api)
    h = api.auth(Role.AGENT)
    r = await api.client.put(
        "/v1/agents/me/endpoint", json={"endpoint": f"client:{AGENT}"}, headers=h
    )
    case = (await _next(api))["case"]
    start = {"attempt_id": case["attempt_id"]}
    r = await api.client.post("/v1/agents/me/preview/start", json=start, headers=h)
    assert r.status_code == 409 and "available" in r.json()["error"]["message"], r.text
    await _ready(api)
    r = await api.client.post("/v1/agents/me/preview/start", json=start, headers=h)
    assert r.status_code == 200, r.text
    me = (await api.client.get("/v1/agents/me", headers=h)).json()
    assert (me["state"], me["attempt_id"]) == ("reserved", case["attempt_id"])
    r = await api.client.post("/v1/agents/me/preview/start", json=start, headers=h)
    assert r.status_code == 409, r.text  # taken: by this agent, once
    r = await api.client.post(
        "/v1/agents/me/preview/start", json={"attempt_id": str(uuid.uuid4())}, headers=h
    )
    assert r.status_code == 404, r.text


async def test_a_skip_needs_a_reason_and_lands_on_the_timeline_and_the_audit(api: Api) -> None:
    await _ready(api)
    await _preview_campaign(api)
    case = (await _next(api))["case"]
    h = api.auth(Role.AGENT)
    r = await api.client.post(
        "/v1/agents/me/preview/skip", json={"attempt_id": case["attempt_id"]}, headers=h
    )
    assert r.status_code == 422 and "reason" in r.text
    skip = {"attempt_id": case["attempt_id"], "reason": "debtor in hospital, per last call"}
    r = await api.client.post("/v1/agents/me/preview/skip", json=skip, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert (await _next(api))["case"]["attempt_id"] != case["attempt_id"]  # the next one
    timeline = await api.client.get(
        f"/v1/cases/{case['case_id']}/timeline", headers=api.auth(Role.SUPERVISOR)
    )
    skipped = [e for e in timeline.json()["entries"] if e["kind"] == "preview_skipped"]
    assert [(e["reason"], e["agent"]) for e in skipped] == [(skip["reason"], AGENT)]
    attempt = next(e for e in timeline.json()["entries"] if e.get("id") == case["attempt_id"])
    assert (attempt["state"], attempt["error_code"]) == ("cancelled", "preview_skipped")
    audit = await api.client.get(
        "/v1/audit", params={"entity": "case"}, headers=api.auth(Role.SUPERVISOR)
    )
    [entry] = [e for e in audit.json()["items"] if e["action"] == "case.preview.skip"]
    assert entry["actor"] == f"agent:{AGENT}" and entry["detail"]["reason"] == skip["reason"]


async def test_a_supervisor_assigns_agents_to_a_campaign(api: Api) -> None:
    cid = await _preview_campaign(api, cases=1)
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.get(f"/v1/campaigns/{cid}/agents", headers=h)
    assert r.status_code == 200 and r.json()["agents"] == []
    r = await api.client.put(
        f"/v1/campaigns/{cid}/agents", json={"agents": [AGENT, "nobody"]}, headers=h
    )
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["agents"]
    assert "nobody" in r.json()["error"]["fields"][0]["reason"]
    r = await api.client.put(f"/v1/campaigns/{cid}/agents", json={"agents": [AGENT]}, headers=h)
    assert r.status_code == 200, r.text
    assert [a["name"] for a in r.json()["agents"]] == [AGENT]
    r = await api.client.put(f"/v1/campaigns/{uuid.uuid4()}/agents", json={"agents": []}, headers=h)
    assert r.status_code == 404


TOKEN_SETTINGS = {
    "twilio_account_sid": "AC" + "1" * 32,
    "twilio_api_key_sid": "SK" + "2" * 32,
    "twilio_api_key_secret": SecretStr("not-a-real-api-key-secret-0123456"),
    "twilio_twiml_app_sid": "AP" + "3" * 32,
    "voice_token_ttl_seconds": 900,
}


def _configure(api: Api, **changes: Any) -> None:
    settings = api.settings.model_copy(update={**TOKEN_SETTINGS, **changes})

    async def configured() -> Any:
        return settings

    api.app.dependency_overrides[settings_dependency] = configured


async def test_without_an_api_key_the_token_is_503_naming_the_settings(api: Api) -> None:
    await _ready(api)
    r = await api.client.post("/v1/agents/me/token", headers=api.auth(Role.AGENT))
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "not_configured"
    assert "DIALER_TWILIO_API_KEY_SID" in error["message"]
    _configure(api, twilio_twiml_app_sid="")
    r = await api.client.post("/v1/agents/me/token", headers=api.auth(Role.AGENT))
    assert r.status_code == 503 and r.json()["error"]["missing_settings"] == [
        "DIALER_TWILIO_TWIML_APP_SID"
    ]


async def test_the_token_is_a_voice_grant_for_the_agents_client_identity(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    _configure(api)
    h = api.auth(Role.AGENT)
    r = await api.client.put(
        f"/v1/agents/{AGENT}/endpoint",
        json={"endpoint": "+8613800138000"},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 200, r.text
    r = await api.client.post("/v1/agents/me/token", headers=h)
    assert r.status_code == 409 and "client:" in r.json()["error"]["message"]
    await _ready(api)
    caplog.set_level(logging.DEBUG)
    r = await api.client.post("/v1/agents/me/token", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    secret = TOKEN_SETTINGS["twilio_api_key_secret"].get_secret_value()
    claims = jwt.decode(body["token"], secret, algorithms=["HS256"], options={"verify_exp": False})
    header = jwt.get_unverified_header(body["token"])
    assert header["cty"] == "twilio-fpa;v=1"
    assert claims["iss"] == TOKEN_SETTINGS["twilio_api_key_sid"]
    assert claims["sub"] == TOKEN_SETTINGS["twilio_account_sid"]
    assert claims["grants"]["identity"] == AGENT == body["identity"]
    assert claims["grants"]["voice"] == {
        "incoming": {"allow": True},
        "outgoing": {"application_sid": TOKEN_SETTINGS["twilio_twiml_app_sid"]},
    }
    assert claims["nbf"] == int(NOW.timestamp()) and claims["exp"] - claims["nbf"] == 900
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["token"], "another-secret-of-32-characters!", algorithms=["HS256"])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged and body["token"] not in logged
