"""`GET /v1/dashboard/agents`: every agent's state and time in it (in its campaign's
portfolio zone, or none), and per running campaign its live answers and abandoned calls."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AttemptRow
from dialer.db.repositories import agents as agent_repo
from dialer.schemas.campaigns import CampaignIn
from dialer.services import campaigns
from tests.dialer.factories import cn_case
from tests.dialer.support import NOW, Api
from tests.e2e.test_dashboard_browser import CHROMIUM, _browser_or_skip

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
            for campaign, result, answered_by, abandoned_at in (
                (running.id, "right_party", "human", None),
                (running.id, "pending", "human", None),  # a person answered, not yet final
                (running.id, "right_party", None, NOW),  # no collector was free
                (running.id, "no_answer", None, None),
                (running.id, "voicemail", "machine_end_beep", None),
                (draft.id, "right_party", None, NOW),  # not running: not shown
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
                        abandoned_at=abandoned_at,
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


async def test_the_dashboard_shows_the_floor_in_a_browser(api: Api, tmp_path: Path) -> None:
    async_playwright = _browser_or_skip()
    ids = await floor(api)
    shots = Path(os.environ.get("DIALER_SCREENSHOTS", tmp_path))  # to look at them
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = await browser.new_context(
                timezone_id="America/New_York", viewport={"width": 1300, "height": 900}
            )
            page = await context.new_page()

            async def route(request_route, request) -> None:  # type: ignore[no-untyped-def]
                response = await api.client.request(
                    request.method,
                    request.url.replace("http://floor.test", ""),
                    headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                    content=request.post_data_buffer,
                )
                await request_route.fulfill(
                    status=response.status_code,
                    headers=dict(response.headers),
                    body=response.content,
                )

            await page.route("http://floor.test/**", route)
            await page.goto("http://floor.test/dashboard")
            await page.fill("#key", api.keys[Role.SUPERVISOR])
            await page.click("#connect")
            await page.wait_for_selector("#agents tr.agent")
            await page.wait_for_selector("#hours-svg")  # the campaign's charts, drawn too
            ana = await page.inner_text("#agents tr[data-agent=ana]")
            bo = await page.inner_text("#agents tr[data-agent=bo]")
            row = page.locator(f"#abandonment tr[data-campaign='{ids['running']}']")
            shown = {
                field: await row.locator(f"td[data-field={field}]").inner_text()
                for field in ("abandoned", "live_answered", "rate")
            }
            others = await page.locator("#abandonment tr.campaign").count()
            await page.screenshot(path=str(shots / "dashboard-floor.png"), full_page=True)
        finally:
            await browser.close()
    # ana: on a call for 1 min 35 s, since 09:58 in Shanghai (the campaign's portfolio)
    assert "on call" in ana and "1:35" in ana and "09:58" in ana and "morning" in ana, ana
    # bo: away for 1 h 2 min, with no campaign: since 19:58 in the browser's zone (New York)
    assert "away" in bo and "1:02:00" in bo and "19:58" in bo and "your zone" in bo, bo
    assert shown == {"abandoned": "1", "live_answered": "3", "rate": "33.3%"}
    assert others == 1  # the draft campaign is not running: not listed
