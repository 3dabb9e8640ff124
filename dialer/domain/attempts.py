"""The attempt's state machine, written down in one place.

An attempt moves forward only. Dispatch, webhooks, the reconciler and agents all call
`advance`; an event that would move an attempt backwards or out of a final state is
ignored (and reported as ignored), which is what makes duplicated and reordered provider
callbacks harmless.

    planned -> queued -> reserved -> dialing -> sent -> ringing -> in_progress -> completed
                  \\          \\          \\       \\_____________________/-> failed
                   \\          \\          \\-> unknown (ambiguous) -> sent | failed | not_sent
                    \\          \\-> unknown -> not_sent (its lease ran out: never dialled)
                     \\          \\-> refused (an opt-out committed since the decision)
                      \\-> refused (the engine said no at dispatch) / cancelled

`dialing` is the fence: a worker moves its reserved attempt there with a compare-and-set
on the lease it holds, immediately before the provider call (`dialer.dispatch.worker`).
Only a `dialing` attempt can have reached the provider; a `reserved` one whose lease ran
out certainly did not (`dialer.dispatch.reconciler`).

A provider's status (`StatusEvent`) moves an attempt through `on_status`, the one rule:
the session path applies it in Python, PostgreSQL's one statement
(`dialer.callbacks.fastpath`) is generated from the same tables (`sources`, `RESULT_RANK`),
and a test runs both against it for every (state, event) pair. SQL movers elsewhere take
their "states that may move to X" from `sources`.

Final states: completed, failed, refused, cancelled, not_sent. One exception, in the same
rule (`next_states`): a `failed` the reconciler inferred may still become `completed` when
the provider later says it was delivered (`CORRECTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from strategy.model import Result


class AttemptState(StrEnum):
    PLANNED = "planned"  # recorded by the planner, not yet handed to the queue
    QUEUED = "queued"  # published to the queue (after the commit, via the outbox)
    RESERVED = "reserved"  # a worker decided yes and reserved it, under a lease
    DIALING = "dialing"  # the worker's fence passed: the provider call is under way
    UNKNOWN = "unknown"  # the provider call may or may not have happened: reconcile first
    SENT = "sent"  # the provider accepted it and gave an id
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"  # answered (voice) / sending (sms)
    COMPLETED = "completed"
    FAILED = "failed"
    REFUSED = "refused"  # the engine refused it at dispatch time; the reason is recorded
    CANCELLED = "cancelled"  # its campaign was cancelled before it was reserved
    NOT_SENT = "not_sent"  # the reconciler found the provider never received it


FINAL_STATES = frozenset(
    {
        AttemptState.COMPLETED,
        AttemptState.FAILED,
        AttemptState.REFUSED,
        AttemptState.CANCELLED,
        AttemptState.NOT_SENT,
    }
)

# Where each state may go next. Anything else is ignored.
TRANSITIONS: dict[AttemptState, frozenset[AttemptState]] = {
    AttemptState.PLANNED: frozenset(
        {AttemptState.QUEUED, AttemptState.RESERVED, AttemptState.REFUSED, AttemptState.CANCELLED}
    ),
    AttemptState.QUEUED: frozenset(
        {AttemptState.RESERVED, AttemptState.REFUSED, AttemptState.CANCELLED}
    ),
    AttemptState.RESERVED: frozenset(
        {
            AttemptState.DIALING,
            AttemptState.SENT,
            AttemptState.UNKNOWN,
            AttemptState.FAILED,
            AttemptState.REFUSED,
            AttemptState.RINGING,
            AttemptState.IN_PROGRESS,
            AttemptState.COMPLETED,
        }
    ),
    AttemptState.DIALING: frozenset(
        {
            AttemptState.SENT,
            AttemptState.UNKNOWN,
            AttemptState.FAILED,
            AttemptState.RINGING,
            AttemptState.IN_PROGRESS,
            AttemptState.COMPLETED,
        }
    ),
    AttemptState.UNKNOWN: frozenset(
        {
            AttemptState.SENT,
            AttemptState.RINGING,
            AttemptState.IN_PROGRESS,
            AttemptState.COMPLETED,
            AttemptState.FAILED,
            AttemptState.NOT_SENT,
        }
    ),
    AttemptState.SENT: frozenset(
        {
            AttemptState.RINGING,
            AttemptState.IN_PROGRESS,
            AttemptState.COMPLETED,
            AttemptState.FAILED,
        }
    ),
    AttemptState.RINGING: frozenset(
        {AttemptState.IN_PROGRESS, AttemptState.COMPLETED, AttemptState.FAILED}
    ),
    AttemptState.IN_PROGRESS: frozenset({AttemptState.COMPLETED, AttemptState.FAILED}),
}
for _final in FINAL_STATES:
    TRANSITIONS[_final] = frozenset()

# Provider states that mean "a provider holds this attempt": count it, and never dial again.
LIVE_OR_DONE = frozenset(TRANSITIONS) - {
    AttemptState.PLANNED,
    AttemptState.QUEUED,
    AttemptState.REFUSED,
    AttemptState.CANCELLED,
    AttemptState.NOT_SENT,
}


# A failure the reconciler concluded by itself (the provider knew nothing of the attempt,
# or an email it cannot look up) carries this error code. It is the one final state the
# provider's own later word may correct: a delivered callback that was lost or late moves
# it to `completed`. A failure the provider reported is never corrected.
INFERRED_FAILURE = "reconciled"
# An attempt a worker ended `not_sent` because no telephony is configured (no Twilio, no
# simulator): nothing left, it is final and never a contact; its campaign reports them.
NO_TELEPHONY = "no_telephony"
CORRECTIONS: dict[AttemptState, frozenset[AttemptState]] = {
    AttemptState.FAILED: frozenset({AttemptState.COMPLETED}),
}


# Before its provider id is recorded, an attempt can have a live call or message only
# while its create is under way or unresolved: the create's answer may come after the
# first callback.
AWAITING_SID = frozenset({AttemptState.DIALING, AttemptState.UNKNOWN})


def same_call(state: str | AttemptState, recorded_sid: str | None, sid: str | None) -> bool:
    """Whether a callback about call or message `sid` belongs to an attempt in `state`
    that recorded `recorded_sid`: the same id, or no id recorded yet and a create under
    way (`AWAITING_SID`). A signed callback naming another attempt, or one never dialled,
    is not applied to it (nor its keypresses, nor its status)."""
    if not sid:
        return False
    if recorded_sid is not None:
        return sid == recorded_sid
    return AttemptState(state) in AWAITING_SID


def next_states(current: AttemptState, *, inferred: bool = False) -> frozenset[AttemptState]:
    """Where `current` may go: `TRANSITIONS`, and when the reconciler inferred the current
    state (`inferred_by_reconciler`) also its `CORRECTIONS`. The one rule every mover uses."""
    allowed = TRANSITIONS[current]
    if inferred:
        allowed = allowed | CORRECTIONS.get(current, frozenset())
    return allowed


def inferred_by_reconciler(state: str | AttemptState, error_code: str | None) -> bool:
    """The attempt's (failed) state is the reconciler's conclusion, not the provider's."""
    return AttemptState(state) in CORRECTIONS and error_code == INFERRED_FAILURE


def can_advance(current: AttemptState, target: AttemptState, *, inferred: bool = False) -> bool:
    return target in next_states(current, inferred=inferred)


def advance(
    current: AttemptState, target: AttemptState, *, inferred: bool = False
) -> AttemptState | None:
    """The new state, or None when the event must be ignored (stale, duplicate, backwards).
    `inferred`: the current state is the reconciler's conclusion (`inferred_by_reconciler`)."""
    return target if target in next_states(current, inferred=inferred) else None


def is_final(state: AttemptState) -> bool:
    return state in FINAL_STATES


@cache
def sources(target: AttemptState, *, inferred: bool = False) -> tuple[str, ...]:
    """Every state the rule lets move to `target`, sorted (for SQL's `state IN (...)`); with
    `inferred`, only those it may leave because the reconciler inferred them (CORRECTIONS)."""
    found = {s for s in TRANSITIONS if target in next_states(s, inferred=inferred)}
    if inferred:
        found -= {s for s in TRANSITIONS if target in next_states(s)}
    return tuple(sorted(s.value for s in found))


# Twilio's CallStatus and MessageStatus values, mapped onto our states.
CALL_STATUS: dict[str, AttemptState] = {
    "queued": AttemptState.SENT,
    "initiated": AttemptState.SENT,
    "ringing": AttemptState.RINGING,
    "in-progress": AttemptState.IN_PROGRESS,
    "answered": AttemptState.IN_PROGRESS,
    "completed": AttemptState.COMPLETED,
    "busy": AttemptState.COMPLETED,
    "no-answer": AttemptState.COMPLETED,
    "canceled": AttemptState.FAILED,
    "failed": AttemptState.FAILED,
}
MESSAGE_STATUS: dict[str, AttemptState] = {
    "accepted": AttemptState.SENT,
    "scheduled": AttemptState.SENT,
    "queued": AttemptState.SENT,
    "sending": AttemptState.IN_PROGRESS,
    "sent": AttemptState.IN_PROGRESS,
    "delivered": AttemptState.COMPLETED,
    "read": AttemptState.COMPLETED,
    "undelivered": AttemptState.FAILED,
    "failed": AttemptState.FAILED,
    "canceled": AttemptState.FAILED,
}


# --- results: what an outcome says, and which says more ---------------------------------
RESULT_RANK: dict[Result, int] = {
    Result.PENDING: 0,
    Result.FAILED: 1,
    Result.NO_ANSWER: 1,
    Result.BUSY: 1,
    Result.DELIVERED: 1,
    Result.VOICEMAIL: 2,
    Result.THIRD_PARTY: 3,
    Result.RIGHT_PARTY: 3,
    Result.CALLBACK_REQUESTED: 4,
    Result.PROMISE_TO_PAY: 4,
    Result.REFUSAL: 4,
    Result.DISPUTE: 4,
    Result.WRONG_NUMBER: 4,
}

# A call's final status -> its result when nothing stronger is known.
CALL_RESULTS = {
    "busy": Result.BUSY,
    "no-answer": Result.NO_ANSWER,
    "failed": Result.FAILED,
    "canceled": Result.FAILED,
    "completed": Result.NO_ANSWER,  # answered, but nobody confirmed who they are
}
MESSAGE_RESULTS = {
    "delivered": Result.DELIVERED,
    "read": Result.DELIVERED,
    "undelivered": Result.FAILED,
    "failed": Result.FAILED,
    "canceled": Result.FAILED,
}
MACHINE_PREFIX = "machine"  # Twilio's AnsweredBy for a machine: machine_start, machine_end_*


def stronger(current: str, new: Result) -> str:
    """The result to keep: the new one unless the current one says more (results only get
    stronger: a keypad promise is not undone by the `completed` status that follows it)."""
    try:
        held = Result(current)
    except ValueError:
        return new.value
    return new.value if RESULT_RANK[new] >= RESULT_RANK[held] else held.value


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and (answered_by or "").startswith(MACHINE_PREFIX)


def call_result(status: str, answered_by: str | None) -> Result | None:
    """What a call's final status says of its result (None: nothing yet); a completed call
    a machine answered is a voicemail."""
    result = CALL_RESULTS.get(status)
    if result is not None and status == "completed" and is_machine(answered_by):
        return Result.VOICEMAIL
    return result


# --- the one status transition ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Held:
    """What an attempt holds that a provider status event reads."""

    state: AttemptState
    error_code: str | None = None
    last_sequence_number: int | None = None
    answered_by: str | None = None
    result: str = Result.PENDING.value
    duration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A provider's status of a call (`voice`) or message (`sms`), as plain values."""

    channel: str  # "voice" | "sms"
    status: str  # Twilio's CallStatus / MessageStatus, one of CALL_STATUS / MESSAGE_STATUS
    sequence_number: int | None = None
    duration: int | None = None
    answered_by: str | None = None
    error_code: str | None = None

    @property
    def target(self) -> AttemptState:
        return (CALL_STATUS if self.channel == "voice" else MESSAGE_STATUS)[self.status]

    @property
    def result(self) -> Result | None:
        """The result this status implies before what the attempt holds is known."""
        return (CALL_RESULTS if self.channel == "voice" else MESSAGE_RESULTS).get(self.status)


@dataclass(frozen=True, slots=True)
class Moved:
    """The attempt after a status event moved it: every column the event writes."""

    state: AttemptState
    provider_status: str
    last_sequence_number: int | None
    duration_seconds: int | None
    answered_by: str | None
    error_code: str | None
    result: str


def on_status(held: Held, event: StatusEvent) -> Moved | None:
    """The one rule for a provider status: None (nothing changes) when the event is stale
    (its SequenceNumber at or below the last applied) or the state may not move to its
    target (`next_states`); else what the attempt becomes. The provider's word corrects a
    failure the reconciler inferred, and clears its error code."""
    seq, last = event.sequence_number, held.last_sequence_number
    if seq is not None and last is not None and seq <= last:
        return None
    inferred = inferred_by_reconciler(held.state, held.error_code)
    new = advance(held.state, event.target, inferred=inferred)
    if new is None:
        return None
    answered_by = event.answered_by or held.answered_by
    implied = event.result
    if event.channel == "voice":
        implied = call_result(event.status, answered_by)
    held_error = None if held.error_code == INFERRED_FAILURE else held.error_code
    return Moved(
        state=new,
        provider_status=event.status,
        last_sequence_number=seq if seq is not None else last,
        duration_seconds=held.duration_seconds if event.duration is None else event.duration,
        answered_by=answered_by,
        error_code=event.error_code or held_error,
        result=held.result if implied is None else stronger(held.result, implied),
    )
