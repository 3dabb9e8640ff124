"""What stops contact: opt-outs per channel, do-not-call, invalid and wrong numbers, TCPA
consent, SMS to landlines, blocking flags, disputes on a call, settled or closed cases;
promises to pay suspend collection until the promised date plus grace."""

from __future__ import annotations

from datetime import date

import pytest

from strategy.model import Attempt, CaseFlag, CaseStatus, Result, Validity
from tests.strategy.builders import (
    EMAIL,
    NEW_YORK,
    SMS,
    UK_LANDLINE,
    US_NY_MOBILE,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    email,
    history,
    is_allowed,
    phone,
    refused_rules,
    run,
    strategy,
    tier,
)

DUE = date(2026, 3, 1)
NOW = at(2026, 3, 10, 10, 0)
CN = strategy(tier(channels=["voice", "sms", "email"]))
US = strategy(tier(channels=["voice", "sms", "email"]), profile="us-consumer", timezone="UTC")


def test_opt_out_blocks_channel_only() -> None:
    the_case = case(debtor(phone(opted_out=[SMS]), email()), due=DUE)
    decision = run(the_case, None, NOW, CN)
    assert refused_rules(decision, "m1", SMS) == ("optout.channel",)
    assert (decision.refusal_for("m1", SMS) or pytest.fail()).next_allowed is None
    assert is_allowed(decision, "m1", VOICE)
    assert is_allowed(decision, "e1", EMAIL)


def test_opt_out_is_per_contact_point() -> None:
    the_case = case(debtor(phone("m1", opted_out=[SMS]), phone("m2", "+8613900139000")), due=DUE)
    assert is_allowed(run(the_case, None, NOW, CN), "m2", SMS)


def test_email_opt_out_blocks_that_address() -> None:
    the_case = case(debtor(phone(), email(opted_out=[EMAIL])), due=DUE)
    decision = run(the_case, None, NOW, CN)
    assert refused_rules(decision, "e1", EMAIL) == ("optout.channel",)
    assert is_allowed(decision, "m1", SMS)


def test_do_not_call_number_blocks_calls_and_texts_not_email() -> None:
    the_case = case(debtor(phone(do_not_call=True), email()), due=DUE)
    decision = run(the_case, None, NOW, CN)
    assert refused_rules(decision, "m1", VOICE) == ("contact.do_not_call",)
    assert refused_rules(decision, "m1", SMS) == ("contact.do_not_call",)
    assert is_allowed(decision, "e1", EMAIL)


@pytest.mark.parametrize("validity", [Validity.INVALID, Validity.WRONG_NUMBER])
def test_invalid_or_wrong_contact_point_never_used(validity: Validity) -> None:
    the_case = case(debtor(phone(validity=validity)), due=DUE)
    decision = run(the_case, None, NOW, CN)
    assert refused_rules(decision, "m1", VOICE) == ("contact.invalid",)
    assert (decision.refusal_for("m1", VOICE) or pytest.fail()).next_allowed is None


def test_unverified_number_may_be_used() -> None:
    the_case = case(debtor(phone(validity=Validity.UNVERIFIED)), due=DUE)
    assert is_allowed(run(the_case, None, NOW, CN), "m1", VOICE)


def test_wrong_number_result_blocks_the_number_until_the_right_party_answers() -> None:
    wrong = attempt(at(2026, 3, 9, 10), result=Result.WRONG_NUMBER)
    decision = run(case(due=DUE), history(wrong), NOW, CN)
    assert refused_rules(decision, "m1", VOICE) == ("contact.wrong_number",)
    reached = attempt(at(2026, 3, 9, 15), channel=SMS, result=Result.RIGHT_PARTY)
    assert is_allowed(run(case(due=DUE), history(wrong, reached), NOW, CN), "m1", SMS)


def test_tcpa_consent_is_per_channel_us() -> None:
    the_case = case(debtor(phone(number=US_NY_MOBILE, consent=[VOICE])), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 10, 0, NEW_YORK), US)
    assert is_allowed(decision, "m1", VOICE)
    assert refused_rules(decision, "m1", SMS) == ("guardrail.consent",)
    reason = (decision.refusal_for("m1", SMS) or pytest.fail()).reasons[0]
    assert reason.source is not None and "47 USC 227" in reason.source


def test_no_consent_needed_under_cn() -> None:
    the_case = case(debtor(phone(consent=[])), due=DUE)
    decision = run(the_case, None, NOW, CN)
    assert is_allowed(decision, "m1", VOICE) and is_allowed(decision, "m1", SMS)


def test_sms_to_a_landline_refused() -> None:
    flagged = case(debtor(phone(mobile=False)), due=DUE)
    assert refused_rules(run(flagged, None, NOW, CN), "m1", SMS) == ("channel.sms_landline",)
    # Derived from the number when not given: a London fixed line.
    derived = case(debtor(phone(number=UK_LANDLINE, tz="Asia/Shanghai")), due=DUE)
    decision = run(derived, None, NOW, CN)
    assert refused_rules(decision, "m1", SMS) == ("channel.sms_landline",)
    assert is_allowed(decision, "m1", VOICE)


@pytest.mark.parametrize(
    "flag",
    [
        CaseFlag.DISPUTE,
        CaseFlag.CEASE,
        CaseFlag.BANKRUPTCY,
        CaseFlag.DECEASED,
        CaseFlag.DO_NOT_CALL,
    ],
)
def test_blocking_flag_stops_all_contact(flag: CaseFlag) -> None:
    the_case = case(debtor(phone(), email()), due=DUE, flags=[flag])
    decision = run(the_case, None, NOW, CN)
    assert not decision.allowed
    assert f"flag.{flag}" in {r.rule for r in decision.case_reasons}
    for refusal in decision.refused:
        assert f"flag.{flag}" in refusal.rules
        assert refusal.next_allowed is None


def test_dispute_on_a_call_blocks_until_resolved() -> None:
    disputed = history(attempt(at(2026, 3, 9, 10), result=Result.DISPUTE))
    decision = run(case(due=DUE), disputed, NOW, CN)
    assert not decision.allowed
    assert "flag.dispute" in {r.rule for r in decision.case_reasons}
    resolved = case(due=DUE, dispute_resolved_at=at(2026, 3, 9, 18))
    assert run(resolved, disputed, NOW, CN).allowed
    # A new dispute after the resolution blocks again.
    again = history(
        attempt(at(2026, 3, 9, 10), result=Result.DISPUTE),
        attempt(at(2026, 3, 9, 19), result=Result.DISPUTE),
    )
    assert not run(resolved, again, NOW, CN).allowed


@pytest.mark.parametrize("status", [CaseStatus.SETTLED, CaseStatus.CLOSED, CaseStatus.SUSPENDED])
def test_case_not_open_not_contacted(status: CaseStatus) -> None:
    decision = run(case(due=DUE, status=status), None, NOW, CN)
    assert not decision.allowed
    assert "case.status" in {r.rule for r in decision.case_reasons}


def test_paid_off_case_not_contacted() -> None:
    decision = run(case(due=DUE, balance="0"), None, NOW, CN)
    assert not decision.allowed
    assert "case.settled" in {r.rule for r in decision.case_reasons}
    assert not decision.tasks


def promise(made: str = "10", on: date = date(2026, 3, 15), amount: str | None = "500") -> Attempt:
    return attempt(
        at(2026, 3, int(made), 10, 0),
        result=Result.PROMISE_TO_PAY,
        promise_amount=amount,
        promise_date=on,
    )


def test_promise_suspends_until_date_plus_grace() -> None:
    # Promised for 03-15 with 2 grace days: collection waits through 03-17.
    promised = history(promise())
    late_on_grace_day = run(case(due=DUE), promised, at(2026, 3, 17, 21, 0), CN)
    assert not late_on_grace_day.allowed
    (reason,) = [r for r in late_on_grace_day.case_reasons if r.rule == "promise.pending"]
    assert reason.next_allowed == at(2026, 3, 18, 0, 0)
    assert late_on_grace_day.extra["promise"] == "pending"
    assert {r.next_allowed for r in late_on_grace_day.refused} == {at(2026, 3, 18, 8, 0)}


def test_broken_promise_resumes_collection() -> None:
    promised = history(promise())
    decision = run(case(due=DUE), promised, at(2026, 3, 18, 8, 0), CN)
    assert is_allowed(decision, "m1", VOICE)
    assert decision.extra["promise"] == "broken"
    assert any("broken" in g for g in decision.guidance)


def test_grace_days_come_from_the_strategy() -> None:
    no_grace = strategy(tier(), promise_grace_days=0)
    promised = history(promise())
    assert not run(case(due=DUE), promised, at(2026, 3, 15, 20, 0), no_grace).allowed
    assert run(case(due=DUE), promised, at(2026, 3, 16, 9, 0), no_grace).allowed


def test_promise_kept_by_payment_is_no_longer_pending() -> None:
    promised = history(promise(), payments=[(at(2026, 3, 12, 9), "500")])
    decision = run(case(due=DUE, balance="500"), promised, at(2026, 3, 14, 10), CN)
    assert decision.extra["promise"] == "kept"
    assert "promise.pending" not in {r.rule for r in decision.case_reasons}


def test_partial_payment_keeps_the_promise_pending() -> None:
    promised = history(promise(), payments=[(at(2026, 3, 12, 9), "200")])
    decision = run(case(due=DUE), promised, at(2026, 3, 14, 10), CN)
    assert decision.extra["promise"] == "pending"
    assert not decision.allowed


def test_payment_before_the_promise_does_not_keep_it() -> None:
    promised = history(promise(), payments=[(at(2026, 3, 9, 9), "500")])
    assert run(case(due=DUE), promised, at(2026, 3, 14, 10), CN).extra["promise"] == "pending"


def test_promise_without_amount_kept_by_any_payment() -> None:
    promised = history(promise(amount=None), payments=[(at(2026, 3, 12), "1")])
    assert run(case(due=DUE), promised, at(2026, 3, 14, 10), CN).extra["promise"] == "kept"


def test_latest_promise_replaces_an_earlier_one() -> None:
    promised = history(
        promise("5", on=date(2026, 3, 6)),
        promise("10", on=date(2026, 3, 20)),
    )
    decision = run(case(due=DUE), promised, at(2026, 3, 12, 10), CN)
    assert decision.extra["promise"] == "pending"
    assert not decision.allowed
