"""A callback belongs to the call it names: a signed keypress or status carrying another
call's CallSid, or naming an attempt that was never dialled, changes nothing (a keypress
hangs up, a status is kept `unmatched`); before the create's answer is recorded, the
first callback of a call under way records its sid."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from dialer.db.models import OutcomeRow
from tests.dialer.twilio_forms import Hooks, call_status, configure, gather

STATUS = "/v1/twilio/voice/status"
GATHER = "/v1/twilio/voice/gather"
ANSWER = "/v1/twilio/voice/answer"
SID = "CA" + "1" * 32
OTHER = "CA" + "2" * 32


@pytest.fixture
def hooks(api: Any) -> Hooks:
    return configure(api)


async def _outcomes(hooks: Hooks) -> int:
    async with hooks.maker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutcomeRow)) or 0)


@pytest.mark.parametrize(
    ("state", "recorded", "calling"),
    [
        ("in_progress", SID, OTHER),  # another call's sid
        ("completed", SID, OTHER),  # a finished call: a made-up keypress afterwards
        ("queued", None, OTHER),  # never dialled
        ("reserved", None, OTHER),  # decided, not fenced: no call yet
    ],
)
async def test_a_keypress_of_another_call_records_nothing(
    hooks: Hooks, state: str, recorded: str | None, calling: str
) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), state=state, sid=recorded)
    for step in ("greeting", "menu"):
        r = await hooks.post(GATHER, gather(calling, "1"), attempt=attempt.id, query={"step": step})
        assert r.status_code == 200, r.text
        assert "<Hangup" in r.text and "<Say" not in r.text
    answer = await hooks.post(ANSWER, call_status(calling, "in-progress", 1), attempt=attempt.id)
    assert "<Hangup" in answer.text
    after = await hooks.attempt(attempt.id)
    assert (after.state, after.result, after.promise_amount) == (state, "pending", None)
    assert after.provider_sid == recorded
    assert await _outcomes(hooks) == 0


async def test_the_calls_own_keypress_is_recorded(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), state="in_progress", sid=SID)
    r = await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "menu"})
    assert "<Say" in r.text  # the promise read back, then goodbye
    assert (await hooks.attempt(attempt.id)).result == "promise_to_pay"
    assert await _outcomes(hooks) == 1


async def test_a_status_of_another_call_is_kept_unmatched(hooks: Hooks) -> None:
    # On PostgreSQL the one-statement path answers it, on SQLite the session path: alike.
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, state="sent", sid=SID)
    never = await hooks.add_attempt(case, state="queued")
    for seq, target in enumerate((attempt, never), start=5):
        r = await hooks.post(STATUS, call_status(OTHER, "completed", seq), attempt=target.id)
        assert r.status_code == 204, r.text
    assert (await hooks.attempt(attempt.id)).state == "sent"
    assert (await hooks.attempt(never.id)).state == "queued"
    assert (await hooks.attempt(never.id)).provider_sid is None
    assert [e.status for e in await hooks.events()] == ["unmatched", "unmatched"]


async def test_the_first_callback_of_a_call_under_way_records_its_sid(hooks: Hooks) -> None:
    # The create's answer is not committed yet (`dialing`): Twilio's callback says the sid.
    attempt = await hooks.add_attempt(await hooks.case(), state="dialing")
    r = await hooks.post(STATUS, call_status(SID, "ringing", 1), attempt=attempt.id)
    assert r.status_code == 204, r.text
    after = await hooks.attempt(attempt.id)
    assert (after.provider_sid, after.state) == (SID, "ringing")


async def test_a_keypress_at_an_unknown_step_is_refused(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), state="in_progress", sid=SID)
    r = await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "bogus"})
    assert r.status_code == 400, r.text
    assert "step" in r.text
    assert (await hooks.attempt(attempt.id)).result == "pending"
