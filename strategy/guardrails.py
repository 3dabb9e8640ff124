"""Guardrail profiles: the legal ceilings no strategy can widen (see shared/compliance.md).

Each number carries its source, so a lawyer can check and amend this one file. The
engine applies the active profile at every decision; `validate_strategy` rejects a
document that asks for more, naming each clause it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from strategy.document import Action, Cap, Counted, Scope, Span
from strategy.model import Channel, Disclosure, PartyRole

EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Clause:
    """A rule of a profile, with the text it comes from."""

    id: str
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class ProfileCap:
    cap: Cap
    clause: Clause


@dataclass(frozen=True, slots=True)
class GuardrailProfile:
    name: str
    version: str
    description: str
    # Local hours in which collection contact may start, every day, in the party's zone.
    window: Span
    window_clause: Clause
    caps: tuple[ProfileCap, ...] = ()
    # Highest disclosure per role; roles absent here may be told everything.
    max_disclosure: dict[PartyRole, Disclosure] = field(default_factory=dict)
    disclosure_clause: Clause | None = None
    # Third parties only when the debtor cannot be reached.
    third_party_only_when_debtor_unreachable: bool = False
    third_party_clause: Clause | None = None
    # A third party is contacted once, unless they asked for a call back.
    third_party_once: bool = False
    third_party_once_clause: Clause | None = None
    # Someone who refused further contact is never contacted again.
    refusal_is_final: bool = True
    refusal_clause: Clause | None = None
    # Hours after a right-party conversation during which no call is placed.
    quiet_hours_after_conversation: float = 0
    quiet_channels: frozenset[Channel] = frozenset()
    quiet_clause: Clause | None = None
    # Channels that need the contact point's prior express consent.
    consent_required: frozenset[Channel] = frozenset()
    consent_clause: Clause | None = None
    # Once represented, contact the attorney only.
    attorney_only_when_represented: bool = False
    attorney_clause: Clause | None = None
    voicemail_max_disclosure: Disclosure = Disclosure.IDENTITY
    opt_out_text_required: frozenset[Channel] = frozenset()
    # Escalations that never run without a recorded approver.
    approval_required: frozenset[Action] = frozenset(
        {
            Action.ACCOUNT_LOCK,
            Action.DEMAND_LETTER,
            Action.STATEMENT_OF_ACCOUNT,
            Action.LAWYER_LETTER,
        }
    )
    approval_clause: Clause = Clause(
        "approval",
        "account lock and formal letters need the owner's approval",
        "source document, 账款催收 §二; compliance.md (commercial)",
    )
    record_retention_years: int = 2


# --- cn-consumer --------------------------------------------------------------------------
_CN_WINDOW = Clause(
    "cn.window",
    "no collection contact 22:00-08:00 debtor local time",
    "GB/T 45251-2025; CBA guideline 2026-01-30",
)
_CN_CONVERSATIONS = Clause(
    "cn.conversations_per_day",
    "at most 3 effective conversations with a debtor per day",
    "GB/T 45251-2025",
)
_CN_UNANSWERED = Clause(
    "cn.unanswered_per_method",
    "at most 6 unanswered attempts on one contact method per day",
    "CBA guideline 2026",
)
_CN_THIRD = Clause(
    "cn.third_party",
    "unrelated third parties only when the debtor cannot be reached, only to ask for contact"
    " details or a call back, never any financial information",
    "GB/T 45251-2025; CBA 2026; NIFA convention arts. 14, 18",
)
_CN_REFUSAL = Clause(
    "cn.third_party_refusal",
    "a third party's refusal stops all further contact with that person",
    "NIFA convention art. 18; CBA 2026",
)

CN_CONSUMER = GuardrailProfile(
    name="cn-consumer",
    version="2026-01",
    description="China, personal consumer credit",
    window=Span.model_validate("08:00-22:00"),  # GB/T 45251-2025: none 22:00-08:00
    window_clause=_CN_WINDOW,
    caps=(
        # GB/T 45251-2025: at most 3 effective conversations with a debtor per day
        ProfileCap(
            Cap(
                scope=Scope.PARTY,
                count=Counted.CONVERSATIONS,
                limit=3,
                local_days=1,
                roles=frozenset({PartyRole.DEBTOR}),
            ),
            _CN_CONVERSATIONS,
        ),
        # CBA guideline 2026: at most 6 unanswered attempts per contact method per day
        ProfileCap(
            Cap(scope=Scope.CONTACT_POINT, count=Counted.UNANSWERED, limit=6, local_days=1),
            _CN_UNANSWERED,
        ),
    ),
    max_disclosure={PartyRole.THIRD_PARTY: Disclosure.NONE},
    disclosure_clause=_CN_THIRD,
    third_party_only_when_debtor_unreachable=True,
    third_party_clause=_CN_THIRD,
    refusal_is_final=True,
    refusal_clause=_CN_REFUSAL,
    voicemail_max_disclosure=Disclosure.IDENTITY,
    record_retention_years=2,  # CBA 2026; 2011 credit-card rules art. 68
)

# --- us-consumer --------------------------------------------------------------------------
_US_WINDOW = Clause(
    "us.inconvenient_time",
    "no contact before 08:00 or after 21:00 at the consumer's location; where uncertain,"
    " only hours convenient in every possible zone",
    "12 CFR 1006.6(b)(1)(i)",
)
_US_SEVEN_IN_SEVEN = Clause(
    "us.call_frequency",
    "more than 7 calls in 7 consecutive days about one debt to one person is presumed harassment",
    "12 CFR 1006.14(b)(2)(i)",
)
_US_QUIET = Clause(
    "us.call_after_conversation",
    "a call within 7 days after a telephone conversation about the debt is presumed harassment",
    "12 CFR 1006.14(b)(2)(ii)",
)
_US_THIRD = Clause(
    "us.third_party",
    "third parties: location information only; never say the person owes a debt",
    "15 USC 1692b; 12 CFR 1006.10",
)
_US_ONCE = Clause(
    "us.third_party_once",
    "contact a third party once unless asked to call back",
    "15 USC 1692b(3)",
)
_US_CONSENT = Clause(
    "us.tcpa_consent",
    "autodialled or prerecorded calls and texts to mobiles need prior express consent per number",
    "TCPA 47 USC 227(b)(1)(A)",
)
_US_ATTORNEY = Clause(
    "us.attorney",
    "once the consumer is represented by an attorney, contact the attorney only",
    "15 USC 1692c(a)(2)",
)
_US_REFUSAL = Clause(
    "us.refusal",
    "a person who asked not to be contacted is not contacted again",
    "15 USC 1692c(c); 12 CFR 1006.6(c)",
)

_US_CALL_CAP = Cap(
    scope=Scope.PARTY,
    count=Counted.ATTEMPTS,
    limit=7,
    local_days=7,
    channels=frozenset({Channel.VOICE}),
)

US_CONSUMER = GuardrailProfile(
    name="us-consumer",
    version="2026-01",
    description="USA, consumer debt: FDCPA, Regulation F, TCPA",
    window=Span.model_validate("08:00-21:00"),  # 12 CFR 1006.6(b)(1)(i)
    window_clause=_US_WINDOW,
    caps=(ProfileCap(_US_CALL_CAP, _US_SEVEN_IN_SEVEN),),  # 12 CFR 1006.14(b)(2)(i)
    max_disclosure={PartyRole.THIRD_PARTY: Disclosure.NONE},
    disclosure_clause=_US_THIRD,
    third_party_once=True,
    third_party_once_clause=_US_ONCE,
    refusal_is_final=True,
    refusal_clause=_US_REFUSAL,
    quiet_hours_after_conversation=7 * 24,  # 12 CFR 1006.14(b)(2)(ii)
    quiet_channels=frozenset({Channel.VOICE}),
    quiet_clause=_US_QUIET,
    consent_required=frozenset({Channel.VOICE, Channel.SMS}),
    consent_clause=_US_CONSENT,
    attorney_only_when_represented=True,
    attorney_clause=_US_ATTORNEY,
    voicemail_max_disclosure=Disclosure.IDENTITY,  # 12 CFR 1006.2(j) limited-content message
    opt_out_text_required=frozenset({Channel.SMS, Channel.EMAIL}),  # 12 CFR 1006.6(e)
    record_retention_years=3,  # 12 CFR 1006.100
)

_MA_CAP = Clause(
    "us-ma.calls_and_texts",
    "at most 2 calls or texts per 7 days per debt (Massachusetts overlay)",
    "940 CMR 7.04(1)(f)",
)
US_CONSUMER_MA = GuardrailProfile(
    **{
        **{f: getattr(US_CONSUMER, f) for f in US_CONSUMER.__dataclass_fields__},
        "name": "us-consumer-ma",
        "description": "USA consumer debt with the Massachusetts overlay",
        "caps": (
            *US_CONSUMER.caps,
            ProfileCap(
                Cap(
                    scope=Scope.CASE,
                    count=Counted.ATTEMPTS,
                    limit=2,
                    local_days=7,
                    channels=frozenset({Channel.VOICE, Channel.SMS}),
                ),
                _MA_CAP,
            ),
        ),
    }
)

# --- commercial ---------------------------------------------------------------------------
COMMERCIAL = GuardrailProfile(
    name="commercial",
    version="2026-01",
    description="B2B receivables: the source's cadence applies; hours and opt-out still hold",
    window=Span.model_validate("07:00-21:00"),  # working hours; no statute, a house ceiling
    window_clause=Clause(
        "commercial.working_hours",
        "business contact within 07:00-21:00 local time",
        "compliance.md (commercial): working-hours windows still hold",
    ),
    max_disclosure={},
    refusal_is_final=True,
    refusal_clause=Clause(
        "commercial.refusal",
        "a contact who refused further contact is not contacted again",
        "compliance.md (always): opt-out and cease",
    ),
    voicemail_max_disclosure=Disclosure.IDENTITY,
    record_retention_years=3,
)

PROFILES: dict[str, GuardrailProfile] = {
    p.name: p for p in (CN_CONSUMER, US_CONSUMER, US_CONSUMER_MA, COMMERCIAL)
}


def get_profile(name: str) -> GuardrailProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown guardrail profile {name!r} (known: {known})") from None


def window_start_end(profile: GuardrailProfile) -> tuple[time, time]:
    return profile.window.start, profile.window.end
