"""How often: caps per case, party and contact point, per channel, per local day or
rolling window, conversations and unanswered attempts counted apart; spacing; the quiet
period after a right-party conversation and the us 7-day call rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from strategy.decision import Decision
from strategy.model import PartyRole, Result
from tests.strategy.builders import (
    CHICAGO,
    CN_MOBILE_2,
    NEW_YORK,
    SMS,
    US_NY_MOBILE,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    history,
    is_allowed,
    party,
    phone,
    refused_rules,
    run,
    strategy,
    tier,
    utc,
)

DUE = date(2026, 3, 1)
TWO_PHONES = case(debtor(phone("m1"), phone("m2", CN_MOBILE_2)), due=DUE)
NY_CASE = case(debtor(phone(number=US_NY_MOBILE)), due=DUE)
US = strategy(tier(), profile="us-consumer", timezone="UTC")


def with_caps(*caps: dict[str, Any], **fields: Any) -> Any:
    return strategy(tier(caps=list(caps), **fields))


def reason(decision: Decision, cp_id: str, channel: Any, rule: str) -> Any:
    refusal = decision.refusal_for(cp_id, channel)
    assert refusal is not None
    (found,) = [r for r in refusal.reasons if r.rule == rule]
    return found


def test_seven_calls_in_seven_days_blocks_the_eighth_us() -> None:
    calls = [attempt(at(2026, 3, 2 + i, 10, 0, NEW_YORK)) for i in range(7)]  # 03-02..03-08
    decision = run(NY_CASE, history(*calls), at(2026, 3, 8, 15, 0, NEW_YORK), US)
    assert refused_rules(decision, "m1", VOICE) == ("guardrail.cap.us.call_frequency",)
    cap = reason(decision, "m1", VOICE, "guardrail.cap.us.call_frequency")
    assert cap.source is not None and "1006.14(b)(2)" in cap.source
    # The 03-02 call leaves the 7 local days at midnight; the window opens at 08:00.
    assert cap.next_allowed == at(2026, 3, 9, 0, 0, NEW_YORK)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 9, 8, 0, NEW_YORK)
    # The rule counts calls: a text is still allowed.
    assert is_allowed(decision, "m1", SMS)


def test_six_calls_in_seven_days_allow_a_seventh_us() -> None:
    calls = [attempt(at(2026, 3, 3 + i, 10, 0, NEW_YORK)) for i in range(6)]
    assert is_allowed(
        run(NY_CASE, history(*calls), at(2026, 3, 8, 15, 0, NEW_YORK), US), "m1", VOICE
    )


def test_seven_in_seven_counts_local_days_across_the_fall_back_change_us() -> None:
    calls = [attempt(at(2026, 10, 26 + i, 10, 0, NEW_YORK)) for i in range(6)]
    calls.append(attempt(at(2026, 11, 1, 10, 0, NEW_YORK)))
    decision = run(NY_CASE, history(*calls), at(2026, 11, 1, 15, 0, NEW_YORK), US)
    cap = reason(decision, "m1", VOICE, "guardrail.cap.us.call_frequency")
    # Local midnight of 11-02 in New York is 05:00 UTC (EST), not 04:00.
    assert cap.next_allowed == utc(2026, 11, 2, 5, 0)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == utc(2026, 11, 2, 13, 0)


def test_call_within_7_days_after_a_conversation_refused_us() -> None:
    talk = attempt(at(2026, 3, 2, 10, 0, NEW_YORK), result=Result.RIGHT_PARTY)
    decision = run(NY_CASE, history(talk), at(2026, 3, 8, 10, 0, NEW_YORK), US)
    quiet = reason(decision, "m1", VOICE, "guardrail.quiet_after_conversation")
    # 12 CFR 1006.14(b)(2)(ii): "The date of the telephone conversation is the first day
    # of the seven-consecutive-day period": 03-02 to 03-08 in New York; 03-09 starts at
    # local midnight, EDT after the spring-forward of 03-08 (04:00 UTC).
    assert quiet.next_allowed == utc(2026, 3, 9, 4, 0)
    assert quiet.source is not None and "1006.14(b)(2)(ii)" in quiet.source
    assert is_allowed(decision, "m1", SMS)  # the rule is about calls
    late_on_day_7 = run(NY_CASE, history(talk), at(2026, 3, 8, 20, 30, NEW_YORK), US)
    assert "guardrail.quiet_after_conversation" in refused_rules(late_on_day_7, "m1", VOICE)
    assert is_allowed(run(NY_CASE, history(talk), at(2026, 3, 9, 8, 0, NEW_YORK), US), "m1", VOICE)


def test_quiet_period_after_right_party_conversation_strategy() -> None:
    quiet = strategy(tier(quiet_hours_after_conversation=4))
    talk = attempt(at(2026, 3, 10, 9, 0), result=Result.PROMISE_TO_PAY)
    decision = run(TWO_PHONES, history(talk), at(2026, 3, 10, 12, 0), quiet)
    assert not decision.allowed  # both numbers, both channels: it is about the person
    assert reason(decision, "m2", SMS, "quiet.after_conversation").next_allowed == at(
        2026, 3, 10, 13
    )


def test_unanswered_attempt_starts_no_quiet_period() -> None:
    quiet = strategy(tier(quiet_hours_after_conversation=4))
    missed = attempt(at(2026, 3, 10, 9, 0), result=Result.VOICEMAIL)
    assert is_allowed(run(TWO_PHONES, history(missed), at(2026, 3, 10, 10, 0), quiet), "m1", VOICE)


def test_contact_point_cap_blocks_that_number_only() -> None:
    capped = with_caps({"scope": "contact_point", "count": "attempts", "limit": 2, "local_days": 1})
    tries = history(attempt(at(2026, 3, 10, 9, 0)), attempt(at(2026, 3, 10, 10, 0)))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 11, 0), capped)
    assert refused_rules(decision, "m1", VOICE) == ("cap.contact_point.attempts",)
    assert refused_rules(decision, "m1", SMS) == ("cap.contact_point.attempts",)
    assert is_allowed(decision, "m2", VOICE)


def test_party_cap_counts_every_number_of_the_party() -> None:
    capped = with_caps({"scope": "party", "count": "attempts", "limit": 2, "local_days": 1})
    tries = history(attempt(at(2026, 3, 10, 9, 0)), attempt(at(2026, 3, 10, 10, 0), cp_id="m2"))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 11, 0), capped)
    assert "cap.party.attempts" in refused_rules(decision, "m2", VOICE)
    assert not decision.allowed


def test_case_cap_counts_every_party() -> None:
    both = strategy(
        tier(
            parties={
                "debtor": {"contact": "always", "disclosure": "full"},
                "guarantor": {"contact": "always", "disclosure": "full"},
            },
            caps=[{"scope": "case", "count": "attempts", "limit": 1, "local_days": 1}],
        )
    )
    the_case = case(debtor(), party("g", PartyRole.GUARANTOR, phone("g1", CN_MOBILE_2)), due=DUE)
    decision = run(the_case, history(attempt(at(2026, 3, 10, 9, 0))), at(2026, 3, 10, 11), both)
    assert "cap.case.attempts" in refused_rules(decision, "g1", VOICE)


def test_channel_cap_limits_only_its_channel() -> None:
    capped = with_caps(
        {"scope": "case", "count": "attempts", "limit": 1, "local_days": 1, "channels": ["sms"]}
    )
    text = attempt(at(2026, 3, 10, 9, 0), channel=SMS, result=Result.DELIVERED)
    decision = run(TWO_PHONES, history(text), at(2026, 3, 10, 11, 0), capped)
    assert "cap.case.attempts" in refused_rules(decision, "m2", SMS)
    assert is_allowed(decision, "m1", VOICE)
    assert is_allowed(decision, "m2", VOICE)


def test_role_limited_cap_does_not_touch_other_roles() -> None:
    capped = with_caps(
        {
            "scope": "party",
            "count": "attempts",
            "limit": 0,
            "local_days": 1,
            "roles": ["third_party"],
        }
    )
    assert is_allowed(run(TWO_PHONES, None, at(2026, 3, 10, 11), capped), "m1", VOICE)


def test_zero_limit_cap_refuses_with_no_next_allowed() -> None:
    capped = with_caps({"scope": "case", "count": "attempts", "limit": 0, "local_days": 1})
    decision = run(TWO_PHONES, None, at(2026, 3, 10, 11, 0), capped)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.rules == ("cap.case.attempts",)
    assert refusal.next_allowed is None


def test_local_day_cap_resets_at_local_midnight() -> None:
    capped = with_caps({"scope": "case", "count": "attempts", "limit": 1, "local_days": 1})
    tries = history(attempt(at(2026, 3, 10, 9, 0)))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 15, 0), capped)
    assert reason(decision, "m1", VOICE, "cap.case.attempts").next_allowed == at(2026, 3, 11)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 11, 8, 0)
    assert is_allowed(run(TWO_PHONES, tries, at(2026, 3, 11, 8, 0), capped), "m1", VOICE)


def test_local_day_is_the_partys_day_not_the_portfolios() -> None:
    capped = with_caps({"scope": "case", "count": "attempts", "limit": 1, "local_days": 1})
    chicago = case(debtor(phone(), tz=CHICAGO), due=DUE)
    tries = history(attempt(at(2026, 3, 10, 9, 0, CHICAGO)))
    # 20:00 Chicago is already 03-11 in Shanghai, but still 03-10 for the debtor.
    decision = run(chicago, tries, at(2026, 3, 10, 20, 0, CHICAGO), capped)
    assert "cap.case.attempts" in refused_rules(decision, "m1", VOICE)


def test_multi_day_cap_counts_today_and_the_days_before() -> None:
    capped = with_caps({"scope": "case", "count": "attempts", "limit": 2, "local_days": 3})
    tries = history(attempt(at(2026, 3, 8, 21, 0)), attempt(at(2026, 3, 9, 9, 0)))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 9, 0), capped)
    assert reason(decision, "m1", VOICE, "cap.case.attempts").next_allowed == at(2026, 3, 11)
    assert is_allowed(run(TWO_PHONES, tries, at(2026, 3, 11, 9, 0), capped), "m1", VOICE)


def test_rolling_cap_frees_exactly_after_its_hours() -> None:
    capped = with_caps({"scope": "party", "count": "attempts", "limit": 1, "rolling_hours": 4})
    tries = history(attempt(at(2026, 3, 10, 9, 0)))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 12, 59), capped)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 10, 13, 0)
    assert is_allowed(run(TWO_PHONES, tries, at(2026, 3, 10, 13, 0), capped), "m1", VOICE)


def test_rolling_cap_counts_elapsed_hours_across_fall_back() -> None:
    capped = strategy(
        tier(caps=[{"scope": "party", "count": "attempts", "limit": 1, "rolling_hours": 24}]),
        profile="us-consumer",
        timezone="UTC",
    )
    tries = history(attempt(at(2026, 10, 31, 10, 0, NEW_YORK)))  # 14:00 UTC
    decision = run(NY_CASE, tries, at(2026, 11, 1, 8, 30, NEW_YORK), capped)
    refusal = decision.refusal_for("m1", SMS)
    assert refusal is not None and refusal.next_allowed == utc(2026, 11, 1, 14, 0)


def test_debtor_conversations_cap_three_per_day_cn() -> None:
    talks = [attempt(at(2026, 3, 10, 9 + i, 0), result=Result.RIGHT_PARTY) for i in range(3)]
    decision = run(TWO_PHONES, history(*talks), at(2026, 3, 10, 15, 0), strategy(tier()))
    assert refused_rules(decision, "m2", VOICE) == ("guardrail.cap.cn.conversations_per_day",)


def test_unanswered_attempts_are_not_conversations_cn() -> None:
    missed = [attempt(at(2026, 3, 10, 9, 10 * i)) for i in range(5)]
    decision = run(TWO_PHONES, history(*missed), at(2026, 3, 10, 15, 0), strategy(tier()))
    assert is_allowed(decision, "m1", VOICE)


def test_six_unanswered_on_one_number_blocks_that_number_only_cn() -> None:
    missed = [attempt(at(2026, 3, 10, 9, 10 * i)) for i in range(6)]
    decision = run(TWO_PHONES, history(*missed), at(2026, 3, 10, 15, 0), strategy(tier()))
    assert refused_rules(decision, "m1", VOICE) == ("guardrail.cap.cn.unanswered_per_method",)
    assert is_allowed(decision, "m2", VOICE)


def test_conversations_do_not_count_as_unanswered_cn() -> None:
    mixed = [attempt(at(2026, 3, 10, 9, 10 * i)) for i in range(5)]
    mixed.append(attempt(at(2026, 3, 10, 10, 30), result=Result.CALLBACK_REQUESTED))
    decision = run(TWO_PHONES, history(*mixed), at(2026, 3, 10, 15, 0), strategy(tier()))
    assert is_allowed(decision, "m1", VOICE)


def test_unanswered_cap_counts_only_unanswered_tier() -> None:
    capped = with_caps(
        {"scope": "contact_point", "count": "unanswered", "limit": 1, "local_days": 1}
    )
    talk = history(attempt(at(2026, 3, 10, 9, 0), result=Result.RIGHT_PARTY))
    assert is_allowed(run(TWO_PHONES, talk, at(2026, 3, 10, 15), capped), "m1", VOICE)
    busy = history(attempt(at(2026, 3, 10, 9, 0), result=Result.BUSY))
    assert refused_rules(run(TWO_PHONES, busy, at(2026, 3, 10, 15), capped), "m1", VOICE) == (
        "cap.contact_point.unanswered",
    )


def test_massachusetts_two_calls_or_texts_per_week_per_debt() -> None:
    two = history(
        attempt(at(2026, 3, 4, 10, 0, NEW_YORK)),
        attempt(at(2026, 3, 6, 10, 0, NEW_YORK), channel=SMS, result=Result.DELIVERED),
    )
    decision = run(NY_CASE, two, at(2026, 3, 8, 10, 0, NEW_YORK), US, "us-consumer-ma")
    assert "guardrail.cap.us-ma.calls_and_texts" in refused_rules(decision, "m1", VOICE)
    assert "guardrail.cap.us-ma.calls_and_texts" in refused_rules(decision, "m1", SMS)
    assert run(NY_CASE, two, at(2026, 3, 8, 10, 0, NEW_YORK), US).allowed


def test_spacing_between_attempts_to_a_party() -> None:
    spaced = strategy(tier(spacing=[{"scope": "party", "minutes": 120}]))
    tries = history(attempt(at(2026, 3, 10, 9, 0)))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 10, 0), spaced)
    assert refused_rules(decision, "m2", VOICE) == ("spacing.party",)
    refusal = decision.refusal_for("m2", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 10, 11, 0)
    assert is_allowed(run(TWO_PHONES, tries, at(2026, 3, 10, 11, 0), spaced), "m2", VOICE)


def test_spacing_limited_to_a_channel() -> None:
    spaced = strategy(
        tier(spacing=[{"scope": "contact_point", "minutes": 60, "channels": ["voice"]}])
    )
    tries = history(attempt(at(2026, 3, 10, 9, 0)))
    decision = run(TWO_PHONES, tries, at(2026, 3, 10, 9, 30), spaced)
    assert refused_rules(decision, "m1", VOICE) == ("spacing.contact_point",)
    assert is_allowed(decision, "m1", SMS)
    assert is_allowed(decision, "m2", VOICE)


def test_every_refusal_reason_kept() -> None:
    strict = strategy(
        tier(
            caps=[{"scope": "party", "count": "attempts", "limit": 1, "local_days": 1}],
            spacing=[{"scope": "contact_point", "minutes": 600}],
            quiet_hours_after_conversation=12,
        )
    )
    opted = case(debtor(phone(opted_out=[SMS])), due=DUE)
    talk = history(attempt(at(2026, 3, 10, 0, 30), result=Result.RIGHT_PARTY))
    decision = run(opted, talk, at(2026, 3, 10, 7, 0), strict)
    rules = set(refused_rules(decision, "m1", SMS))
    assert rules == {
        "guardrail.window",
        "cap.party.attempts",
        "spacing.contact_point",
        "quiet.after_conversation",
        "optout.channel",
    }
    refusal = decision.refusal_for("m1", SMS)
    assert refusal is not None and refusal.next_allowed is None  # the opt-out never ends
    voice = decision.refusal_for("m1", VOICE)
    assert voice is not None and set(voice.rules) == rules - {"optout.channel"}
    # Every timed rule passes at once on the next local day at 08:00.
    assert voice.next_allowed == at(2026, 3, 11, 8, 0)


@pytest.mark.parametrize("hours", [0.5, 25.0])
def test_next_allowed_is_allowed(hours: float) -> None:
    capped = strategy(
        tier(
            windows={"mon": ["09:00-12:00"], "wed": ["14:00-15:00"]},
            caps=[{"scope": "party", "count": "attempts", "limit": 2, "rolling_hours": hours}],
            spacing=[{"scope": "party", "minutes": 45}],
        )
    )
    start = at(2026, 3, 9, 9, 0)  # a Monday
    tries = history(attempt(start), attempt(start + timedelta(minutes=30)))
    decision = run(TWO_PHONES, tries, start + timedelta(minutes=40), capped)
    for refusal in decision.refused:
        assert refusal.next_allowed is not None
        later = run(TWO_PHONES, tries, refusal.next_allowed, capped)
        assert later.allowed_for(refusal.candidate.contact_point_id, refusal.candidate.channel)


def test_quiet_period_holds_when_history_also_has_a_later_conversation() -> None:
    quiet = strategy(tier(quiet_hours_after_conversation=4))
    talks = history(
        attempt(at(2026, 3, 10, 9, 0), result=Result.RIGHT_PARTY),
        attempt(at(2026, 3, 10, 15, 0), result=Result.RIGHT_PARTY),
    )
    decision = run(TWO_PHONES, talks, at(2026, 3, 10, 10, 0), quiet)
    assert "quiet.after_conversation" in refused_rules(decision, "m1", VOICE)
