"""A captured, validly signed callback replayed with a fresh `I-Twilio-Idempotency-Token`
(an unsigned header anyone can change) is the same event: every callback route
deduplicates on what the signature covers (CallSid, status and SequenceNumber; CallSid
and AnsweredBy; MessageSid and status; CallSid, step and Digits; an inbound MessageSid),
on SQLite and on PostgreSQL's one-statement path alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dialer.callbacks.apply import event_key
from dialer.callbacks.forms import TwilioForm
from dialer.core.clock import fixed_clock
from dialer.db.models import InboundMessageRow, OutcomeRow, WebhookEventRow
from tests.dialer.support import NOW, Api
from tests.dialer.twilio_forms import Hooks, amd, call_status, configure, gather, inbound
from tests.dialer.twilio_forms import sms_status as sms_form

STATUS = "/v1/twilio/voice/status"
AMD = "/v1/twilio/voice/amd"
GATHER = "/v1/twilio/voice/gather"
SMS_STATUS = "/v1/twilio/sms/status"
INBOUND = "/v1/twilio/sms/inbound"
SID = "CA" + "5" * 32
MSG = "SM" + "5" * 32
DEBTOR = "+8613800138000"  # cn_case's debtor phone


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


def fresh_token() -> dict[str, str]:
    return {"I-Twilio-Idempotency-Token": f"{uuid.uuid4()}-{uuid.uuid4()}"}


async def _count(hooks: Hooks, model: type, **where: object) -> int:
    async with hooks.maker() as session:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int(await session.scalar(stmt) or 0)


async def test_a_replayed_keypad_promise_with_a_fresh_token_records_one_promise(
    hooks: Hooks,
) -> None:
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, sid=SID)
    await hooks.post(STATUS, call_status(SID, "in-progress", 2), attempt=attempt.id)
    r = await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "greeting"})
    assert r.status_code == 200
    r = await hooks.post(
        GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "menu"}, headers=fresh_token()
    )
    assert r.status_code == 200 and "<Hangup" in r.text
    first = await hooks.attempt(attempt.id)
    # The attacker replays it a day later: the clock moves, the promise must not.
    hooks.api.app.state.clock = fixed_clock(NOW + timedelta(days=1))
    for _ in range(2):
        replay = await hooks.post(
            GATHER,
            gather(SID, "1"),
            attempt=attempt.id,
            query={"step": "menu"},
            headers=fresh_token(),
        )
        assert replay.status_code == 200 and replay.text == r.text
    promises = await _count(hooks, OutcomeRow, attempt_id=attempt.id, result="promise_to_pay")
    assert promises == 1
    again = await hooks.attempt(attempt.id)
    assert (again.promise_date, again.promise_amount) == (first.promise_date, first.promise_amount)
    assert await _count(hooks, WebhookEventRow, kind="gather") == 2  # greeting 1, menu 1


async def test_a_replayed_inbound_stop_with_a_fresh_token_writes_one_message(
    hooks: Hooks,
) -> None:
    await hooks.case()
    for _ in range(3):
        r = await hooks.post(INBOUND, inbound(MSG, DEBTOR, "STOP"), headers=fresh_token())
        assert r.status_code == 200
    assert await _count(hooks, InboundMessageRow, provider_sid=MSG) == 1
    assert await _count(hooks, WebhookEventRow, kind="sms_inbound") == 1


async def test_a_replayed_call_status_with_a_fresh_token_is_absorbed(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    fields = call_status(SID, "completed", 3, CallDuration="42")
    for _ in range(3):
        r = await hooks.post(STATUS, fields, attempt=attempt.id, headers=fresh_token())
        assert r.status_code == 204
    assert await _count(hooks, WebhookEventRow, kind="voice_status") == 1
    # The same call and status with another SequenceNumber is another event.
    later = call_status(SID, "completed", 4, CallDuration="42")
    assert (await hooks.post(STATUS, later, attempt=attempt.id)).status_code == 204
    assert await _count(hooks, WebhookEventRow, kind="voice_status") == 2


async def test_a_replayed_sms_status_with_a_fresh_token_is_absorbed(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), channel="sms", sid=MSG)
    for _ in range(3):
        r = await hooks.post(
            SMS_STATUS, sms_form(MSG, "delivered"), attempt=attempt.id, headers=fresh_token()
        )
        assert r.status_code == 204
    assert await _count(hooks, WebhookEventRow, kind="sms_status") == 1
    assert (await hooks.attempt(attempt.id)).result == "delivered"


async def test_a_replayed_amd_result_with_a_fresh_token_is_absorbed(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.us_case(), sid=SID, state="in_progress")
    for _ in range(3):
        r = await hooks.post(
            AMD, amd(SID, "human", to="+12125550199"), attempt=attempt.id, headers=fresh_token()
        )
        assert r.status_code == 204
    assert await _count(hooks, WebhookEventRow, kind="amd") == 1


def _form(
    fields: dict[str, str], query: dict[str, str] | None = None, token: str = ""
) -> TwilioForm:
    return TwilioForm(fields, query or {}, token or None)


def test_the_key_is_made_of_signed_fields_only() -> None:
    """The token never changes a key; each signed identity field does."""
    status = call_status(SID, "ringing", 1)
    assert event_key("voice_status", _form(status, token="a")) == event_key(
        "voice_status", _form(status, token="b")
    )
    assert event_key("voice_status", _form(status)) != event_key(
        "voice_status", _form(call_status(SID, "ringing", 2))
    )
    assert event_key("voice_status", _form(status)) != event_key(
        "voice_status", _form(call_status(SID, "in-progress", 1))
    )
    press = gather(SID, "1")
    assert event_key("gather", _form(press, {"step": "greeting"})) != event_key(
        "gather", _form(press, {"step": "menu"})
    )
    assert event_key("gather", _form(press, {"step": "menu"})) != event_key(
        "gather", _form(gather(SID, "2"), {"step": "menu"})
    )
    assert event_key("sms_status", _form(sms_form(MSG, "sent"))) != event_key(
        "sms_status", _form(sms_form(MSG, "delivered"))
    )
    stop, text = inbound(MSG, DEBTOR, "STOP"), inbound(MSG, DEBTOR, "other words")
    assert event_key("sms_inbound", _form(stop, token="x")) == event_key(
        "sms_inbound", _form(text, token="y")
    )
    long_digits = gather(SID, "1" * 400)
    assert len(event_key("gather", _form(long_digits, {"step": "menu"}))) <= 255
