"""Every (state, status event) pair, on both databases: what each path that applies a
provider status leaves on the attempt equals what the one rule says (`attempts.on_status`).

The paths: the session path (`callbacks.apply.record_status`, both databases) and, on
PostgreSQL, the one generated statement (`callbacks.fastpath`). Each pair is tried from
three held variants (fresh; a failure the reconciler inferred, with a machine's answer and
a SequenceNumber; a provider's failure with a promise), so stale sequence numbers, the
reconciler's correction, the machine's voicemail and the result ranking all show up."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from dialer.callbacks import apply as callbacks
from dialer.callbacks.fastpath import FastStatusPath
from dialer.callbacks.forms import TwilioForm
from dialer.db.models import AttemptRow
from dialer.domain.attempts import (
    CALL_STATUS,
    INFERRED_FAILURE,
    MESSAGE_STATUS,
    AttemptState,
    Held,
    StatusEvent,
    on_status,
)
from tests.dialer.support import NOW, Api
from tests.dialer.twilio_forms import Hooks, configure

HELD = [
    Held(AttemptState.PLANNED),
    Held(
        AttemptState.PLANNED,
        error_code=INFERRED_FAILURE,
        last_sequence_number=3,
        answered_by="machine_start",
        result="no_answer",
    ),
    Held(AttemptState.PLANNED, error_code="30008", result="promise_to_pay", duration_seconds=7),
]
EVENTS = [
    *(
        StatusEvent("voice", status, sequence_number=seq, duration=duration, answered_by=by)
        for status in CALL_STATUS
        for seq, duration, by in [(None, None, None), (2, 30, "machine_end_beep"), (5, 12, None)]
    ),
    *(
        StatusEvent("sms", status, error_code=error)
        for status in MESSAGE_STATUS
        for error in [None, "30008"]
    ),
]
COLUMNS = (
    "state",
    "provider_status",
    "last_sequence_number",
    "duration_seconds",
    "answered_by",
    "error_code",
    "result",
)


@dataclass(frozen=True)
class Case:
    held: Held
    event: StatusEvent
    attempt_id: uuid.UUID
    sid: str

    @property
    def kind(self) -> str:
        return "voice_status" if self.event.channel == "voice" else "sms_status"

    def form(self) -> TwilioForm:
        e = self.event
        fields = {"CallSid": self.sid, "CallStatus": e.status}
        if e.channel == "sms":
            fields = {"MessageSid": self.sid, "MessageStatus": e.status}
        optional = {
            "SequenceNumber": e.sequence_number,
            "CallDuration": e.duration,
            "AnsweredBy": e.answered_by,
            "ErrorCode": e.error_code,
        }
        fields.update({k: str(v) for k, v in optional.items() if v is not None})
        return TwilioForm(fields, {"attempt": str(self.attempt_id)}, None)

    def expected(self) -> tuple[object, ...]:
        moved = on_status(self.held, self.event)
        if moved is None:
            h = self.held
            return (
                h.state.value,
                None,
                h.last_sequence_number,
                h.duration_seconds,
                h.answered_by,
                h.error_code,
                h.result,
            )
        return (moved.state.value, *(getattr(moved, c) for c in COLUMNS[1:]))


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


async def _seed(hooks: Hooks) -> list[Case]:
    """One attempt per (state, held variant, event), in its held state."""
    case = await hooks.case()
    party = case["parties"][0]
    cases, rows = [], []
    for state in AttemptState:
        for variant in HELD:
            held = Held(
                state,
                variant.error_code,
                variant.last_sequence_number,
                variant.answered_by,
                variant.result,
                variant.duration_seconds,
            )
            for event in EVENTS:
                c = Case(held, event, uuid.uuid4(), "XX" + uuid.uuid4().hex)
                cases.append(c)
                rows.append(
                    AttemptRow(
                        id=c.attempt_id,
                        case_id=uuid.UUID(case["id"]),
                        party_id=uuid.UUID(party["id"]),
                        contact_point_id=uuid.UUID(party["contact_points"][0]["id"]),
                        channel=event.channel,
                        state=state.value,
                        result=held.result,
                        # a `not_sent` attempt holds no sid: its callbacks name our id
                        provider_sid=None if state is AttemptState.NOT_SENT else c.sid,
                        at=NOW,
                        error_code=held.error_code,
                        last_sequence_number=held.last_sequence_number,
                        answered_by=held.answered_by,
                        duration_seconds=held.duration_seconds,
                    )
                )
    async with hooks.maker() as session:
        session.add_all(rows)
        await session.commit()
    return cases


async def _found(hooks: Hooks, cases: list[Case]) -> dict[uuid.UUID, tuple[object, ...]]:
    async with hooks.maker() as session:
        rows = await session.scalars(
            select(AttemptRow).where(AttemptRow.id.in_([c.attempt_id for c in cases]))
        )
        return {r.id: tuple(getattr(r, c) for c in COLUMNS) for r in rows}


def _differences(cases: list[Case], found: dict[uuid.UUID, tuple[object, ...]]) -> list[str]:
    return [
        f"{c.held} + {c.event}: rule {c.expected()}, path {found[c.attempt_id]}"
        for c in cases
        if found[c.attempt_id] != c.expected()
    ]


async def test_the_session_path_applies_the_rule_for_every_state_and_event(hooks: Hooks) -> None:
    cases = await _seed(hooks)
    for c in cases:
        sid, event = c.sid, c.event
        async with hooks.maker() as session:
            await callbacks.record_status(session, c.kind, c.form(), sid, event, NOW)
    assert _differences(cases, await _found(hooks, cases)) == []


async def test_the_generated_statement_applies_the_rule_for_every_state_and_event(
    hooks: Hooks,
) -> None:
    fast = hooks.api.app.state.webhook_fast_path
    if fast is None:
        pytest.skip("the one-statement path runs on PostgreSQL")
    assert isinstance(fast, FastStatusPath)
    cases = await _seed(hooks)
    for c in cases:
        await fast.record(c.kind, c.form(), c.sid, c.event, NOW)
    assert _differences(cases, await _found(hooks, cases)) == []


def test_the_cases_cover_every_state_and_every_provider_status() -> None:
    assert {e.status for e in EVENTS if e.channel == "voice"} == set(CALL_STATUS)
    assert {e.status for e in EVENTS if e.channel == "sms"} == set(MESSAGE_STATUS)
    moved = {on_status(Held(s), e) is not None for s in AttemptState for e in EVENTS}
    assert moved == {True, False}  # both outcomes occur: the paths are really exercised
