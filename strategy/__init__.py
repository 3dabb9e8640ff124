"""The strategy engine: tiers, contact rules, guardrails and explained decisions.

A pure domain package: no I/O, no clock reads, no framework. `now` is always a parameter.
"""

from strategy.compiled import CompiledStrategy, compile_strategy
from strategy.decision import AllowedAction, Candidate, Decision, Reason, Refusal, TaskRequest
from strategy.document import Strategy, strategy_json_schema
from strategy.engine import decide
from strategy.guardrails import PROFILES, GuardrailProfile, get_profile

__all__ = [
    "PROFILES",
    "AllowedAction",
    "Candidate",
    "CompiledStrategy",
    "Decision",
    "GuardrailProfile",
    "Reason",
    "Refusal",
    "Strategy",
    "TaskRequest",
    "compile_strategy",
    "decide",
    "get_profile",
    "strategy_json_schema",
]
