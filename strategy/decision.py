"""What the engine answers: allowed actions, refused candidates with every reason, tasks.

The records a decision holds many of (candidates, allowed actions, refusals, reasons,
tasks) are typed named tuples: immutable values, cheaper to build than frozen dataclasses
(docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from strategy.document import Action
from strategy.model import Channel, Disclosure, PartyRole


class Reason(NamedTuple):
    """One rule's verdict against a candidate. `rule` is a stable dotted id
    (`cap.contact_point.attempts`, `window.local_time`, `optout.channel`, ...)."""

    rule: str
    message: str
    next_allowed: datetime | None = None  # this rule alone would pass then
    source: str | None = None  # the guardrail clause, when the profile imposed it


class Candidate(NamedTuple):
    party_id: str
    party_role: PartyRole
    contact_point_id: str
    channel: Channel


class AllowedAction(NamedTuple):
    candidate: Candidate
    disclosure: Disclosure
    template_key: str
    window_start: datetime
    window_end: datetime
    allowed_by: str  # "strategy <name> v<version> tier <id> under profile <name>"
    zones: tuple[str, ...]
    voicemail_disclosure: Disclosure = Disclosure.IDENTITY
    append_opt_out: bool = False
    preference: int = 0
    preference_notes: tuple[str, ...] = ()

    @property
    def party_id(self) -> str:
        return self.candidate.party_id

    @property
    def contact_point_id(self) -> str:
        return self.candidate.contact_point_id

    @property
    def channel(self) -> Channel:
        return self.candidate.channel


class Refusal(NamedTuple):
    candidate: Candidate
    reasons: tuple[Reason, ...]
    next_allowed: datetime | None  # every reason passes then, if nothing else changes
    # What the candidate would be told if it were allowed now (the tier's disclosure for
    # its role, capped by the profile, raised while the debtor is unreachable where the
    # tier says so): a refusal shows what it would have said.
    disclosure: Disclosure = Disclosure.NONE

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.reasons)


class TaskRequest(NamedTuple):
    """An escalation the service turns into a task exactly once per (case, key)."""

    key: str
    action: Action
    requires_approval: bool
    reason: str


# The engine builds a Decision by setting its slots (`strategy.engine._new_decision`), not
# through the generated `__init__`: a field added here must be added there too (a test in
# tests/strategy/test_engine_caches.py counts the fields and compares the two).
@dataclass(frozen=True, slots=True)
class Decision:
    case_id: str
    at: datetime
    strategy: str
    strategy_version: int
    profile: str
    tier: str | None
    days_past_due: int
    allowed: tuple[AllowedAction, ...] = ()
    refused: tuple[Refusal, ...] = ()
    case_reasons: tuple[Reason, ...] = ()  # reasons that block the whole case
    tasks: tuple[TaskRequest, ...] = ()
    guidance: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # What the engine decided on that is less than it should be (rule ids as reasons use:
    # `calendar.no_published_schedule`): the decision stands, the warning makes it visible.
    warnings: tuple[Reason, ...] = ()

    def allowed_for(self, contact_point_id: str, channel: Channel) -> AllowedAction | None:
        for action in self.allowed:
            if action.contact_point_id == contact_point_id and action.channel == channel:
                return action
        return None

    def refusal_for(self, contact_point_id: str, channel: Channel) -> Refusal | None:
        for refusal in self.refused:
            c = refusal.candidate
            if c.contact_point_id == contact_point_id and c.channel == channel:
                return refusal
        return None
