"""A preview call the agent started at the desk: the verified debtor is put through to
that agent, by the same bridge as a progressive call's."""

from __future__ import annotations

from typing import Any

import pytest

from dialer.domain.agents import AgentState
from tests.dialer.callbacks.test_agent_bridge import _agent, _agents, _call, _end, _press
from tests.dialer.twilio_forms import Hooks, configure


@pytest.fixture
def hooks(api: Any) -> Hooks:
    return configure(api)


async def test_a_started_preview_call_is_bridged_to_the_agent_who_started_it(
    hooks: Hooks,
) -> None:
    attempt = await _call(hooks, "preview", wrap_up_limit_s=60)
    await _agent(hooks, "bob", "client:bob", AgentState.AVAILABLE)
    await _agent(hooks, "alice", "client:alice", AgentState.RESERVED, holds=attempt)
    twiml = await _press(hooks, attempt, "1")
    assert "<Dial><Client>alice</Client></Dial>" in twiml, twiml
    agents = await _agents(hooks)
    assert (agents["alice"].state, agents["bob"].state) == ("on_call", "available")
    await _end(hooks, attempt)
    assert (await _agents(hooks))["alice"].state == "wrap_up"
