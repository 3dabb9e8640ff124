"""A whole morning on the embedded default: plan a campaign, dispatch it to the telephony
fake, answer as Twilio would with signed callbacks over HTTP (this test plays the
simulator), record outcomes, and decide again. Nothing is left in a non-final state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from dialer.api.app import create_app
from dialer.db.models import AttemptRow, WebhookEventRow
from dialer.domain.attempts import FINAL_STATES, AttemptState
from dialer.services.decisions import decide_stored
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world
from tests.dialer.support import settings_for
from tests.dialer.twilio_forms import (
    ACCOUNT,
    BASE,
    TOKEN,
    amd,
    call_status,
    gather,
    inbound,
    signature,
)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database) as w:
        yield w


class Twilio:
    """Posts what Twilio would post, signed with the account's token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self, path: str, fields: dict[str, str], attempt: uuid.UUID | None, **query: str
    ) -> httpx.Response:
        params = {"attempt": str(attempt), **query} if attempt else query
        target = f"/v1/twilio/{path}" + (f"?{urlencode(params)}" if params else "")
        r = await self.client.post(
            target,
            content=urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature(f"{BASE}{target}", fields),
            },
        )
        assert r.status_code in (200, 204), r.text
        return r


@pytest.fixture
async def twilio(world: World, database: Database) -> AsyncIterator[Twilio]:
    settings = settings_for(
        database,
        twilio_auth_token=SecretStr(TOKEN),
        twilio_account_sid=ACCOUNT,
        public_base_url=BASE,
        callback_number="+14155550100",
    )
    app = create_app(settings, clock=world.clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Twilio(client)


def _parties(i: int) -> list[dict[str, Any]]:
    return [
        {
            "ref": "debtor",
            "role": "debtor",
            "name": f"Debtor {i}",
            "timezone": "Asia/Shanghai",
            "contact_points": [
                {"kind": "phone", "value": f"+86138{i:08d}", "validity": "verified"}
            ],
        }
    ]


async def _morning(world: World, cases: int) -> list[AttemptRow]:
    world.clock.advance_to(INSIDE)
    for i in range(cases):
        await world.add_cases(1, parties=_parties(i))
    campaign = await world.campaign()
    await world.plan(campaign)
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    by_case = {a.case_id: a for a in await world.attempts()}
    return [by_case[c] for c in world.case_ids]


async def test_a_whole_morning_ends_with_every_attempt_final(world: World, twilio: Twilio) -> None:
    attempts = await _morning(world, 5)
    assert world.dials() == 5 and all(a.state == "sent" and a.provider_sid for a in attempts)
    sids = [a.provider_sid or "" for a in attempts]
    promise, busy, unanswered, machine, third = attempts

    # 0: the debtor answers, confirms, promises to pay
    s = sids[0]
    for seq, status in enumerate(("initiated", "ringing", "in-progress")):
        await twilio.post("voice/status", call_status(s, status, seq), promise.id)
    greeting = await twilio.post("voice/answer", gather(s, ""), promise.id)
    assert "<Gather" in greeting.text
    await twilio.post("voice/gather", gather(s, "1"), promise.id, step="greeting")
    await twilio.post("voice/gather", gather(s, "1"), promise.id, step="menu")
    await twilio.post("voice/status", call_status(s, "completed", 3, CallDuration="64"), promise.id)
    # 1: busy; 2: no answer, its callbacks reversed and repeated
    await twilio.post("voice/status", call_status(sids[1], "ringing", 1), busy.id)
    await twilio.post("voice/status", call_status(sids[1], "busy", 2), busy.id)
    for seq, status in ((2, "no-answer"), (1, "ringing"), (2, "no-answer"), (0, "initiated")):
        await twilio.post("voice/status", call_status(sids[2], status, seq), unanswered.id)
    # 3: an answering machine, reported after the call completed
    await twilio.post("voice/status", call_status(sids[3], "in-progress", 1), machine.id)
    await twilio.post("voice/status", call_status(sids[3], "completed", 2), machine.id)
    await twilio.post("voice/amd", amd(sids[3], "machine_end_beep"), machine.id)
    # 4: someone else picks up and says so
    await twilio.post("voice/status", call_status(sids[4], "in-progress", 1), third.id)
    await twilio.post("voice/gather", gather(sids[4], "2"), third.id, step="greeting")
    await twilio.post("voice/status", call_status(sids[4], "completed", 2), third.id)
    # and a reply on the first number
    await twilio.post("sms/inbound", inbound("SM" + "1" * 32, "+8613800000000", "Paid soon"), None)

    final = await world.attempts()
    assert all(AttemptState(a.state) in FINAL_STATES for a in final), [a.state for a in final]
    results = {a.id: a.result for a in final}
    assert [results[a.id] for a in attempts] == [
        "promise_to_pay", "busy", "no_answer", "voicemail", "third_party",
    ]  # fmt: skip
    async with world.maker() as session:
        events = list(await session.scalars(select(WebhookEventRow)))
        assert all(e.status != "unmatched" for e in events)

        # The next decisions read those outcomes: the promise holds collection back.
        later = INSIDE + timedelta(hours=1)
        kept = await decide_stored(session, promise.case_id, later)
        assert not kept.allowed
        assert "promise.pending" in {r.rule for r in kept.case_reasons} | {
            reason.rule for refusal in kept.refused for reason in refusal.reasons
        }
        assert (await decide_stored(session, busy.case_id, later)).case_reasons == ()


async def test_stop_by_sms_after_planning_refuses_the_queued_sms(
    world: World, twilio: Twilio
) -> None:
    """Invariant 7 end to end: the reply lands between planning and dispatch."""
    world.clock.advance_to(INSIDE)
    await world.add_cases(1, parties=_parties(7))
    campaign = await world.campaign(channels=("sms",))
    await world.plan(campaign)
    (planned,) = await world.attempts()
    assert (planned.channel, planned.state) == ("sms", "queued")
    await twilio.post("sms/inbound", inbound("SM" + "2" * 32, "+8613800000007", "退订"), None)
    await world.queue.drain(INSIDE + timedelta(minutes=5), world.dispatcher())
    assert world.dials() == 0
    (refused,) = await world.attempts()
    assert refused.state == "refused" and refused.refusal is not None
    assert "optout.channel" in {r["rule"] for r in refused.refusal["reasons"]}
