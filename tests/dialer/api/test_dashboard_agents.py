"""`GET /v1/dashboard/agents`: every agent's state and time in it (in its campaign's
portfolio zone, or none), and per running campaign its live answers and abandoned calls."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AttemptRow
from dialer.db.repositories import agents as agent_repo
from dialer.schemas.campaigns import CampaignIn
from dialer.services import campaigns
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api

PACE = {"window": "09:00-12:00", "pacing_cps": 1}


async def floor(api: Api) -> dict[str, Any]:
    """Two agents (one on a call for a running campaign), a running and a draft
    campaign, and attempts: right party, answered by a person, abandoned, no answer."""
    r = await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    case = r.json()
    party = case["parties"][0]
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    try:
        async with maker() as session:
            made = []
            for name in ("morning", "draft"):
                made.append(
                    await campaigns.create_campaign(
                        session,
                        CampaignIn.model_validate(
                            {"name": name, "portfolio": "cn-loans", "channels": ["voice"], **PACE}
                        ),
                        actor="test",
                        now=NOW,
                    )
                )
            running, draft = made
            await campaigns.transition(session, running.id, "running", actor="test", now=NOW)
            ana = await agent_repo.ensure(session, "ana", "on_call", NOW - timedelta(seconds=95))
            ana.campaign_id = running.id
            await agent_repo.ensure(session, "bo", "away", NOW - timedelta(hours=1, minutes=2))
            for campaign, result, answered_by in (
                (running.id, "right_party", "human"),
                (running.id, "pending", "human"),  # a person answered, not yet final
                (running.id, "abandoned", "human"),
                (running.id, "no_answer", None),
                (running.id, "voicemail", "machine_end_beep"),
                (draft.id, "abandoned", "human"),  # not running: not shown
            ):
                session.add(
                    AttemptRow(
                        id=uuid.uuid4(),
                        case_id=uuid.UUID(case["id"]),
                        party_id=uuid.UUID(party["id"]),
                        contact_point_id=uuid.UUID(party["contact_points"][0]["id"]),
                        channel="voice",
                        state="completed",
                        result=result,
                        answered_by=answered_by,
                        at=NOW,
                        campaign_id=campaign,
                    )
                )
            await session.commit()
            return {"running": str(running.id), "draft": str(draft.id)}
    finally:
        await engine.dispose()


async def test_a_supervisor_sees_agents_in_state_and_abandonment(api: Api) -> None:
    ids = await floor(api)
    r = await api.client.get("/v1/dashboard/agents", headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200, r.text
    body = r.json()
    agents = {a["name"]: a for a in body["agents"]}
    assert list(agents) == ["ana", "bo"]
    assert agents["ana"]["state"] == "on_call" and agents["ana"]["seconds_in_state"] == 95
    assert agents["ana"]["campaign_id"] == ids["running"]
    assert agents["ana"]["timezone"] == "Asia/Shanghai"  # the campaign's portfolio's
    assert agents["bo"]["state"] == "away" and agents["bo"]["seconds_in_state"] == 3720
    assert agents["bo"]["timezone"] is None  # no campaign: the browser's zone
    assert body["campaigns"] == [
        {
            "id": ids["running"],
            "name": "morning",
            "portfolio": "cn-loans",
            "timezone": "Asia/Shanghai",
            "live_answered": 3,
            "abandoned": 1,
            "abandonment_rate": 1 / 3,
        }
    ]


async def test_a_running_campaign_with_no_answers_has_no_rate_yet(api: Api) -> None:
    r = await api.client.post(
        "/v1/campaigns",
        json={"name": "quiet", "portfolio": "cn-loans", "channels": ["voice"], **PACE},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 201, r.text
    started = await api.client.post(
        f"/v1/campaigns/{r.json()['id']}/start", headers=api.auth(Role.SUPERVISOR)
    )
    assert started.status_code == 200, started.text
    body = (await api.client.get("/v1/dashboard/agents", headers=api.auth(Role.SUPERVISOR))).json()
    assert body["agents"] == []
    (quiet,) = body["campaigns"]
    assert (quiet["live_answered"], quiet["abandoned"], quiet["abandonment_rate"]) == (0, 0, None)


async def test_only_a_supervisor_sees_the_floor(api: Api) -> None:
    for role in (Role.AGENT, Role.SERVICE, Role.APPROVER):
        r = await api.client.get("/v1/dashboard/agents", headers=api.auth(role))
        assert r.status_code == 403, (role, r.text)
    assert (await api.client.get("/v1/dashboard/agents")).status_code == 401
