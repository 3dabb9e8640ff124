"""Plain words for the engine's rule ids, for the demo's summary.

A profile's clause (`cn.window`, `us.call_frequency`, ...) is said in its own text, from
`strategy.guardrails`; the engine's other rules are said here, and the rule families
whose id is built (`cap.<scope>.<count>`, `spacing.<scope>`) from their parts. An id
that is none of these is shown as it is."""

from __future__ import annotations

from functools import cache

from strategy.guardrails import PROFILES, clauses

WORDS = {
    "attorney.represented": "the debtor has an attorney: contact the attorney only",
    "calendar.cn": "not a working day in China's calendar",
    "calendar.no_published_schedule": "no published holiday schedule for that year yet",
    "case.settled": "the case is settled",
    "case.status": "the case is not open",
    "channel.not_in_tier": "the tier does not use this channel",
    "channel.sms_landline": "a landline cannot receive texts",
    "contact.do_not_call": "the number is on a do-not-call list",
    "contact.invalid": "the number is known to be invalid",
    "contact.wrong_number": "the number was reported as a wrong number",
    "flag.dispute": "the debt is disputed: no collection contact until resolved",
    "guardrail.consent": "no prior consent for automated calls or texts to this number",
    "guardrail.quiet_after_conversation": "too soon after a conversation (the law's quiet period)",
    "guardrail.third_party": "the law limits contact with third parties",
    "guardrail.third_party_once": "this third party was already contacted once",
    "guardrail.window": "outside the hours the law allows, in the party's local time",
    "optout.channel": "the person opted out of this channel (STOP, keypad 9, cease)",
    "party.attorney_not_of_record": "this attorney does not represent the debtor",
    "party.debtor_reachable": "third parties only while the debtor cannot be reached",
    "party.not_in_tier": "the tier does not contact this party",
    "party.refused": "this person refused further contact",
    "party.tier_forbids": "the tier forbids contacting this party",
    "party.unaware_of_debt": "this person does not know of the debt: nothing may be said",
    "profile.mismatch": "the strategy was written for another guardrail profile",
    "promise.pending": "a promise to pay is pending: wait for its due date",
    "quiet.after_conversation": "the strategy waits after a conversation before the next contact",
    "tier.none": "no tier of the strategy covers the case",
    "window.holiday": "a public holiday where the party lives",
    "window.local_time": "outside the campaign's or tier's hours, in the party's local time",
    "window.no_common_hours": "the party's possible zones share no allowed hours",
    "window.preference": "outside the hours the party asked to be contacted in",
}
_SCOPES = {"case": "the case", "party": "this person", "contact_point": "this number"}
_COUNTS = {
    "attempts": "attempts",
    "unanswered": "unanswered attempts",
    "conversations": "conversations",
    "occasions": "follow-up days",
}


@cache
def _clause_texts() -> dict[str, str]:
    found: dict[str, str] = {}
    for profile in PROFILES.values():
        for clause in clauses(profile):
            found.setdefault(clause.id, clause.text)
    return found


def plain_words(rule: str) -> str:
    """What `rule` means, in a few words ("" when it is not known)."""
    if rule in WORDS:
        return WORDS[rule]
    if rule in _clause_texts():
        return _clause_texts()[rule]
    family, _, rest = rule.partition(".")
    if family == "cap":
        scope, _, count = rest.partition(".")
        if scope in _SCOPES and count in _COUNTS:
            return f"the strategy's cap on {_COUNTS[count]} for {_SCOPES[scope]} is reached"
    if family == "spacing" and rest in _SCOPES:
        return f"too soon after the last contact with {_SCOPES[rest]} (the strategy's spacing)"
    return ""
