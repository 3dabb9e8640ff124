"""The us-consumer-loan preset under Regulation F, the FDCPA and the TCPA."""

from __future__ import annotations

from datetime import date

from strategy.engine import decide
from strategy.guardrails import US_CONSUMER
from strategy.model import Case, Channel, PartyRole, Result
from strategy.presets import load_preset
from tests.strategy.builders import (
    NEW_YORK,
    US_NY_MOBILE,
    at,
    attempt,
    case,
    debtor,
    history,
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
