"""The us-consumer-loan preset under Regulation F, the FDCPA and the TCPA."""

from __future__ import annotations

from datetime import date

from strategy.engine import decide
from strategy.guardrails import US_CONSUMER
from strategy.model import Case, Channel, Disclosure, PartyRole, Result
from strategy.presets import load_preset
from tests.strategy.builders import (
    NEW_YORK,
    US_NY_MOBILE,
    at,
    attempt,
    case,
    debtor,
    history,
    party,
    phone,
    third_party,
)

PRESET = load_preset("us-consumer-loan")
DUE = date(2026, 11, 20)  # 2026-12-01 is DPD 11: tier mid


def _case() -> Case:
    return case(
        debtor(phone("m1", US_NY_MOBILE), party_id="d"),
        third_party("t", phone("t1", "+12125550177")),
        due=DUE,
    )


def test_mid_tier_allows_one_debtor_call_at_10_new_york() -> None:
    decision = decide(_case(), history(), at(2026, 12, 1, 10, 0, NEW_YORK), PRESET, US_CONSUMER)

    assert decision.tier == "mid"
    voice = decision.allowed_for("m1", Channel.VOICE)
    assert voice is not None
    assert voice.candidate.party_role is PartyRole.DEBTOR


def test_no_call_for_seven_days_after_a_conversation_us() -> None:
    talked = attempt(at(2026, 11, 30, 11, 0, NEW_YORK), result=Result.RIGHT_PARTY)

    decision = decide(
        _case(), history(talked), at(2026, 12, 1, 10, 0, NEW_YORK), PRESET, US_CONSUMER
    )

    refusal = decision.refusal_for("m1", Channel.VOICE)
    assert refusal is not None
    assert "guardrail.quiet_after_conversation" in refusal.rules
    assert refusal.next_allowed is not None
    assert refusal.next_allowed >= at(2026, 12, 7, 11, 0, NEW_YORK)


def test_third_party_gets_no_disclosure_and_only_while_debtor_unreachable() -> None:
    tries = [
        attempt(at(2026, 11, 27 + i // 2, 10 + 3 * (i % 2), 0, NEW_YORK), result=Result.NO_ANSWER)
        for i in range(5)
    ]
    reachable = decide(_case(), history(), at(2026, 12, 1, 10, 0, NEW_YORK), PRESET, US_CONSUMER)
    unreachable = decide(
        _case(), history(*tries), at(2026, 12, 1, 10, 0, NEW_YORK), PRESET, US_CONSUMER
    )

    assert reachable.allowed_for("t1", Channel.VOICE) is None
    contact = unreachable.allowed_for("t1", Channel.VOICE)
    assert contact is not None
    assert contact.disclosure == "none"
    assert unreachable.allowed_for("t1", Channel.SMS) is None


def test_no_sunday_calls_in_the_us_preset() -> None:
    decision = decide(_case(), history(), at(2026, 12, 6, 11, 0, NEW_YORK), PRESET, US_CONSUMER)

    assert decision.allowed == ()


def test_a_debtor_who_refused_to_pay_still_starts_the_seven_day_call_rule_us() -> None:
    refused = attempt(at(2026, 11, 30, 11, 0, NEW_YORK), result=Result.REFUSAL)

    decision = decide(
        _case(), history(refused), at(2026, 12, 1, 10, 0, NEW_YORK), PRESET, US_CONSUMER
    )

    refusal = decision.refusal_for("m1", Channel.VOICE)
    assert refusal is not None
    assert "guardrail.quiet_after_conversation" in refusal.rules


def test_co_borrower_from_dpd_1_guarantor_from_dpd_6_each_under_the_call_rules_us() -> None:
    """A co-borrower and a guarantor are each a consumer obligated on the debt (15 USC
    1692a(3); 12 CFR 1006.2(e)): the preset collects from a co-borrower as from the debtor,
    and holds a guarantor back at DPD 1-5 (the source calls contacts 'or not at all')."""
    the_case = case(
        debtor(phone("m1", US_NY_MOBILE), party_id="d"),
        party("g", PartyRole.GUARANTOR, phone("g1", "+12125550133")),
        party("cb", PartyRole.CO_BORROWER, phone("cb1", "+12125550144")),
        due=DUE,
    )
    early = decide(the_case, history(), at(2026, 11, 23, 10, 0, NEW_YORK), PRESET, US_CONSUMER)
    assert early.tier == "early"
    action = early.allowed_for("cb1", Channel.VOICE)
    assert action is not None and action.disclosure is Disclosure.FULL
    refusal = early.refusal_for("g1", Channel.VOICE)
    assert refusal is not None and refusal.rules == ("party.tier_forbids",)
    # 12 CFR 1006.14(b)(2)(ii): the co-borrower's own conversation starts their 7 days.
    talked = history(
        attempt(at(2026, 11, 23, 10, 0, NEW_YORK), "cb", "cb1", result=Result.RIGHT_PARTY)
    )
    later = decide(the_case, talked, at(2026, 11, 25, 10, 0, NEW_YORK), PRESET, US_CONSUMER)
    refusal = later.refusal_for("cb1", Channel.VOICE)
    assert refusal is not None and "guardrail.quiet_after_conversation" in refusal.rules
    mid = decide(the_case, history(), at(2026, 12, 1, 10, 0, NEW_YORK), PRESET, US_CONSUMER)
    guarantor = mid.allowed_for("g1", Channel.VOICE)
    assert guarantor is not None and guarantor.disclosure is Disclosure.FULL
