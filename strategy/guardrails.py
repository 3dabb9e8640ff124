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
    # Local calendar days, the conversation's day being the first, during which no call
    # follows a right-party conversation (12 CFR 1006.14(b)(2)(ii): "The date of the
    # telephone conversation is the first day of the seven-consecutive-day period").
    quiet_days_after_conversation: int = 0
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
    # The profile this one keeps every rule of, adding or narrowing some (a state overlay
    # of a federal profile): a strategy written for that profile may be decided under this
    # one, never the other way round.
    tightens: str | None = None


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
    "a call within 7 consecutive days after a telephone conversation about the debt, the"
    " conversation's date being the first day, is presumed harassment",
    "12 CFR 1006.14(b)(2)(ii)",
)
_US_THIRD = Clause(
    "us.third_party",
    "third parties: location information only; never say the person owes a debt",
    "15 USC 1692b; 12 CFR 1006.10",
)
_US_ONCE = Clause(
    "us.third_party_once",
    "contact a third party once unless they ask to be contacted again: one request, one call",
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
    quiet_days_after_conversation=7,  # 12 CFR 1006.14(b)(2)(ii), calendar days
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
        "tightens": "us-consumer",
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


def clauses(profile: GuardrailProfile) -> list[Clause]:
    """Every clause the profile enforces, once each, in a stable order."""
    candidates = [
        profile.window_clause,
        *(c.clause for c in profile.caps),
        profile.disclosure_clause,
        profile.third_party_clause,
        profile.third_party_once_clause,
        profile.refusal_clause,
        profile.quiet_clause,
        profile.consent_clause,
        profile.attorney_clause,
        profile.approval_clause,
    ]
    seen: dict[str, Clause] = {}
    for clause in candidates:
        if clause is not None and clause.id not in seen:
            seen[clause.id] = clause
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class Reading:
    """Where a rule's text allows more than one reading: the one the engine applies, why,
    and where in the code it is applied (docs/compliance.md lists them)."""

    rule: str  # a clause id or an engine rule id
    text: str  # what the law says, briefly
    reading: str
    why: str
    source: str
    code: str


READINGS: tuple[Reading, ...] = (
    Reading(
        "us.call_frequency",
        "more than 7 calls in 7 consecutive days",
        "7 local calendar days ending with today, in the consumer's zone (every candidate"
        " zone when uncertain): a cap of `local_days: 7`, not 168 rolling hours",
        "the official interpretation counts the period in days (comment 14(b)(2)(i)-1);"
        " the same days as the conversation rule below, so the two never disagree",
        "12 CFR 1006.14(b)(2)(i); comment 14(b)(2)(i)-1",
        "strategy/guardrails.py (_US_CALL_CAP), strategy/engine.py (_period)",
    ),
    Reading(
        "us.call_after_conversation",
        "no call within seven consecutive days after a telephone conversation",
        "the conversation's local day is day 1; calls resume at local midnight that starts"
        " day 8 (the latest such midnight over the candidate zones), not 168 hours later",
        'the rule says so: "The date of the telephone conversation is the first day of the'
        ' seven-consecutive-day period"; counting calendar days as the 7-in-7 cap does',
        "12 CFR 1006.14(b)(2)(ii)",
        "strategy/engine.py (_quiet, _quiet_end)",
    ),
    Reading(
        "us.third_party_once",
        'communicate with a third party no "more than once unless requested to do so'
        ' by such person"',
        "a request allows one further call, on the contact point and channel it was made"
        " on; the next communication uses it up, and only a new request opens another. A"
        " text or e-mail delivered to the third party is a communication; an unanswered"
        " call is not",
        "the exception is for the contact the person asked for, not a standing licence"
        " (compliance.md: a request allows the call that was asked for, not more)",
        "15 USC 1692b(3)",
        "strategy/history.py (callback_open), strategy/engine.py (_third_party_once)",
    ),
    Reading(
        "cn.third_party",
        "unrelated third parties only when the debtor cannot be reached",
        "the debtor is unreachable while a recorded fact says so (since <= now < until,"
        " e.g. a skip-trace), when no contact point of theirs is usable, or after the"
        " tier's number of failed attempts in its local days with no contact made:"
        " failed = no answer, busy, voicemail, failed, wrong number, someone else"
        " answering; a delivered text or e-mail is a contact made; a pending attempt has"
        " no outcome yet",
        "a delivered message reached the debtor (compliance.md, Always: it never makes a"
        " debtor unreachable); only an outcome shows a failure",
        "GB/T 45251-2025; CBA 2026; NIFA convention arts. 14, 18",
        "strategy/engine.py (_unreachable_why)",
    ),
    Reading(
        "calendar.cn",
        "statutory holidays per the State Council General Office's notice for each year",
        "every day of a break the notice lists is a holiday, weekend days inside it"
        " included; its make-up days are working days with Monday's windows. A year"
        " whose notice is not shipped is decided on the `holidays` library's statutory"
        " list with the warning `calendar.no_published_schedule` (and a metric)",
        "the notice, not a holiday list, sets the break (e.g. 1-7 Oct 2026, Sunday 4 Oct"
        " included); the next year's notice is published each November",
        "State Council General Office notice for each year (listed below)",
        "strategy/calendar.py (NOTICES, day_kind), strategy/engine.py (_warnings)",
    ),
    Reading(
        "guardrail.window",
        "no contact outside the profile's local hours",
        "when a tier's own hours refuse an instant the profile's hours refuse too (at"
        " night), the refusal names both the tier's rule and the profile's clause",
        "a count of refusals by legal clause is then complete whatever the tier's hours",
        "each profile's window clause",
        "strategy/engine.py (_window, _guard_window)",
    ),
    Reading(
        "profile",
        "a strategy runs under the guardrail profile of its portfolio",
        "a strategy is decided under its own profile, its portfolio's, or one that"
        " declares it tightens either (us-consumer-ma tightens us-consumer); anything else"
        " raises ProfileMismatch (422 in the API)",
        "a looser profile would run rules the strategy was never checked against",
        "compliance.md: profiles are chosen per portfolio by an administrator",
        "strategy/guardrails.py (may_decide_under), strategy/compiled.py",
    ),
    Reading(
        "history",
        "every attempt belongs to a party and contact point of the case",
        "an attempt naming a party or contact point not in the case, or a contact point"
        " under another party, raises UnknownReference (422 in the API): every row a rule"
        " reads (inside the lookback, or older carrying a fact such as a refusal)",
        "counted as a third party's it would lift the debtor's caps (three conversations"
        " under a mistyped id let a fourth call through)",
        "architecture invariant: facts only tighten",
        "strategy/history.py (HistoryIndex)",
    ),
)


def get_profile(name: str) -> GuardrailProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown guardrail profile {name!r} (known: {known})") from None


def may_decide_under(
    profile: GuardrailProfile, strategy_profile: str, portfolio_profile: str | None = None
) -> bool:
    """Whether a strategy written for `strategy_profile` may be decided under `profile`:
    its own profile, its portfolio's (an administrator's choice, compliance.md), or one
    that tightens either of them (`tightens`, followed to its root). Anything else would
    run the strategy under rules it was never checked against."""
    own = {strategy_profile, portfolio_profile} - {None}
    name: str | None = profile.name
    seen: set[str] = set()
    while name is not None and name not in seen:
        if name in own:
            return True
        seen.add(name)
        parent = PROFILES.get(name)
        name = parent.tightens if parent is not None else None
    return False


def window_start_end(profile: GuardrailProfile) -> tuple[time, time]:
    return profile.window.start, profile.window.end
