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

Final states: completed, failed, refused, cancelled, not_sent. One exception, in the same
rule (`next_states`): a `failed` the reconciler inferred may still become `completed` when
the provider later says it was delivered (`CORRECTIONS`).
"""

from __future__ import annotations

from enum import StrEnum


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
