"""What the audit finds: violations by rule, and the report that holds them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

# "refused": the engine refused the attempt for a reason of another kind (a dispute or
# cease flag, a refused party, a closed case, no consent, ...): the detail names its rules.
# "record": a provider id on an attempt recorded as never placed (`not_sent`, ...).
RULES = (
    "cap",
    "window",
    "disclosure",
    "opt_out",
    "approval",
    "double_dial",
    "no_decision",
    "refused",
    "record",
)


@dataclass(frozen=True)
class Violation:
    attempt_id: uuid.UUID  # for "approval": the task's id
    case_id: uuid.UUID
    rule: str  # one of RULES
    detail: str


@dataclass(frozen=True)
class AuditReport:
    attempts_checked: int
    violations: tuple[Violation, ...]
    by_rule: Mapping[str, int] = field(default_factory=dict)  # counts, even past the cap
    tasks_checked: int = 0

    def ok(self) -> bool:
        return not self.violations and not self.by_rule


def rule_of(reason_rule: str) -> str:
    """The audit's category for one of the engine's reason ids."""
    if reason_rule.startswith("optout."):
        return "opt_out"
    if reason_rule.startswith("window.") or reason_rule in {
        "guardrail.window",
        "cn.window",
        "commercial.working_hours",
        "us.inconvenient_time",
    }:
        return "window"
    if reason_rule.startswith(("cap.", "guardrail.cap.", "spacing.")) or reason_rule in {
        "us.call_frequency",
        "cn.conversations_per_day",
        "cn.unanswered_per_method",
    }:
        return "cap"
    return "refused"
