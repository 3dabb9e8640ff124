"""The desk's holes an outside review found (issue 18), closed: where an agent's calls
ring, which preview case it may start, what a held call does when the agent skips or
leaves, who has a "me" agent, and the bodies and campaigns the agent routes refuse."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dialer.core.auth import Role
from dialer.db.models import CampaignRow
from tests.dialer.api.test_desk_preview_api import AGENT, _next, _preview_campaign, _ready
from tests.dialer.support import Api


def _fields(r: Any) -> list[str]:
    return [f["field"] for f in r.json()["error"]["fields"]]


@pytest.mark.parametrize(
    "endpoint",
    ["+8613800138000", "sip:x@evil.example;transport=tcp", "client:someone-else"],
)
async def test_an_agent_sets_only_its_own_browser_identity(api: Api, endpoint: str) -> None:
    h = api.auth(Role.AGENT)
    r = await api.client.put("/v1/agents/me/endpoint", json={"endpoint": endpoint}, headers=h)
    assert r.status_code == 422 and _fields(r) == ["endpoint"], r.text
    me = (await api.client.get("/v1/agents/me", headers=h)).json()
    assert me["endpoint"] is None
    r = await api.client.put(
        "/v1/agents/me/endpoint", json={"endpoint": f"client:{AGENT}"}, headers=h
    )
    assert r.status_code == 200 and r.json()["endpoint"] == f"client:{AGENT}", r.text


async def test_a_supervisor_sets_a_phone_or_sip_endpoint_for_an_agent_audited(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    sip = "sip:agent1@pbx.example.com"
    r = await api.client.put(f"/v1/agents/{AGENT}/endpoint", json={"endpoint": sip}, headers=h)
    assert r.status_code == 200 and r.json()["endpoint"] == sip, r.text
    r = await api.client.put(
        f"/v1/agents/{AGENT}/endpoint", json={"endpoint": "client:someone-else"}, headers=h
    )
    assert r.status_code == 422 and _fields(r) == ["endpoint"], r.text  # the same one check
    r = await api.client.put(
        "/v1/agents/nobody/endpoint", json={"endpoint": "+8613800138000"}, headers=h
    )
    assert r.status_code == 404, r.text
    r = await api.client.put(  # a supervisor key has no agent, so it cannot be given calls
        "/v1/agents/supervisor-1/endpoint", json={"endpoint": "+8613800138000"}, headers=h
    )
    assert r.status_code == 404, r.text
    audit = await api.client.get("/v1/audit", params={"entity": "agent"}, headers=h)
    [entry] = [e for e in audit.json()["items"] if e["action"] == "agent.endpoint"]
    assert entry["actor"] == "supervisor:supervisor-1"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPERVISOR])
async def test_only_an_agent_key_has_a_me_agent(api: Api, role: Role) -> None:
    for method, path in [("GET", "/v1/agents/me"), ("GET", "/v1/agents/me/preview")]:
        r = await api.client.request(method, path, headers=api.auth(role))
        assert r.status_code == 403, r.text
        assert "only an agent key has a desk agent" in r.json()["error"]["message"]
    r = await api.client.get("/v1/agents", headers=api.auth(Role.SUPERVISOR))
    assert r.json()["items"] == []  # no agent named after the caller's key on the floor


async def test_start_takes_only_the_case_the_desk_offers(api: Api) -> None:
    await _ready(api)
    await _preview_campaign(api, cases=2)
    offered = (await _next(api))["case"]["attempt_id"]
    other = await _other_due(api, offered)
    h = api.auth(Role.AGENT)
    r = await api.client.post("/v1/agents/me/preview/start", json={"attempt_id": other}, headers=h)
    assert r.status_code == 409 and _fields(r) == ["attempt_id"], r.text
    assert offered in r.json()["error"]["message"]
    r = await api.client.post("/v1/agents/me/preview/skip", json=_skip(other), headers=h)
    assert r.status_code == 409 and _fields(r) == ["attempt_id"], r.text
    r = await api.client.post(
        "/v1/agents/me/preview/start", json={"attempt_id": offered}, headers=h
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("leave", ["offline", "disconnect"])
async def test_a_held_call_blocks_skips_and_is_let_go_when_the_agent_leaves(
    api: Api, leave: str
) -> None:
    await _ready(api)
    await _preview_campaign(api, cases=2)
    started = (await _next(api))["case"]["attempt_id"]
    h = api.auth(Role.AGENT)
    r = await api.client.post(
        "/v1/agents/me/preview/start", json={"attempt_id": started}, headers=h
    )
    assert r.status_code == 200, r.text
    waiting = (await _next(api))["case"]
    assert waiting is not None and waiting["attempt_id"] != started
    r = await api.client.post(
        "/v1/agents/me/preview/skip", json=_skip(waiting["attempt_id"]), headers=h
    )
    assert r.status_code == 409 and _fields(r) == ["attempt_id"], r.text
    assert "holds a call" in r.json()["error"]["message"]
    if leave == "offline":
        r = await api.client.put("/v1/agents/me/state", json={"state": "offline"}, headers=h)
    else:
        r = await api.client.post("/v1/agents/me/disconnect", headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["attempt_id"]) == ("offline", None)
    await _ready(api)
    assert (await _next(api))["case"]["attempt_id"] == started  # offered again, not lost


async def test_disconnect_refuses_a_body_with_anything_in_it(api: Api) -> None:
    h = api.auth(Role.AGENT)
    r = await api.client.post("/v1/agents/me/disconnect", json={"why": "x"}, headers=h)
    assert r.status_code == 422 and _fields(r) == ["why"], r.text
    r = await api.client.post(
        "/v1/agents/me/disconnect",
        content=b"\x00garbage",
        headers={**h, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    r = await api.client.post("/v1/agents/me/disconnect", json={}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "offline", r.text


@pytest.mark.parametrize(("change", "field"), [("status", "status"), ("mode", "mode")])
async def test_agents_are_not_assigned_to_an_ended_or_ivr_campaign(
    api: Api, change: str, field: str
) -> None:
    cid = await _preview_campaign(api, cases=1)
    async with api.app.state.sessionmaker() as session:
        row = await session.get(CampaignRow, uuid.UUID(cid))
        assert row is not None
        if change == "status":
            row.status = "done"
        else:
            row.mode = "ivr"
        await session.commit()
    r = await api.client.put(
        f"/v1/campaigns/{cid}/agents", json={"agents": [AGENT]}, headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 409 and _fields(r) == [field], r.text


def _skip(attempt_id: str) -> dict[str, str]:
    return {"attempt_id": attempt_id, "reason": "not this one, per the last call"}


async def _other_due(api: Api, offered: str) -> str:
    """Another waiting, due attempt of the same preview campaign (not the one offered)."""
    r = await api.client.get("/v1/attempts", headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200, r.text
    ids = [a["id"] for a in r.json()["items"] if a["id"] != offered and a["channel"] == "voice"]
    assert ids, r.text
    return str(ids[0])
