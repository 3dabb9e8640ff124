"""An agent's states move by one rule; endpoints are a client identity, a number or a SIP URI."""

from __future__ import annotations

import pytest

from dialer.domain.agents import (
    AGENT_MOVES,
    BUSY,
    SELF_SET,
    AgentState,
    EndpointError,
    EndpointKind,
    may_move,
    parse_endpoint,
)


def test_a_call_goes_reserved_on_call_wrap_up_then_available() -> None:
    path = [AgentState.AVAILABLE, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP]
    for current, target in zip(path, [*path[1:], AgentState.AVAILABLE], strict=True):
        assert may_move(current, target), (current, target)


def test_no_call_is_offered_outside_available_and_wrap_up_is_never_skipped() -> None:
    offered = [s for s in AgentState if may_move(s, AgentState.RESERVED)]
    assert offered == [AgentState.AVAILABLE]
    assert not may_move(AgentState.ON_CALL, AgentState.AVAILABLE)
    assert not may_move(AgentState.ON_CALL, AgentState.RESERVED)


def test_every_state_can_go_offline_and_the_table_covers_every_state() -> None:
    assert set(AGENT_MOVES) == set(AgentState)
    for state in AgentState:
        assert state is AgentState.OFFLINE or may_move(state, AgentState.OFFLINE)
    assert not SELF_SET & BUSY


@pytest.mark.parametrize(
    ("text", "kind", "address"),
    [
        ("client:agent-7", EndpointKind.CLIENT, "agent-7"),
        ("+8613800138000", EndpointKind.PHONE, "+8613800138000"),
        ("+1 (415) 555-2671", EndpointKind.PHONE, "+14155552671"),
        ("sip:alice@pbx.example.com:5060", EndpointKind.SIP, "sip:alice@pbx.example.com:5060"),
    ],
)
def test_endpoints_parse(text: str, kind: EndpointKind, address: str) -> None:
    endpoint = parse_endpoint(text)
    assert (endpoint.kind, endpoint.address) == (kind, address)


@pytest.mark.parametrize(
    "text", ["", "client:", "client:has space", "12345", "+999", "sip:nohost", "mailto:a@b.c"]
)
def test_bad_endpoints_are_refused_with_the_forms_named(text: str) -> None:
    with pytest.raises(EndpointError):
        parse_endpoint(text)
