"""Save-time check of a strategy document against its guardrail profile.

`validate_strategy` lists every place where a document asks for more than the profile
allows, each naming the profile clause it breaks. An empty list means the document only
narrows the profile. The engine applies the profile again at every decision; this check
exists so a supervisor learns of a bad document when saving it, not when nothing dials.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from strategy.document import Cap, ContactWhen, Counted, Scope, Span, Strategy, Tier
from strategy.guardrails import Clause, GuardrailProfile, ProfileCap
from strategy.model import Channel, Disclosure, PartyRole

# Broader scopes first: a cap on a whole case also bounds each party and contact point.
_SCOPE_BREADTH = {Scope.CASE: 0, Scope.PARTY: 1, Scope.CONTACT_POINT: 2}
_SCOPE_WORDS = {Scope.CASE: "case", Scope.PARTY: "party", Scope.CONTACT_POINT: "contact point"}
_COUNT_WORDS = {
    Counted.ATTEMPTS: "attempts",
    Counted.CONVERSATIONS: "conversations",
    Counted.UNANSWERED: "unanswered attempts",
    Counted.OCCASIONS: "contact occasions",
}
_DISCLOSURE_FIELDS = ("disclosure", "disclosure_if_knows_debt", "disclosure_if_debtor_unreachable")
# Third-party contact rules that do not wait for the debtor to be unreachable.
_THIRD_PARTY_TOO_EARLY = frozenset({ContactWhen.ALWAYS, ContactWhen.IF_KNOWS_OF_DEBT})

PROFILE_MISMATCH = Clause(
    "profile.mismatch",
    "a strategy is validated and run under the profile its portfolio uses",
    "compliance.md: profiles are chosen per portfolio by an administrator",
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One place where the document asks for more than its profile allows."""

    tier: str | None  # the tier's id; None for the document as a whole
    path: str  # where in the document, e.g. "tiers[2].parties.third_party.disclosure"
    clause: str  # the profile clause id, e.g. "cn.third_party"
    source: str  # the clause's legal or house source
    message: str  # what the document asks for and what the ceiling is


def validate_strategy(strategy: Strategy, profile: GuardrailProfile) -> list[Violation]:
    """Every place `strategy` asks for more than `profile` allows, in document order."""
    found: list[Violation] = []
    if strategy.profile != profile.name:
        found.append(
            _violation(
                None,
                "profile",
                PROFILE_MISMATCH,
                f"strategy {strategy.name!r} names profile {strategy.profile!r}"
                f" but is validated against {profile.name!r}",
            )
        )
    for index, tier in enumerate(strategy.tiers):
        at = f"tiers[{index}]"
        found.extend(_windows(tier, at, profile))
        found.extend(_caps(tier, at, profile))
        found.extend(_disclosure(tier, at, profile))
        found.extend(_third_party(tier, at, profile))
        found.extend(_quiet_period(tier, at, profile))
        found.extend(_approvals(tier, at, profile))
    return found


def tier_channels(tier: Tier) -> frozenset[Channel]:
    """Every channel a tier may use: its own and any a party rule adds."""
    used = set(tier.channels)
    for rule in tier.parties.values():
        if rule.channels is not None:
            used |= rule.channels
    return frozenset(used)


def cap_implies(tier_cap: Cap, profile_cap: Cap) -> bool:
    """True when obeying `tier_cap` can never break `profile_cap`.

    The tier cap must count at least what the profile cap counts (same or broader scope,
    channels and roles; attempts cover every kind, occasions only occasions: several
    attempts share one), over a period of the same kind. A
    profile period of P split into ceil(P / p) consecutive tier periods of p holds at most
    limit x ceil(P / p) attempts (each block is a tier window ending on its last attempt,
    which the tier cap allowed), so 1 call a local day implies 7 in 7 local days.
    """
    bound = _bound(tier_cap, profile_cap)
    return (
        _SCOPE_BREADTH[tier_cap.scope] <= _SCOPE_BREADTH[profile_cap.scope]
        and _covers(tier_cap.channels, profile_cap.channels)
        and _covers(tier_cap.roles, profile_cap.roles)
        and tier_cap.count in (Counted.ATTEMPTS, profile_cap.count)
        and bound is not None
        and bound <= profile_cap.limit
    )


_T = TypeVar("_T")


def _covers(wider: frozenset[_T] | None, narrower: frozenset[_T] | None) -> bool:
    # None means "all of them".
    if wider is None:
        return True
    return narrower is not None and narrower <= wider


def _bound(tier_cap: Cap, profile_cap: Cap) -> int | None:
    """Most attempts the tier cap lets into one profile period; None if periods differ in kind."""
    if profile_cap.local_days is not None:
        if tier_cap.local_days is None:
            return None
        return tier_cap.limit * math.ceil(profile_cap.local_days / tier_cap.local_days)
    assert profile_cap.rolling_hours is not None  # Cap guarantees exactly one period
    if tier_cap.rolling_hours is None:
        return None
    # A rolling window of h contains at most ceil(H / h) + 1 disjoint... keep it exact:
    # blocks of h cover H with ceil(H / h) windows, each closed on its last attempt.
    return tier_cap.limit * math.ceil(profile_cap.rolling_hours / tier_cap.rolling_hours)


def _violation(tier: Tier | None, path: str, clause: Clause, message: str) -> Violation:
    return Violation(
        tier=None if tier is None else tier.id,
        path=path,
        clause=clause.id,
        source=clause.source,
        message=message,
    )


def _fallback(profile: GuardrailProfile, topic: str) -> Clause:
    # A profile that sets a ceiling but forgot its clause still gets a named violation.
    return Clause(f"{profile.name}.{topic}", topic, f"guardrail profile {profile.name}")


# --- windows --------------------------------------------------------------------------------
def _windows(tier: Tier, at: str, profile: GuardrailProfile) -> Iterator[Violation]:
    ceiling = profile.window
    if not tier.windows:
        yield _violation(
            tier,
            f"{at}.windows",
            profile.window_clause,
            f"tier {tier.id!r} has no windows, so allows contact at any time;"
            f" {profile.name} allows {ceiling} local time",
        )
        return
    for day, spans in tier.windows.items():
        for index, span in enumerate(spans):
            if not _inside(span, ceiling):
                yield _violation(
                    tier,
                    f"{at}.windows.{day}[{index}]",
                    profile.window_clause,
                    f"tier {tier.id!r} allows contact on {day} {span};"
                    f" {profile.name} allows {ceiling} local time",
                )


def _inside(span: Span, ceiling: Span) -> bool:
    return ceiling.start <= span.start and span.end <= ceiling.end


# --- caps -----------------------------------------------------------------------------------
def _caps(tier: Tier, at: str, profile: GuardrailProfile) -> Iterator[Violation]:
    used = tier_channels(tier)
    for required in profile.caps:
        if required.cap.channels is not None and not (required.cap.channels & used):
            continue  # the tier never uses the channels this cap counts
        if any(cap_implies(cap, required.cap) for cap in tier.caps):
            continue
        yield _violation(tier, f"{at}.caps", required.clause, _cap_message(tier, required, profile))


def _cap_message(tier: Tier, required: ProfileCap, profile: GuardrailProfile) -> str:
    cap = required.cap
    # The most the tier lets into one profile period: the lowest bound among caps that
    # count the same things over a comparable period, or no limit at all.
    bounds = [
        b
        for c in tier.caps
        if cap_implies(c.model_copy(update={"limit": 0}), cap) and (b := _bound(c, cap)) is not None
    ]
    asked = f"up to {min(bounds)}" if bounds else "unlimited"
    return (
        f"tier {tier.id!r} allows {asked} {_cap_phrase(cap)};"
        f" {profile.name} allows {cap.limit} ({required.clause.text})"
    )


def _cap_phrase(cap: Cap) -> str:
    what = _COUNT_WORDS[cap.count]
    if cap.channels:
        what = f"{'/'.join(sorted(cap.channels))} {what}"
    if cap.roles:
        what = f"{what} with a {'/'.join(sorted(cap.roles))}"
    if cap.local_days is not None:
        period = "day" if cap.local_days == 1 else f"{cap.local_days} local days"
    else:
        period = f"{cap.rolling_hours:g} rolling hours"
    return f"{what} per {_SCOPE_WORDS[cap.scope]} per {period}"


# --- disclosure and third parties -----------------------------------------------------------
def _disclosure(tier: Tier, at: str, profile: GuardrailProfile) -> Iterator[Violation]:
    clause = profile.disclosure_clause or _fallback(profile, "disclosure")
    for role, ceiling in profile.max_disclosure.items():
        rule = tier.parties.get(role)
        if rule is None:
            continue
        for name in _DISCLOSURE_FIELDS:
            level: Disclosure | None = getattr(rule, name)
            if level is not None and level.rank > ceiling.rank:
                yield _violation(
                    tier,
                    f"{at}.parties.{role}.{name}",
                    clause,
                    f"tier {tier.id!r} sets {name} {level} for {role};"
                    f" {profile.name} allows at most {ceiling}",
                )


def _third_party(tier: Tier, at: str, profile: GuardrailProfile) -> Iterator[Violation]:
    if not profile.third_party_only_when_debtor_unreachable:
        return
    rule = tier.parties.get(PartyRole.THIRD_PARTY)
    if rule is not None and rule.contact in _THIRD_PARTY_TOO_EARLY:
        yield _violation(
            tier,
            f"{at}.parties.third_party.contact",
            profile.third_party_clause or _fallback(profile, "third_party"),
            f"tier {tier.id!r} contacts third parties {rule.contact};"
            f" {profile.name} allows them only when the debtor cannot be reached",
        )


# --- quiet period and approvals -------------------------------------------------------------
def _quiet_period(tier: Tier, at: str, profile: GuardrailProfile) -> Iterator[Violation]:
    # The profile counts calendar days, the conversation's day first: a tier's rolling
    # hours cover them from any hour of that day only when they span whole days.
    required = profile.quiet_days_after_conversation * 24
    if required <= 0 or not (profile.quiet_channels & tier_channels(tier)):
        return
    if tier.quiet_hours_after_conversation < required:
        channels = "/".join(sorted(profile.quiet_channels))
        yield _violation(
            tier,
            f"{at}.quiet_hours_after_conversation",
            profile.quiet_clause or _fallback(profile, "quiet_period"),
            f"tier {tier.id!r} waits {tier.quiet_hours_after_conversation:g} hours after a"
            f" conversation before the next {channels} contact;"
            f" {profile.name} requires {required:g}",
        )


def _approvals(tier: Tier, at: str, profile: GuardrailProfile) -> Iterator[Violation]:
    for index, escalation in enumerate(tier.escalations):
        if escalation.action in profile.approval_required and not escalation.requires_approval:
            yield _violation(
                tier,
                f"{at}.escalations[{index}].requires_approval",
                profile.approval_clause,
                f"tier {tier.id!r} runs {escalation.action} without approval;"
                f" {profile.name} requires a recorded approver",
            )
