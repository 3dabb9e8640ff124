"""Voice callbacks, signed like Twilio signs them: status in order, reversed and
duplicated, answering-machine results, unknown calls kept, and the keypad flow."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dialer.callbacks import apply as callbacks
from dialer.core.auth import Role
from tests.dialer.support import NOW, Api
from tests.dialer.twilio_forms import Hooks, amd, call_status, configure, gather

STATUS = "/v1/twilio/voice/status"
AMD = "/v1/twilio/voice/amd"
ANSWER = "/v1/twilio/voice/answer"
GATHER = "/v1/twilio/voice/gather"
SID = "CA" + "7" * 32


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


async def _progress(hooks: Hooks, attempt: uuid.UUID, order: list[int]) -> None:
    events = [
        call_status(SID, "initiated", 0),
        call_status(SID, "ringing", 1),
        call_status(SID, "in-progress", 2),
        call_status(SID, "completed", 3, CallDuration="42"),
    ]
    for i in order:
        r = await hooks.post(STATUS, events[i], attempt=attempt)
        assert r.status_code == 204, r.text


async def test_status_callbacks_in_order_end_completed(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    await _progress(hooks, attempt.id, [0, 1, 2, 3])
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.duration_seconds) == ("completed", "no_answer", 42)
    assert row.last_sequence_number == 3 and row.provider_status == "completed"


async def test_reversed_order_never_moves_back_from_completed(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    await _progress(hooks, attempt.id, [3, 2, 1, 0])
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.duration_seconds) == ("completed", "no_answer", 42)
    assert row.last_sequence_number == 3
    assert len(await hooks.events()) == 4, "every event is kept, even the stale ones"


async def test_ringing_after_in_progress_is_ignored(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    await _progress(hooks, attempt.id, [0, 2, 1])
    assert (await hooks.attempt(attempt.id)).state == "in_progress"


async def test_duplicates_are_absorbed(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    await _progress(hooks, attempt.id, [1, 1, 3, 3])
    token = {"I-Twilio-Idempotency-Token": "tok-1"}
    for _ in range(2):
        r = await hooks.post(STATUS, call_status(SID, "completed", 3), attempt=attempt.id,
                             headers=token)  # fmt: skip
        assert r.status_code == 204
    events = await hooks.events()
    assert len(events) == 2  # ringing and completed: a retry's token changes nothing
    assert (await hooks.attempt(attempt.id)).state == "completed"


@pytest.mark.parametrize(
    ("status", "state", "result"),
    [
        ("busy", "completed", "busy"),
        ("no-answer", "completed", "no_answer"),
        ("failed", "failed", "failed"),
        ("canceled", "failed", "failed"),
    ],
)
async def test_final_statuses_map_to_results(
    hooks: Hooks, status: str, state: str, result: str
) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    await hooks.post(STATUS, call_status(SID, "ringing", 1), attempt=attempt.id)
    await hooks.post(STATUS, call_status(SID, status, 2), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.provider_status) == (state, result, status)


@pytest.mark.parametrize("amd_first", [True, False])
async def test_answering_machine_makes_a_voicemail_in_either_order(
    hooks: Hooks, amd_first: bool
) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    if amd_first:
        await hooks.post(AMD, amd(SID, "machine_end_beep"), attempt=attempt.id)
    await hooks.post(STATUS, call_status(SID, "completed", 3, CallDuration="20"),
                     attempt=attempt.id)  # fmt: skip
    if not amd_first:
        await hooks.post(AMD, amd(SID, "machine_end_beep"), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.answered_by) == (
        "completed",
        "voicemail",
        "machine_end_beep",
    )


async def test_unknown_calls_are_kept_for_reconciliation(hooks: Hooks) -> None:
    r = await hooks.post(STATUS, call_status("CA" + "9" * 32, "completed", 3))
    assert r.status_code == 204
    r = await hooks.post(STATUS, call_status("CA" + "8" * 32, "ringing", 1), attempt=uuid.uuid4())
    assert r.status_code == 204
    events = await hooks.events()
    assert [e.status for e in events] == ["unmatched", "unmatched"]
    assert (
        events[0].provider_sid == "CA" + "9" * 32 and events[0].fields["CallStatus"] == "completed"
    )


async def test_unmatched_events_are_applied_once_their_call_is_known(hooks: Hooks) -> None:
    """A callback that came before the attempt recorded its sid (and named no attempt)."""
    await hooks.post(STATUS, call_status(SID, "ringing", 1))
    await hooks.post(STATUS, call_status(SID, "completed", 2, CallDuration="9"))
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    async with hooks.maker() as session:
        assert await callbacks.reconcile_unmatched(session, NOW) == 2
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.duration_seconds) == ("completed", "no_answer", 9)
    assert {e.status for e in await hooks.events()} == {"resolved"}
    async with hooks.maker() as session:
        assert await callbacks.reconcile_unmatched(session, NOW) == 0


async def test_lost_create_response_is_mapped_by_the_attempt_in_the_url(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), state="unknown", sid=None)
    await hooks.post(STATUS, call_status(SID, "ringing", 1), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.provider_sid) == ("ringing", SID)
    # later callbacks without our attempt id find it by the provider's sid
    await hooks.post(STATUS, call_status(SID, "completed", 2))
    assert (await hooks.attempt(attempt.id)).state == "completed"


# --- the keypad flow -------------------------------------------------------------------


async def _activate(hooks: Hooks) -> None:
    h = hooks.api.auth(Role.SUPERVISOR)
    r = await hooks.client.post(
        "/v1/strategies/from-preset", json={"portfolio": "cn-loans", "preset": "consumer-loan"},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = await hooks.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    assert r.status_code == 200, r.text


async def _answered(hooks: Hooks, disclosure: str = "full") -> tuple[dict[str, Any], Any]:
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, sid=SID, disclosure=disclosure)
    await hooks.post(STATUS, call_status(SID, "in-progress", 2), attempt=attempt.id)
    return case, attempt


async def test_greeting_asks_for_the_person_and_says_nothing_of_a_debt(hooks: Hooks) -> None:
    _, attempt = await _answered(hooks)
    r = await hooks.post(ANSWER, gather(SID, ""), attempt=attempt.id)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert "<Gather" in r.text and f"attempt={attempt.id}" in r.text and "step=greeting" in r.text
    assert "12000" not in r.text and "Wang Fang" in r.text


async def test_keypad_1_then_promise_records_a_promise_once(hooks: Hooks) -> None:
    case, attempt = await _answered(hooks)
    r = await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "greeting"})
    assert r.status_code == 200 and "12000.00" in r.text and "step=menu" in r.text
    assert (await hooks.attempt(attempt.id)).result == "right_party"
    for _ in range(2):  # Twilio retrying the action request changes nothing more
        r = await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "menu"})
        assert r.status_code == 200 and "<Hangup" in r.text
    await hooks.post(
        STATUS, call_status(SID, "completed", 3, CallDuration="80"), attempt=attempt.id
    )
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result) == ("completed", "promise_to_pay")
    assert str(row.promise_amount) == "12000.00" and row.promise_date is not None
    timeline = await hooks.client.get(
        f"/v1/cases/{case['id']}/timeline", headers=hooks.api.auth(Role.AGENT)
    )
    assert timeline.status_code == 200, timeline.text
    body = timeline.json()
    outcomes = [e for e in body["entries"] if e["kind"] == "outcome"]
    assert [o["result"] for o in outcomes] == ["right_party", "promise_to_pay"]
    assert body["latest_summary"]["result"] == "promise_to_pay"
    assert "promise to pay 12000.00" in body["latest_summary"]["notes"]


async def test_keypad_2_at_the_greeting_is_a_third_party_hearing_nothing(hooks: Hooks) -> None:
    _, attempt = await _answered(hooks)
    r = await hooks.post(GATHER, gather(SID, "2"), attempt=attempt.id, query={"step": "greeting"})
    assert r.status_code == 200 and "<Hangup" in r.text
    assert "12000" not in r.text and "<Gather" not in r.text
    assert (await hooks.attempt(attempt.id)).result == "third_party"


async def test_keypad_3_puts_the_debtor_through_to_the_team(hooks: Hooks) -> None:
    _, attempt = await _answered(hooks)
    await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "greeting"})
    r = await hooks.post(GATHER, gather(SID, "3"), attempt=attempt.id, query={"step": "menu"})
    assert "<Dial>+14155550111</Dial>" in r.text


async def test_keypad_2_in_the_menu_asks_for_a_callback(hooks: Hooks) -> None:
    _, attempt = await _answered(hooks)
    await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "greeting"})
    await hooks.post(GATHER, gather(SID, "2"), attempt=attempt.id, query={"step": "menu"})
    row = await hooks.attempt(attempt.id)
    assert row.result == "callback_requested" and row.callback_at is not None


async def test_keypad_9_opts_the_number_out_of_calls_at_once(hooks: Hooks) -> None:
    await _activate(hooks)
    case, attempt = await _answered(hooks)
    await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "greeting"})
    r = await hooks.post(GATHER, gather(SID, "9"), attempt=attempt.id, query={"step": "menu"})
    assert r.status_code == 200 and "<Hangup" in r.text
    point = await hooks.point(attempt.contact_point_id)
    assert point.opted_out == ["voice"]
    d = await hooks.client.get(
        f"/v1/cases/{case['id']}/decision", params={"at": "2026-12-02T10:00:00+08:00"},
        headers=hooks.api.auth(Role.AGENT),
    )  # fmt: skip
    refused = [
        x for x in d.json()["refused"]
        if x["candidate"]["contact_point_id"] == str(attempt.contact_point_id)
        and x["candidate"]["channel"] == "voice"
    ]  # fmt: skip
    assert refused and "optout.channel" in [r["rule"] for r in refused[0]["reasons"]]


async def test_menu_fails_closed_when_the_attempt_was_granted_nothing(hooks: Hooks) -> None:
    _, attempt = await _answered(hooks, disclosure="none")
    greeting = await hooks.post(ANSWER, gather(SID, ""), attempt=attempt.id)
    assert "<Gather" in greeting.text and "12000" not in greeting.text
    r = await hooks.post(GATHER, gather(SID, "1"), attempt=attempt.id, query={"step": "greeting"})
    assert r.status_code == 200 and "12000" not in r.text and "<Hangup" in r.text


async def test_twiml_for_an_unknown_attempt_hangs_up(hooks: Hooks) -> None:
    r = await hooks.post(ANSWER, gather("CA" + "5" * 32, ""), attempt=uuid.uuid4())
    assert r.status_code == 200 and "<Hangup" in r.text
