"""The engine's internal records: a rule's verdict, a candidate, and a tier's facts about
a kind of candidate (the per-instant records are in `strategy.context`).

Plain slotted classes (compiled by mypyc, C structs): a decision builds and reads dozens.
The public records a decision returns are in `strategy.decision`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from strategy.decision import Candidate, Reason
from strategy.guardrails import Clause
from strategy.model import Channel, ContactPoint, Disclosure, Party, PartyRole


class RuleReason:
    """A rule's verdict with its next-allowed instant as a timestamp. Its public `Reason`
    is built on first need and kept with it (a reason a cache keeps is converted once)."""

    __slots__ = ("message", "next", "public", "rule", "source")

    def __init__(
        self, rule: str, message: str, nxt: float | None = None, source: str | None = None
    ) -> None:
        self.rule = rule
        self.message = message
        self.next = nxt  # this rule alone would pass then
        self.source = source  # the guardrail clause, when the profile imposed it
        self.public: Reason | None = None


class Cand:
    """One candidate (party x contact point x channel) and what is known of it whatever
    the tier and the instant."""

    __slots__ = (
        "channel",
        "facts_key",
        "groups",
        "party",
        "point",
        "public",
        "static",
        "zone_key",
        "zones",
    )

    def __init__(
        self,
        party: Party,
        point: ContactPoint,
        channel: Channel,
        zones: tuple[str, ...],
        static: tuple[RuleReason, ...],
        zone_key: int,
        facts_key: tuple[PartyRole, bool, Channel],
        groups: tuple[str, str, None],
        public: Candidate,
    ) -> None:
        self.party = party
        self.point = point
        self.channel = channel
        self.zones = zones
        self.static = static  # reasons that depend on neither the tier nor the instant
        self.zone_key = zone_key  # the same int for candidates with equal zones
        self.facts_key = facts_key  # (role, knows of the debt, channel)
        # A rule's group by scope code: (contact point id, party id, None for the case).
        self.groups = groups
        self.public = public


@dataclass(frozen=True, slots=True)
class TierFacts:
    """What a tier says of a kind of candidate (party role, knows of the debt, channel),
    whatever the instant."""

    reasons: tuple[RuleReason, ...]
    needs_unreachable: bool  # the tier contacts this party only if the debtor is unreachable
    guard_unreachable: bool  # the profile says the same
    disclosure: Disclosure
    raised: Disclosure | None  # disclosure once the debtor is unreachable
    cap_ids: frozenset[int]  # indices into the tier's caps that bind this candidate
    zero_caps: tuple[int, ...]  # those with limit 0: they refuse whatever the count
    spacing: tuple[tuple[int, int], ...]  # (index in the tier's spacing, scope code)
    profile_quiet: bool
    # Whether the debtor's reachability matters to this candidate at all.
    reads_unreachable: bool
    reachable_reasons: tuple[RuleReason, ...]  # the refusals while the debtor can be reached


# A window verdict at an instant for a zone set: (inside, end of the window or its next
# opening, rule, message, whether the tier's own hours refused it: the profile's hours may
# then refuse it too, which the decision's refusal names).
WindowVerdict = tuple[bool, float | None, str, str, bool]

# Indices of the caps over their limit: per contact point id, per party id, for the case.
Exceeded = tuple[dict[str, list[int]], dict[str, list[int]], list[int]]
NOTHING_EXCEEDED: Final[Exceeded] = ({}, {}, [])


def source(clause: Clause | None) -> str | None:
    """A guardrail clause as a reason names it."""
    return f"{clause.id}: {clause.source}" if clause is not None else None
