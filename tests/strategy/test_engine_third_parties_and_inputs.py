"""Issue 14, the engine's rules, each test written from the rule it checks:

- 15 USC 1692b(3): a third party is communicated with once "unless requested to do so by
  such person": one request allows the one call asked for, not calls for good;
- compliance.md ("Always"): a delivered text or e-mail is a contact made, not a failed
  attempt, and never makes a debtor unreachable; a recorded "unreachable" fact holds for
  its period;
- unknown references (an attempt naming what the case does not hold, a strategy decided
  under a profile it was not written for) are errors, not silence;
- a refusal shows the disclosure the candidate would get, and a night-time refusal by a
  tier narrower than the law names the law's clause too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from strategy.compiled import compile_strategy
from strategy.engine import decide
from strategy.guardrails import get_profile, may_decide_under
from strategy.model import (
    Disclosure,
    History,
    ProfileMismatch,
    RecordedUnreachable,
    Result,
    UnknownReference,
)
from tests.strategy.builders import (
    NEW_YORK,
    SMS,
    US_CHICAGO_MOBILE,
    US_NY_MOBILE,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    history,
    is_allowed,
    phone,
    refused_rules,
    run,
    strategy,
    third_party,
    tier,
)

DUE = date(2026, 3, 1)
NOW = at(2026, 3, 10, 10, 0)  # a Tuesday, 10:00 in Shanghai


def third_party_strategy(profile: str = "cn-consumer", **rule: Any) -> Any:
    third = {"contact": "when_debtor_unreachable", "disclosure": "none", **rule}
    return strategy(
        tier(
            parties={"debtor": {"contact": "always", "disclosure": "full"}, "third_party": third},
            debtor_unreachable={"min_attempts": 3, "days": 2},
        ),
        profile=profile,
    )


# --- 15 USC 1692b(3): one request, one call ----------------------------------------------
US_CASE = case(
    debtor(phone(number=US_NY_MOBILE)),
    third_party("t", phone("t-m", US_CHICAGO_MOBILE), phone("t-w", US_CHICAGO_MOBILE)),
    due=DUE,
)
US_ALWAYS = third_party_strategy("us-consumer", contact="always")


def ny(day: int, hour: int = 10) -> Any:
    return at(2026, 3, day, hour, 0, NEW_YORK)


def test_a_call_back_request_allows_one_call_not_calls_for_good_us() -> None:
    asked = attempt(ny(2), "t", "t-m", result=Result.CALLBACK_REQUESTED)
    # The call that was asked for: allowed.
    assert is_allowed(run(US_CASE, history(asked), ny(5), US_ALWAYS), "t-m", VOICE)
    # It was made and the person answered without asking again: the exception is used up.
    called_back = attempt(ny(5), "t", "t-m", result=Result.THIRD_PARTY)
    after = run(US_CASE, history(asked, called_back), ny(10), US_ALWAYS)
    assert refused_rules(after, "t-m", VOICE) == ("guardrail.third_party_once",)
    reason = (after.refusal_for("t-m", VOICE) or pytest.fail()).reasons[0]
    assert reason.source is not None and "15 USC 1692b(3)" in reason.source


def test_a_second_request_allows_a_second_call_us() -> None:
    asked_twice = history(
        attempt(ny(2), "t", "t-m", result=Result.CALLBACK_REQUESTED),
        attempt(ny(5), "t", "t-m", result=Result.CALLBACK_REQUESTED),
    )
    assert is_allowed(run(US_CASE, asked_twice, ny(10), US_ALWAYS), "t-m", VOICE)


def test_the_exception_covers_the_contact_that_was_asked_for_us() -> None:
    # Asked on the mobile by a call: a call back on that number, not their other number,
    # and not a text.
    asked = history(attempt(ny(2), "t", "t-m", result=Result.CALLBACK_REQUESTED))
    decision = run(US_CASE, asked, ny(5), US_ALWAYS)
    assert is_allowed(decision, "t-m", VOICE)
    assert refused_rules(decision, "t-w", VOICE) == ("guardrail.third_party_once",)
    assert refused_rules(decision, "t-m", SMS) == ("guardrail.third_party_once",)


def test_a_delivered_text_is_the_one_communication_us() -> None:
    texted = history(attempt(ny(2), "t", "t-m", SMS, result=Result.DELIVERED))
    decision = run(US_CASE, texted, ny(5), US_ALWAYS)
    assert refused_rules(decision, "t-m", VOICE) == ("guardrail.third_party_once",)


# --- a delivered text or e-mail is a contact made -------------------------------------------
def test_delivered_texts_do_not_make_the_debtor_unreachable_cn() -> None:
    # Three texts delivered to the debtor yesterday: the tier's 3 attempts in 2 days are
    # met by count, but none failed, so third parties stay closed.
    texts = history(*(attempt(at(2026, 3, 9, 9 + i), channel=SMS, result=Result.DELIVERED)
                      for i in range(3)))  # fmt: skip
    the_case = case(debtor(), third_party(), due=DUE)
    decision = run(the_case, texts, NOW, third_party_strategy())
    assert "guardrail.third_party" in refused_rules(decision, "t-m", VOICE)
    assert "debtor_unreachable" not in decision.extra


def test_a_delivered_text_among_failed_calls_is_a_contact_made_cn() -> None:
    calls = [attempt(at(2026, 3, 9, 9 + i)) for i in range(3)]
    the_case = case(debtor(), third_party(), due=DUE)
    unreachable = run(the_case, history(*calls), NOW, third_party_strategy())
    assert is_allowed(unreachable, "t-m", VOICE)
    assert "3 failed attempts" in unreachable.extra["debtor_unreachable"]
    delivered = attempt(at(2026, 3, 9, 15), channel=SMS, result=Result.DELIVERED)
    reached = run(the_case, history(*calls, delivered), NOW, third_party_strategy())
    assert "guardrail.third_party" in refused_rules(reached, "t-m", VOICE)


def test_pending_attempts_are_not_failed_attempts_cn() -> None:
    pending = [attempt(at(2026, 3, 10, 9, i), result=Result.PENDING) for i in range(3)]
    the_case = case(debtor(), third_party(), due=DUE)
    decision = run(the_case, history(*pending), NOW, third_party_strategy())
    assert "guardrail.third_party" in refused_rules(decision, "t-m", VOICE)


# --- recorded reachability -----------------------------------------------------------------
def test_recorded_unreachable_holds_from_since_until_its_expiry_cn() -> None:
    recorded = RecordedUnreachable(
        since=at(2026, 3, 8, 12, 0), until=at(2026, 3, 12, 12, 0), source="skip-trace"
    )
    the_case = replace(case(debtor(), third_party(), due=DUE), recorded_unreachable=recorded)
    st = third_party_strategy()
    during = run(the_case, None, NOW, st)
    assert is_allowed(during, "t-m", VOICE)
    assert "skip-trace" in during.extra["debtor_unreachable"]
    assert (during.allowed_for("t-m", VOICE) or pytest.fail()).disclosure is Disclosure.NONE
    before = run(the_case, None, at(2026, 3, 8, 11, 59), st)
    assert "guardrail.third_party" in refused_rules(before, "t-m", VOICE)
    expired = run(the_case, None, at(2026, 3, 12, 12, 0), st)
    assert "guardrail.third_party" in refused_rules(expired, "t-m", VOICE)


def test_a_recorded_unreachability_ends_once_the_debtor_is_reached_cn() -> None:
    # Recorded on the 8th for four days; the debtor answered on the 9th: the skip-trace's
    # finding no longer holds, and third parties close again (GB/T 45251-2025: only when
    # the debtor cannot be reached).
    recorded = RecordedUnreachable(
        since=at(2026, 3, 8, 12, 0), until=at(2026, 3, 12, 12, 0), source="skip-trace"
    )
    the_case = replace(case(debtor(), third_party(), due=DUE), recorded_unreachable=recorded)
    st = third_party_strategy()
    for reached in (
        attempt(at(2026, 3, 9, 10), result=Result.RIGHT_PARTY),
        attempt(at(2026, 3, 9, 10), channel=SMS, result=Result.DELIVERED),
    ):
        decision = run(the_case, history(reached), NOW, st)
        assert "guardrail.third_party" in refused_rules(decision, "t-m", VOICE)
        assert "debtor_unreachable" not in decision.extra
    # A conversation before the record does not end it.
    earlier = attempt(at(2026, 3, 7, 10), result=Result.RIGHT_PARTY)
    assert is_allowed(run(the_case, history(earlier), NOW, st), "t-m", VOICE)


# --- unknown references --------------------------------------------------------------------
def test_conversations_under_an_unknown_party_id_are_an_error_not_a_third_party() -> None:
    # GB/T 45251-2025: at most 3 effective conversations with the debtor a day. Three
    # logged under a mistyped party id used to count as a third party's and let a fourth
    # call through.
    talks = [attempt(at(2026, 3, 10, 8 + i), "d-typo", "m1", result=Result.RIGHT_PARTY)
             for i in range(3)]  # fmt: skip
    with pytest.raises(UnknownReference) as err:
        run(case(debtor(), due=DUE), history(*talks), at(2026, 3, 10, 14, 0), strategy(tier()))
    assert err.value.field == "history.attempts[0].party_id"
    assert "d-typo" in err.value.message


def test_an_unknown_contact_point_is_an_error() -> None:
    hist = history(attempt(at(2026, 3, 9, 9), "d", "m9"))
    with pytest.raises(UnknownReference) as err:
        run(case(debtor(), due=DUE), hist, NOW, strategy(tier()))
    assert err.value.field == "history.attempts[0].contact_point_id"


def test_a_contact_point_logged_under_another_party_is_an_error() -> None:
    # The debtor's number, logged under the third party: neither party's count is right.
    hist = history(attempt(at(2026, 3, 9, 9)), attempt(at(2026, 3, 9, 10), "t", "m1"))
    with pytest.raises(UnknownReference) as err:
        run(case(debtor(), third_party(), due=DUE), hist, NOW, third_party_strategy())
    assert err.value.field == "history.attempts[1].party_id"


def test_an_old_fact_outside_every_rules_lookback_is_checked_too() -> None:
    # A refusal 200 days ago under a mistyped id: read for its fact, so checked.
    old = attempt(NOW - timedelta(days=200), "ghost", "m1", result=Result.REFUSAL)
    with pytest.raises(UnknownReference):
        run(case(debtor(), due=DUE), history(old), NOW, strategy(tier()))


def test_a_strategy_decided_under_a_looser_profile_is_an_error() -> None:
    cn = strategy(tier())
    with pytest.raises(ProfileMismatch) as err:
        decide(case(debtor(), due=DUE), History(), NOW, cn, get_profile("commercial"))
    assert err.value.field == "profile"
    with pytest.raises(ProfileMismatch):
        compile_strategy(cn, get_profile("us-consumer"))
    # A compiled strategy with another profile beside it is not silently decided.
    compiled = compile_strategy(cn, get_profile("cn-consumer"))
    with pytest.raises(ProfileMismatch):
        decide(case(debtor(), due=DUE), History(), NOW, compiled, get_profile("commercial"))


def test_own_portfolio_and_tightening_profiles_are_accepted() -> None:
    us = strategy(tier(), profile="us-consumer", timezone=NEW_YORK)
    the_case = case(debtor(phone(number=US_NY_MOBILE)), due=DUE)
    # The Massachusetts overlay keeps every us-consumer rule and adds one: accepted.
    ma = decide(the_case, History(), ny(10), us, get_profile("us-consumer-ma"))
    assert ma.profile == "us-consumer-ma"
    # The other way round would widen the overlay's strategy: refused.
    ma_strategy = strategy(tier(), profile="us-consumer-ma", timezone=NEW_YORK)
    with pytest.raises(ProfileMismatch):
        decide(the_case, History(), ny(10), ma_strategy, get_profile("us-consumer"))
    # The portfolio's profile (an administrator switched it) is accepted when named.
    assert may_decide_under(get_profile("commercial"), "cn-consumer", "commercial")
    assert not may_decide_under(get_profile("commercial"), "cn-consumer", None)


def test_us_consumer_ma_really_tightens_us_consumer() -> None:
    # The declared relation is checked, not trusted: every us-consumer rule is kept.
    base, ma = get_profile("us-consumer"), get_profile("us-consumer-ma")
    assert ma.tightens == base.name
    assert ma.window.minutes == base.window.minutes
    assert set(base.caps) <= set(ma.caps)
    assert ma.max_disclosure == base.max_disclosure
    assert ma.quiet_days_after_conversation >= base.quiet_days_after_conversation
    assert ma.consent_required >= base.consent_required
    assert ma.third_party_once and ma.attorney_only_when_represented and ma.refusal_is_final


# --- refusals say what they would have said --------------------------------------------------
def test_a_refused_candidate_shows_its_disclosure() -> None:
    the_case = case(debtor(), third_party(), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 23, 0), third_party_strategy())
    debtor_refusal = decision.refusal_for("m1", VOICE) or pytest.fail()
    assert debtor_refusal.disclosure is Disclosure.FULL
    third_refusal = decision.refusal_for("t-m", VOICE) or pytest.fail()
    assert third_refusal.disclosure is Disclosure.NONE


def test_a_night_refusal_by_a_narrower_tier_names_the_laws_clause_too_cn() -> None:
    office = strategy(tier(windows={d: ["09:00-18:00"] for d in ("mon", "tue", "wed")}))
    night = run(case(debtor(), due=DUE), None, at(2026, 3, 10, 23, 0), office)
    refusal = night.refusal_for("m1", VOICE) or pytest.fail()
    assert refusal.rules == ("window.local_time", "guardrail.window")
    law = refusal.reasons[1]
    # GB/T 45251-2025: no collection contact 22:00-08:00; the law's hours open at 08:00.
    assert law.source is not None and "GB/T 45251-2025" in law.source
    assert law.next_allowed == at(2026, 3, 11, 8, 0)
    assert refusal.next_allowed == at(2026, 3, 11, 9, 0)
    # At 19:00 the law allows contact: only the tier's own hours refuse.
    evening = run(case(debtor(), due=DUE), None, at(2026, 3, 10, 19, 0), office)
    assert refused_rules(evening, "m1", VOICE) == ("window.local_time",)
