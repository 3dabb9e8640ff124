"""The attempt state machine: forward only, final states are final."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.attempts import (
    CALL_STATUS,
    FINAL_STATES,
    MESSAGE_STATUS,
    TRANSITIONS,
    AttemptState,
    advance,
    is_final,
    sources,
)

ORDER = [
    AttemptState.PLANNED,
    AttemptState.QUEUED,
    AttemptState.RESERVED,
    AttemptState.DIALING,
    AttemptState.UNKNOWN,
    AttemptState.SENT,
    AttemptState.RINGING,
    AttemptState.IN_PROGRESS,
]


def test_every_state_has_its_transitions_written_down() -> None:
    assert set(TRANSITIONS) == set(AttemptState)


def test_final_states_go_nowhere() -> None:
    for state in FINAL_STATES:
        for target in AttemptState:
            assert advance(state, target) is None


def test_no_transition_goes_back_to_an_earlier_live_state() -> None:
    for state, targets in TRANSITIONS.items():
        if state in ORDER:
            for target in targets:
                if target in ORDER:
                    assert ORDER.index(target) > ORDER.index(state), (state, target)


def test_reordered_call_callbacks_end_completed() -> None:
    # Twilio may deliver "completed" before "ringing" and "in-progress".
    state = AttemptState.SENT
    for status in ["completed", "ringing", "in-progress", "ringing"]:
        state = advance(state, CALL_STATUS[status]) or state
    assert state is AttemptState.COMPLETED


def test_duplicate_sms_delivered_is_ignored() -> None:
    state = advance(AttemptState.SENT, MESSAGE_STATUS["delivered"])
    assert state is AttemptState.COMPLETED
    assert advance(state, MESSAGE_STATUS["delivered"]) is None
    assert advance(state, MESSAGE_STATUS["sent"]) is None


def test_an_ambiguous_create_is_reconciled_not_redialled() -> None:
    assert advance(AttemptState.RESERVED, AttemptState.UNKNOWN) is AttemptState.UNKNOWN
    assert advance(AttemptState.UNKNOWN, AttemptState.RESERVED) is None
    assert advance(AttemptState.UNKNOWN, AttemptState.NOT_SENT) is AttemptState.NOT_SENT


@given(st.lists(st.sampled_from(list(AttemptState)), max_size=30))
def test_any_event_sequence_never_leaves_a_final_state(events: list[AttemptState]) -> None:
    state = AttemptState.PLANNED
    reached_final = False
    for event in events:
        new = advance(state, event)
        if reached_final:
            assert new is None
        if new is not None:
            state = new
            reached_final = reached_final or is_final(state)


def test_the_sources_of_each_target_are_derived_from_the_one_table() -> None:
    """The SQL movers (webhooks' statement, the worker) move an attempt only from states
    TRANSITIONS allows: the fence's `dialing` included (a callback can arrive before the
    worker records `sent`)."""
    for target in AttemptState:
        expected = tuple(sorted(s.value for s in AttemptState if advance(s, target) is not None))
        assert sources(target) == expected
    assert AttemptState.DIALING.value in sources(AttemptState.SENT)
    assert AttemptState.DIALING.value not in sources(AttemptState.NOT_SENT)
