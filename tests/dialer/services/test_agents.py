"""Collectors at the desk: states through the API, one call per agent across workers,
wrap-up before the next call, and a desk that disconnects mid-call."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AgentRow, AuditRow, OutcomeRow
from dialer.dispatch.agents import send_away_overdue
from dialer.domain.agents import WRAP_UP_OVERDUE, AgentState
from dialer.services import agents
from tests.dialer.support import NOW, Api
from tests.dialer.twilio_forms import Hooks, configure


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


async def _ready(api: Api) -> None:
    auth = api.auth(Role.AGENT)
    r = await api.client.put(
        "/v1/agents/me/endpoint", json={"endpoint": "client:agent-1"}, headers=auth
    )
    assert r.status_code == 200, r.text
    r = await api.client.put("/v1/agents/me/state", json={"state": "available"}, headers=auth)
    assert r.status_code == 200, r.text


async def test_an_agent_sets_their_state_and_a_supervisor_sees_it(api: Api) -> None:
    auth = api.auth(Role.AGENT)
    r = await api.client.put("/v1/agents/me/state", json={"state": "available"}, headers=auth)
    assert (
        r.status_code == 409 and "endpoint" in r.json()["error"]["message"]
    )  # nowhere to ring yet
    await _ready(api)
    r = await api.client.get("/v1/agents", headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200
    [agent] = r.json()["items"]
    assert (agent["name"], agent["state"], agent["endpoint"]) == (
        "agent-1",
        "available",
        "client:agent-1",
    )
    assert (await api.client.get("/v1/agents", headers=auth)).status_code == 403


async def test_the_dialer_states_and_bad_endpoints_are_refused_naming_the_field(api: Api) -> None:
    auth = api.auth(Role.AGENT)
    r = await api.client.put("/v1/agents/me/state", json={"state": "on_call"}, headers=auth)
    assert r.status_code == 422 and "state" in r.text
    r = await api.client.put("/v1/agents/me/endpoint", json={"endpoint": "12345"}, headers=auth)
    assert r.status_code == 422 and "endpoint" in r.text


async def test_no_agent_is_offered_two_calls_at_once_across_workers(hooks: Hooks) -> None:
    api = hooks.api
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    try:
        async with maker() as session:
            for i in range(3):
                session.add(
                    AgentRow(
                        name=f"agent-{i + 10}",
                        endpoint="client:x",
                        state="available",
                        state_since=NOW,
                    )
                )
            await session.commit()
        case = await hooks.case()
        calls = [(await hooks.add_attempt(case, state="reserved")).id for _ in range(8)]
        campaign = uuid.uuid4()

        async def worker(attempt_id: uuid.UUID) -> uuid.UUID | None:
            async with maker() as session:
                held = await agents.hold_for(session, campaign, attempt_id, NOW)
                await session.commit()
                return held.id if held is not None else None

        held = await asyncio.gather(*(worker(a) for a in calls))
        got = [h for h in held if h is not None]
        assert len(got) == 3 and len(set(got)) == 3  # three agents, three calls, no agent twice
        async with maker() as session:
            rows = list(await session.scalars(select(AgentRow).where(AgentRow.name != "agent-1")))
        assert {r.state for r in rows} == {"reserved"}
        assert len({r.attempt_id for r in rows}) == 3
    finally:
        await engine.dispose()


async def test_wrap_up_is_required_before_the_next_call_and_lands_on_the_case(hooks: Hooks) -> None:
    api = hooks.api
    auth = api.auth(Role.AGENT)
    await _ready(api)
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, state="in_progress")
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    try:
        async with maker() as session:
            held = await agents.hold_for(session, uuid.uuid4(), attempt.id, NOW)
            assert held is not None and held.name == "agent-1"
            await agents.call_answered(session, attempt.id, NOW)
            await agents.call_ended(session, attempt.id, NOW, wrap_up_limit=timedelta(minutes=2))
            await session.commit()
        r = await api.client.put("/v1/agents/me/state", json={"state": "available"}, headers=auth)
        assert r.status_code == 409 and "wrap-up" in r.json()["error"]["message"]
        r = await api.client.post(
            "/v1/agents/me/wrap-up",
            json={
                "result": "promise_to_pay",
                "promise_amount": "500.00",
                "promise_date": "2026-12-10",
                "notes": "Pays on the 10th; ask for the finance manager next time.",
            },
            headers=auth,
        )
        assert r.status_code == 201, r.text
        me = (await api.client.get("/v1/agents/me", headers=auth)).json()
        assert me["state"] == "available" and me["attempt_id"] is None
        timeline = (await api.client.get(f"/v1/cases/{case['id']}/timeline", headers=auth)).json()
        assert timeline["latest_summary"]["notes"].startswith("Pays on the 10th")
        async with maker() as session:
            outcome = await session.scalar(
                select(OutcomeRow).where(OutcomeRow.attempt_id == attempt.id)
            )
            assert outcome is not None and outcome.recorded_by == "agent:agent-1"
            actions = list(
                await session.scalars(select(AuditRow.action).where(AuditRow.entity == "agent"))
            )
        assert {"agent.reserved", "agent.on_call", "agent.wrap_up", "agent.available"} <= set(
            actions
        )
    finally:
        await engine.dispose()


async def test_an_agent_who_disconnects_mid_call_is_offline_and_the_attempt_stays(
    hooks: Hooks,
) -> None:
    api = hooks.api
    await _ready(api)
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, state="in_progress")
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    try:
        async with maker() as session:
            await agents.hold_for(session, uuid.uuid4(), attempt.id, NOW)
            await agents.call_answered(session, attempt.id, NOW)
            await session.commit()
        r = await api.client.post("/v1/agents/me/disconnect", headers=api.auth(Role.AGENT))
        assert r.status_code == 200 and r.json()["state"] == AgentState.OFFLINE
        assert (await hooks.attempt(attempt.id)).state == "in_progress"  # its callbacks finish it
    finally:
        await engine.dispose()


async def _bridged_and_ended(hooks: Hooks, *, ended_ago: timedelta) -> uuid.UUID:
    """agent-1 took a call of a new case that ended `ended_ago`, wrap-up due 2 minutes
    after; the attempt's id."""
    await _ready(hooks.api)
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, state="in_progress")
    async with hooks.maker() as session:
        assert await agents.hold_for(session, uuid.uuid4(), attempt.id, NOW) is not None
        await agents.call_answered(session, attempt.id, NOW)
        await agents.call_ended(
            session, attempt.id, NOW - ended_ago, wrap_up_limit=timedelta(minutes=2)
        )
        await session.commit()
    return attempt.id


async def test_past_the_wrap_up_limit_the_agent_is_not_made_available_without_it(
    hooks: Hooks,
) -> None:
    api = hooks.api
    auth = api.auth(Role.AGENT)
    await _bridged_and_ended(hooks, ended_ago=timedelta(minutes=5))  # due 3 minutes ago
    r = await api.client.put("/v1/agents/me/state", json={"state": "available"}, headers=auth)
    assert r.status_code == 409 and "wrap-up" in r.json()["error"]["message"]


async def test_an_agent_moved_away_at_the_limit_still_owes_the_wrap_up_and_supervisors_see_why(
    hooks: Hooks,
) -> None:
    api = hooks.api
    auth = api.auth(Role.AGENT)
    attempt_id = await _bridged_and_ended(hooks, ended_ago=timedelta(minutes=5))
    assert await send_away_overdue(hooks.maker, NOW) == 1
    r = await api.client.get("/v1/agents", headers=api.auth(Role.SUPERVISOR))
    [seen] = r.json()["items"]
    assert (seen["state"], seen["wrap_up_owed"], seen["away_reason"]) == (
        "away",
        True,
        WRAP_UP_OVERDUE,
    )
    r = await api.client.get("/v1/dashboard/agents", headers=api.auth(Role.SUPERVISOR))
    [row] = r.json()["agents"]
    assert (row["state"], row["wrap_up_owed"], row["away_reason"]) == (
        "away",
        True,
        WRAP_UP_OVERDUE,
    )
    for state in ("available", "offline", "available"):  # offline does not wipe it either
        r = await api.client.put("/v1/agents/me/state", json={"state": state}, headers=auth)
        if state == "available":
            assert r.status_code == 409 and "wrap-up" in r.json()["error"]["message"]
        else:
            assert r.status_code == 200 and r.json()["wrap_up_owed"] is True
    r = await api.client.post(
        "/v1/agents/me/wrap-up", json={"result": "right_party", "notes": "late"}, headers=auth
    )
    assert r.status_code == 201, r.text
    assert r.json()["attempt_id"] == str(attempt_id)
    r = await api.client.put("/v1/agents/me/state", json={"state": "available"}, headers=auth)
    assert r.status_code == 200
    me = r.json()
    assert (me["wrap_up_owed"], me["away_reason"], me["attempt_id"]) == (False, None, None)


async def test_the_dialers_moves_of_an_agent_land_in_the_case_timeline(hooks: Hooks) -> None:
    api = hooks.api
    attempt_id = await _bridged_and_ended(hooks, ended_ago=timedelta(0))
    await send_away_overdue(hooks.maker, NOW + timedelta(minutes=3))
    attempt = await hooks.attempt(attempt_id)
    r = await api.client.get(
        f"/v1/cases/{attempt.case_id}/timeline", headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 200, r.text
    moves = [e for e in r.json()["entries"] if e["kind"] == "agent"]
    assert [(e["action"], e["agent"], e["by"]) for e in moves] == [
        ("agent.reserved", "agent-1", "dialer"),
        ("agent.on_call", "agent-1", "dialer"),
        ("agent.wrap_up", "agent-1", "dialer"),
        ("agent.away", "agent-1", "dialer"),
    ]
    assert {e["attempt_id"] for e in moves} == {str(attempt_id)}
    assert moves[-1]["reason"] == WRAP_UP_OVERDUE
