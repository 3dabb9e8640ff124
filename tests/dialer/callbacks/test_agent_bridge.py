"""Agent-mode calls at the keypad, through signed webhooks: the verified debtor is put
through to the collector (`<Dial>` to their endpoint), a third party and a machine are
not, a person with no collector free hears the abandoned-call message (recorded), and the
call's end frees the agent or makes wrap-up owed."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from dialer.core.auth import Role
from dialer.core.clock import fixed_clock
from dialer.db.models import AgentRow, AttemptRow, AuditRow, OutcomeRow
from dialer.db.repositories import agents as agent_rows
from dialer.domain.agents import DEFAULT_WRAP_UP_LIMIT_S, AgentState
from tests.dialer.support import NOW
from tests.dialer.twilio_forms import Hooks, call_status, configure, gather

STATUS = "/v1/twilio/voice/status"
ANSWER = "/v1/twilio/voice/answer"
GATHER = "/v1/twilio/voice/gather"
HOLD = "/v1/twilio/voice/hold"
SID = "CA" + "8" * 32


@pytest.fixture
def hooks(api: Any) -> Hooks:
    return configure(api)


async def _campaign(hooks: Hooks, mode: str, wrap_up_limit_s: int | None = None) -> uuid.UUID:
    body = {
        "name": f"desk {mode}",
        "portfolio": "cn-loans",
        "channels": ["voice"],
        "window": "09:00-11:30",
        "pacing_cps": 1,
        "mode": mode,
        "wrap_up_limit_s": wrap_up_limit_s,
    }
    h = hooks.api.auth(Role.SUPERVISOR)
    r = await hooks.client.post("/v1/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


async def _call(hooks: Hooks, mode: str, **campaign: Any) -> AttemptRow:
    """An answered call of a campaign in `mode` to the case's debtor."""
    cid = await _campaign(hooks, mode, **campaign)
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    async with hooks.maker() as session:
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == attempt.id).values(campaign_id=cid)
        )
        await session.commit()
    await hooks.post(STATUS, call_status(SID, "in-progress", 2), attempt=attempt.id)
    return await hooks.attempt(attempt.id)


async def _agent(
    hooks: Hooks, name: str, endpoint: str, state: AgentState, holds: AttemptRow | None = None
) -> None:
    async with hooks.maker() as session:
        row = await agent_rows.ensure(session, name, state.value, NOW - timedelta(minutes=5))
        row.endpoint = endpoint
        if holds is not None:
            row.attempt_id, row.campaign_id = holds.id, holds.campaign_id
        await session.commit()


async def _agents(hooks: Hooks) -> dict[str, AgentRow]:
    async with hooks.maker() as session:
        return {a.name: a for a in await session.scalars(select(AgentRow))}


async def _press(hooks: Hooks, attempt: AttemptRow, digits: str) -> str:
    r = await hooks.post(
        GATHER, gather(SID, digits), attempt=attempt.id, query={"step": "greeting"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    return r.text


async def _end(hooks: Hooks, attempt: AttemptRow) -> None:
    r = await hooks.post(
        STATUS, call_status(SID, "completed", 3, CallDuration="95"), attempt=attempt.id
    )
    assert r.status_code == 204, r.text


async def test_the_verified_debtor_is_put_through_to_the_held_agent(hooks: Hooks) -> None:
    attempt = await _call(hooks, "progressive", wrap_up_limit_s=90)
    await _agent(hooks, "alice", "client:alice", AgentState.RESERVED, holds=attempt)
    await _agent(hooks, "bob", "client:bob", AgentState.AVAILABLE)
    greeting = (await hooks.post(ANSWER, gather(SID, ""), attempt=attempt.id)).text
    assert "<Gather" in greeting and "12000" not in greeting  # verification first
    twiml = await _press(hooks, attempt, "1")
    assert "<Dial><Client>alice</Client></Dial>" in twiml, twiml
    assert "12000" not in twiml and "<Gather" not in twiml  # the collector speaks now
    agents = await _agents(hooks)
    assert agents["alice"].state == "on_call" and agents["alice"].attempt_id == attempt.id
    assert agents["bob"].state == "available"
    assert (await hooks.attempt(attempt.id)).result == "right_party"
    await _end(hooks, attempt)
    alice = (await _agents(hooks))["alice"]
    assert alice.state == "wrap_up" and alice.attempt_id == attempt.id
    assert alice.wrap_up_due_at is not None
    due = alice.wrap_up_due_at.replace(tzinfo=None) - NOW.replace(tzinfo=None)
    assert due == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("endpoint", "dial"),
    [
        ("+8613800138111", "<Number>+8613800138111</Number>"),
        ("sip:alice@pbx.example.com", "<Sip>sip:alice@pbx.example.com</Sip>"),
    ],
)
async def test_a_phone_or_sip_endpoint_is_dialled_as_such(
    hooks: Hooks, endpoint: str, dial: str
) -> None:
    attempt = await _call(hooks, "progressive")
    await _agent(hooks, "alice", endpoint, AgentState.RESERVED, holds=attempt)
    assert dial in await _press(hooks, attempt, "1")


async def test_a_third_party_hears_the_message_and_meets_no_agent(hooks: Hooks) -> None:
    attempt = await _call(hooks, "progressive")
    await _agent(hooks, "alice", "client:alice", AgentState.RESERVED, holds=attempt)
    twiml = await _press(hooks, attempt, "2")
    assert "<Dial" not in twiml and "<Hangup" in twiml
    assert "12000" not in twiml  # no debt facts for a third party
    assert (await hooks.attempt(attempt.id)).result == "third_party"
    assert (await _agents(hooks))["alice"].state == "reserved"
    await _end(hooks, attempt)  # the held agent is free again, no wrap-up owed
    alice = (await _agents(hooks))["alice"]
    assert (alice.state, alice.attempt_id, alice.wrap_up_due_at) == ("available", None, None)


async def test_a_machine_pressing_nothing_is_never_put_through(hooks: Hooks) -> None:
    attempt = await _call(hooks, "progressive")
    await _agent(hooks, "alice", "client:alice", AgentState.RESERVED, holds=attempt)
    twiml = await _press(hooks, attempt, "")  # a greeting played to a machine: no key
    assert "<Dial" not in twiml and "<Hangup" in twiml
    assert (await hooks.attempt(attempt.id)).abandoned_at is None  # no person, no abandon
    await _end(hooks, attempt)
    assert (await _agents(hooks))["alice"].state == "available"


async def test_a_predictive_call_takes_a_free_agent_when_the_person_is_verified(
    hooks: Hooks,
) -> None:
    attempt = await _call(hooks, "predictive")
    await _agent(hooks, "carol", "client:carol", AgentState.AVAILABLE)
    assert "<Client>carol</Client>" in await _press(hooks, attempt, "1")
    carol = (await _agents(hooks))["carol"]
    assert (carol.state, carol.attempt_id) == ("on_call", attempt.id)
    await _end(hooks, attempt)
    carol = (await _agents(hooks))["carol"]
    assert carol.state == "wrap_up"
    due = carol.wrap_up_due_at.replace(tzinfo=None) - NOW.replace(tzinfo=None)  # type: ignore[union-attr]
    assert due == timedelta(seconds=DEFAULT_WRAP_UP_LIMIT_S)


def _waits(twiml: str) -> str:
    """The `since` of a TwiML that holds the call for a collector (a pause, then a
    redirect to the hold route); fails on any other TwiML."""
    match = re.search(r"<Pause length=\"1\" /><Redirect method=\"POST\">([^<]+)</Redirect>", twiml)
    assert match is not None, twiml
    url = urlsplit(html.unescape(match.group(1)))
    assert url.path == HOLD
    return parse_qs(url.query)["since"][0]


async def _ask_again(hooks: Hooks, attempt: AttemptRow, since: str, after: timedelta) -> str:
    """The redirect of a waiting call, `after` the verification."""
    hooks.api.app.state.clock = fixed_clock(NOW + after)
    r = await hooks.post(HOLD, gather(SID, ""), attempt=attempt.id, query={"since": since})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml"), r.text
    return r.text


async def _abandon_notes(hooks: Hooks, attempt: AttemptRow) -> list[str]:
    async with hooks.maker() as session:
        notes = await session.scalars(
            select(OutcomeRow.notes).where(OutcomeRow.attempt_id == attempt.id)
        )
        return [n for n in notes if n and n.startswith("abandoned")]


async def test_no_agent_free_within_2_seconds_is_an_abandoned_call_recorded_and_counted(
    hooks: Hooks,
) -> None:
    attempt = await _call(hooks, "predictive")
    await _agent(hooks, "carol", "client:carol", AgentState.ON_CALL)  # busy
    # 16 CFR 310.4(b)(4)(i): abandoned only if no agent within 2 s of the greeting, so
    # the call waits (a pause, then asks again) instead of being abandoned at once.
    since = _waits(await _press(hooks, attempt, "1"))
    assert datetime.fromisoformat(since) == NOW
    row = await hooks.attempt(attempt.id)
    assert row.abandoned_at is None and row.result == "right_party"
    twiml = await _ask_again(hooks, attempt, since, timedelta(seconds=1.2))
    assert "<Dial" not in twiml and "<Hangup" in twiml
    assert "Collections Service" in twiml and "+14155550100" in twiml  # caller, call-back
    assert "12000" not in twiml
    row = await hooks.attempt(attempt.id)
    assert row.abandoned_at is not None and row.result == "right_party"
    assert (await _agents(hooks))["carol"].state == "on_call"  # untouched
    # the same request again (Twilio's retry): the same message, counted once
    assert await _ask_again(hooks, attempt, since, timedelta(seconds=1.5)) == twiml
    assert (await hooks.attempt(attempt.id)).abandoned_at == row.abandoned_at
    assert len(await _abandon_notes(hooks, attempt)) == 1
    # it stays an attempt of the case like any other (every cap counts attempts)
    r = await hooks.client.get(
        f"/v1/cases/{row.case_id}/timeline", headers=hooks.api.auth(Role.AGENT)
    )
    assert r.status_code == 200, r.text
    assert str(row.id) in r.text


async def test_a_collector_freed_within_2_seconds_takes_the_waiting_call(hooks: Hooks) -> None:
    attempt = await _call(hooks, "predictive")
    await _agent(hooks, "carol", "client:carol", AgentState.ON_CALL)
    since = _waits(await _press(hooks, attempt, "1"))
    await _agent(hooks, "dave", "client:dave", AgentState.AVAILABLE)  # wrapped up meanwhile
    twiml = await _ask_again(hooks, attempt, since, timedelta(seconds=1.1))
    assert "<Dial><Client>dave</Client></Dial>" in twiml, twiml
    dave = (await _agents(hooks))["dave"]
    assert (dave.state, dave.attempt_id) == ("on_call", attempt.id)
    # a retry of the same request puts the call through to the same collector
    assert await _ask_again(hooks, attempt, since, timedelta(seconds=1.3)) == twiml
    assert (await hooks.attempt(attempt.id)).abandoned_at is None
    assert await _abandon_notes(hooks, attempt) == []
    async with hooks.maker() as session:
        moves = list(
            await session.scalars(
                select(AuditRow.action).where(
                    AuditRow.entity == "agent", AuditRow.entity_id == str(dave.id)
                )
            )
        )
    assert moves == ["agent.reserved", "agent.on_call"]


async def test_an_early_redirect_waits_again_and_a_late_one_is_abandoned(hooks: Hooks) -> None:
    attempt = await _call(hooks, "predictive")
    since = _waits(await _press(hooks, attempt, "1"))  # nobody signed in at all
    assert _waits(await _ask_again(hooks, attempt, since, timedelta(seconds=0.4))) == since
    assert (await hooks.attempt(attempt.id)).abandoned_at is None
    # past the 2 s a collector coming free is too late: the message has to play
    await _agent(hooks, "erin", "client:erin", AgentState.AVAILABLE)
    twiml = await _ask_again(hooks, attempt, since, timedelta(seconds=2.4))
    assert "<Dial" not in twiml and "<Hangup" in twiml
    assert (await hooks.attempt(attempt.id)).abandoned_at is not None
    assert (await _agents(hooks))["erin"].state == "available"


async def test_a_hold_request_with_a_bad_instant_is_400_naming_it(hooks: Hooks) -> None:
    attempt = await _call(hooks, "predictive")
    r = await hooks.post(HOLD, gather(SID, ""), attempt=attempt.id, query={"since": "soon"})
    assert r.status_code == 400 and "since" in r.text
