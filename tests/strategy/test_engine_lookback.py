"""Attempts older than the strategy's lookback are counted by no rule: leaving them out of
the counted rows never changes a decision.

`decide` converts to timestamps and counts only the attempts at most
`CompiledStrategy.lookback` before its instant (the longest span a cap, spacing or
reachability rule of any tier looks back over); older attempts still give their facts
(conversations, refusals, wrong numbers, promises, disputes). These tests compare each
decision with the one an unbounded lookback gives, on histories that reach well past it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from strategy.compiled import compile_strategy
from strategy.engine import decide
from strategy.guardrails import get_profile
from strategy.history import HistoryIndex
from strategy.model import History, PartyRole, Result
from strategy.presets import load_preset
from tests.strategy.builders import SMS, VOICE, at, attempt, case, debtor, phone, third_party
from tests.strategy.test_properties import EXAMPLES, Scenario, scenarios

UNBOUNDED = timedelta(days=100_000)


def _stretched(history: History, factor: int, now_ts: float) -> History:
    """The same attempts, `factor` times further back from the instant."""
    attempts = []
    for a in history.attempts:
        back = timedelta(seconds=(now_ts - a.at.timestamp()) * (factor - 1))
        attempts.append(replace(a, at=a.at - back))
    return History(attempts=tuple(attempts), payments=history.payments)


@settings(max_examples=max(1, EXAMPLES * 2 // 5), deadline=None)
@given(scenarios(), st.sampled_from((1, 3, 8)), st.lists(st.integers(0, 3 * 24 * 60), max_size=2))
def test_the_lookback_never_changes_a_decision(
    s: Scenario, factor: int, minutes: list[int]
) -> None:
    compiled = compile_strategy(s.strategy, s.profile)
    unbounded = replace(compiled, lookback=UNBOUNDED)
    history = _stretched(s.history, factor, s.now.timestamp())
    for offset in [0, *minutes]:
        now = s.now + timedelta(minutes=offset)
        assert decide(s.case, history, now, compiled) == decide(s.case, history, now, unbounded)


def test_old_attempts_keep_their_facts_but_are_not_counted() -> None:
    # 60 days of daily attempts; long ago the second number was a wrong number, then (later)
    # the debtor spoke to us on it, and a third party refused further contact.
    now = at(2026, 12, 1, 10, 30)
    the_case = case(
        debtor(phone("m1"), phone("m2")),
        third_party("t"),
        due=now.date() - timedelta(days=20),
    )
    attempts = [
        attempt(now - timedelta(days=d, hours=3), "d", "m1", VOICE if d % 2 else SMS)
        for d in range(1, 60)
    ]
    attempts += [
        attempt(now - timedelta(days=50), "d", "m2", VOICE, Result.WRONG_NUMBER),
        attempt(now - timedelta(days=40), "d", "m2", VOICE, Result.RIGHT_PARTY),
        attempt(now - timedelta(days=30), "t", "t-m", VOICE, Result.REFUSAL),
    ]
    history = History(attempts=tuple(attempts))
    compiled = compile_strategy(load_preset("consumer-loan"), get_profile("cn-consumer"))
    roles = {"d": PartyRole.DEBTOR, "t": PartyRole.THIRD_PARTY}
    index = HistoryIndex(history, roles, now - compiled.lookback)
    # Most attempts are left out of the counted rows, none of their facts.
    assert index.first > 40
    assert len(index.ts) == len(attempts) - index.first < 10
    assert "m2" not in index.wrong_numbers  # the later conversation cleared it
    assert "t" in index.refused_parties
    decision = decide(the_case, history, now, compiled)
    assert decision == decide(the_case, history, now, replace(compiled, lookback=UNBOUNDED))
    refusal = decision.refusal_for("t-m", VOICE)
    assert refusal is not None and "party.refused" in refusal.rules
    assert decision.allowed_for("m2", VOICE) is not None  # no longer a wrong number
