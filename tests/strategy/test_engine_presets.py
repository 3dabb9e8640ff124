"""The shipped presets under their profiles behave as domain.md describes, at a few
realistic instants."""

from __future__ import annotations

from datetime import date
from typing import Any

from strategy.document import Action
from strategy.guardrails import get_profile
from strategy.model import Disclosure, PartyRole, Result, Stage
from strategy.presets import load_preset
from tests.strategy.builders import (
    EMAIL,
    SMS,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    email,
    history,
    is_allowed,
    party,
    phone,
    refused_rules,
    run,
    third_party,
)

CONSUMER = load_preset("consumer-loan")
B2B = load_preset("b2b-receivables")
CN = get_profile("cn-consumer")
COMMERCIAL = get_profile("commercial")
DUE = date(2026, 3, 1)


def test_early_tier_calls_the_debtor_and_never_a_contact() -> None:
    the_case = case(debtor(), third_party("t"), due=DUE)
    decision = run(the_case, None, at(2026, 3, 3, 10, 0), CONSUMER, CN)  # Tuesday, dpd 2
    assert decision.tier == "early"
    action = decision.allowed_for("m1", VOICE)
    assert action is not None and action.disclosure is Disclosure.FULL
    assert action.template_key == "early.voice.debtor.full"
    rules = refused_rules(decision, "t-m", VOICE)
    assert "party.tier_forbids" in rules and "guardrail.third_party" in rules
    assert not decision.tasks


def test_early_tier_lunch_break_and_evening() -> None:
    the_case = case(due=DUE)
    lunch = run(the_case, None, at(2026, 3, 3, 12, 30), CONSUMER, CN)
    refusal = lunch.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 3, 14, 0)
    evening = run(the_case, None, at(2026, 3, 3, 20, 30), CONSUMER, CN)
    refusal = evening.refusal_for("m1", SMS)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 4, 9, 0)


def test_pre_due_reminder_is_sms_only() -> None:
    decision = run(case(due=date(2026, 3, 5)), None, at(2026, 3, 3, 10, 0), CONSUMER, CN)
    assert decision.tier == "pre_due"
    assert is_allowed(decision, "m1", SMS)
    assert refused_rules(decision, "m1", VOICE) == ("channel.not_in_tier",)


def test_mid_tier_calls_a_contact_once_the_debtor_is_unreachable_saying_nothing() -> None:
    the_case = case(debtor(), third_party("t"), due=DUE)
    now = at(2026, 3, 12, 10, 0)  # dpd 11
    reachable = run(the_case, None, now, CONSUMER, CN)
    assert "party.debtor_reachable" in refused_rules(reachable, "t-m", VOICE)
    # Six unanswered calls over three days and no conversation: unreachable.
    tries = history(
        *[attempt(at(2026, 3, d, h, 0)) for d in (10, 11) for h in (9, 14, 16)],
    )
    decision = run(the_case, tries, now, CONSUMER, CN)
    action = decision.allowed_for("t-m", VOICE)
    assert action is not None and action.disclosure is Disclosure.NONE
    assert refused_rules(decision, "t-m", SMS) == ("channel.not_in_tier",)
    assert Action.REFRESH_CONTACT_DATA in {t.action for t in decision.tasks}
    # Once called today, the contact waits for tomorrow (NIFA art. 14: once a day).
    called = history(*tries.attempts, attempt(at(2026, 3, 12, 10, 0), "t", "t-m"))
    later = run(the_case, called, at(2026, 3, 12, 15, 0), CONSUMER, CN)
    assert "cap.party.attempts" in refused_rules(later, "t-m", VOICE)


def test_mid_tier_three_conversations_end_the_day() -> None:
    talks = history(
        *[attempt(at(2026, 3, 12, h, 0), result=Result.RIGHT_PARTY) for h in (9, 11, 14)]
    )
    decision = run(case(due=DUE), talks, at(2026, 3, 12, 18, 0), CONSUMER, CN)
    rules = refused_rules(decision, "m1", VOICE)
    assert "cap.party.conversations" in rules
    assert "guardrail.cap.cn.conversations_per_day" in rules


def test_severe_tier_sends_two_sms_a_day_at_most() -> None:
    texts = history(
        attempt(at(2026, 4, 7, 9, 0), channel=SMS, result=Result.DELIVERED),
        attempt(at(2026, 4, 7, 11, 0), channel=SMS, result=Result.DELIVERED),
    )
    decision = run(case(due=DUE), texts, at(2026, 4, 7, 15, 0), CONSUMER, CN)  # dpd 37
    assert decision.tier == "severe"
    assert "cap.case.attempts" in refused_rules(decision, "m1", SMS)
    assert is_allowed(decision, "m1", VOICE)


def test_b2b_first_week_emails_and_calls_in_the_morning_on_a_monday() -> None:
    bill = case(
        debtor(phone("m1"), email("e1", "ap@customer.example")),
        due=date(2026, 4, 30),
        stage=Stage.BILL_CONFIRMATION,
        stage_started_on=date(2026, 3, 8),
    )
    decision = run(bill, None, at(2026, 3, 9, 9, 30), B2B, COMMERCIAL)  # Monday, day 1
    assert decision.tier == "bill_confirm_first_week"
    assert is_allowed(decision, "e1", EMAIL) and is_allowed(decision, "m1", VOICE)
    assert refused_rules(decision, "m1", SMS) == ("channel.not_in_tier",)
    action = decision.allowed_for("m1", VOICE)
    assert action is not None and action.preference == 3  # morning, Monday, early month
    assert action.window_end == at(2026, 3, 9, 11, 30)


def test_b2b_every_two_days_then_daily() -> None:
    bill = case(
        debtor(phone("m1"), email("e1", "ap@customer.example")),
        due=date(2026, 4, 30),
        stage=Stage.BILL_CONFIRMATION,
        stage_started_on=date(2026, 3, 8),
    )
    called = history(attempt(at(2026, 3, 9, 9, 30), result=Result.RIGHT_PARTY))
    tuesday = run(bill, called, at(2026, 3, 10, 10, 0), B2B, COMMERCIAL)
    # Monday's call was the follow-up: no email and no call on Tuesday (one occasion in
    # two days, source 账款催收 §一), both again on Wednesday morning.
    for cp_id, channel in (("m1", VOICE), ("e1", EMAIL)):
        assert "cap.case.occasions" in refused_rules(tuesday, cp_id, channel)
        refusal = tuesday.refusal_for(cp_id, channel)
        assert refusal is not None and refusal.next_allowed == at(2026, 3, 11, 9, 0)
    # Week two: daily.
    called_again = history(attempt(at(2026, 3, 16, 9, 30), result=Result.RIGHT_PARTY))
    week_two = run(bill, called_again, at(2026, 3, 17, 10, 0), B2B, COMMERCIAL)
    assert week_two.tier == "bill_confirm_second_week"
    assert is_allowed(week_two, "m1", VOICE)


def test_b2b_no_calls_on_weekends_or_after_hours() -> None:
    paying = case(due=DUE, stage=Stage.PAYMENT, stage_started_on=date(2026, 2, 1))
    saturday = run(paying, None, at(2026, 3, 7, 10, 0), B2B, COMMERCIAL)
    assert not saturday.allowed
    refusal = saturday.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 9, 9, 0)
    assert not run(paying, None, at(2026, 3, 9, 17, 0), B2B, COMMERCIAL).allowed


def test_b2b_last_hour_of_the_afternoon_ranks_lower() -> None:
    paying = case(due=DUE, stage=Stage.PAYMENT, stage_started_on=date(2026, 2, 1))
    late = run(paying, None, at(2026, 3, 10, 16, 30), B2B, COMMERCIAL).allowed_for("m1", VOICE)
    early = run(paying, None, at(2026, 3, 10, 14, 30), B2B, COMMERCIAL).allowed_for("m1", VOICE)
    assert late is not None and early is not None
    assert late.preference < early.preference
    assert "- last hour of the working day" in late.preference_notes


def test_b2b_escalation_ladder_by_months_unpaid() -> None:
    paying = case(due=DUE, stage=Stage.PAYMENT, stage_started_on=date(2026, 2, 1))
    for day, action in {
        date(2026, 3, 17): Action.NOTIFY_SUPERVISOR,  # dpd 16
        date(2026, 4, 2): Action.NOTIFY_MANAGER,  # dpd 32
        date(2026, 5, 2): Action.NOTIFY_GENERAL_MANAGER,  # dpd 62
    }.items():
        decision = run(paying, None, at(day.year, day.month, day.day, 10), B2B, COMMERCIAL)
        assert {t.action for t in decision.tasks} == {action}, day


# --- the B2B cadence counts follow-ups (occasions), not messages per channel ---------------
def b2b_customer(due: date) -> Any:
    return case(
        debtor(phone("m1"), email("e1", "ap@customer.example")),
        due=due,
        stage=Stage.PAYMENT,
        stage_started_on=date(2026, 2, 1),
    )


def test_b2b_reminds_once_in_the_week_before_the_due_date() -> None:
    """Source 账款催收 §二: 合约规定支付日期前一周,提醒一次 (one reminder a week before)."""
    paying = b2b_customer(date(2026, 3, 31))  # due on a Tuesday
    mailed = history(attempt(at(2026, 3, 24, 9, 30), "d", "e1", EMAIL, Result.DELIVERED))
    # The reminder's day may carry a call as well (one occasion: mailed, then rung).
    same_day = run(paying, mailed, at(2026, 3, 24, 14, 30), B2B, COMMERCIAL)
    assert same_day.tier == "payment_reminder"
    assert is_allowed(same_day, "m1", VOICE)
    # No second reminder on any working day up to the due date, by either channel.
    for day in (25, 26, 27, 30):
        later = run(paying, mailed, at(2026, 3, day, 10, 0), B2B, COMMERCIAL)
        assert later.tier == "payment_reminder"
        for cp_id, channel in (("m1", VOICE), ("e1", EMAIL)):
            assert "cap.case.occasions" in refused_rules(later, cp_id, channel), day
            refusal = later.refusal_for(cp_id, channel)
            # The next contact is the overdue follow-up, the morning after the due date
            # (the due date itself is not overdue).
            assert refusal is not None and refusal.next_allowed == at(2026, 4, 1, 9, 0)


def test_b2b_overdue_call_yesterday_leaves_no_email_today() -> None:
    """Source 账款催收 §二: overdue up to a week, 每两日跟进一次,采用邮件加电话方式: one
    follow-up every two days, by email and phone."""
    paying = b2b_customer(date(2026, 5, 12))
    called = history(attempt(at(2026, 5, 13, 10, 0)))  # Wednesday, DPD 1
    thursday = run(paying, called, at(2026, 5, 14, 10, 0), B2B, COMMERCIAL)
    assert thursday.tier == "payment_overdue_first_week"
    assert "cap.case.occasions" in refused_rules(thursday, "e1", EMAIL)
    refusal = thursday.refusal_for("e1", EMAIL)
    assert refusal is not None and refusal.next_allowed == at(2026, 5, 15, 9, 0)
    # Wednesday itself was the follow-up: its email may still go out that afternoon.
    wednesday = run(paying, called, at(2026, 5, 13, 14, 30), B2B, COMMERCIAL)
    assert is_allowed(wednesday, "e1", EMAIL)
    assert "cap.case.attempts" in refused_rules(wednesday, "m1", VOICE)  # one call a day


# --- guarantors and co-borrowers: debt-related parties (GB/T 45251-2025) -------------------
def with_guarantor_and_co_borrower(due: date) -> Any:
    return case(
        debtor(),
        party("g", PartyRole.GUARANTOR, phone("g-m", "+8613700137000")),
        party("cb", PartyRole.CO_BORROWER, phone("cb-m", "+8613600136000")),
        due=due,
    )


def test_consumer_co_borrower_is_collected_from_as_the_debtor_from_dpd_1() -> None:
    the_case = with_guarantor_and_co_borrower(DUE)
    early = run(the_case, None, at(2026, 3, 3, 10, 0), CONSUMER, CN)  # dpd 2
    assert early.tier == "early"
    for channel in (VOICE, SMS):
        action = early.allowed_for("cb-m", channel)
        assert action is not None and action.disclosure is Disclosure.FULL
    # GB/T 45251-2025: 3 effective conversations a day with one who owes the debt.
    talks = history(
        *[
            attempt(at(2026, 3, 12, h, 0), "cb", "cb-m", result=Result.RIGHT_PARTY)
            for h in (9, 11, 14)
        ]
    )
    mid = run(the_case, talks, at(2026, 3, 12, 17, 0), CONSUMER, CN)
    assert "cap.party.conversations" in refused_rules(mid, "cb-m", VOICE)
    assert is_allowed(mid, "m1", VOICE)  # the debtor's own count is apart


def test_consumer_guarantor_by_tier() -> None:
    """Held back before DPD 6 (the source calls contacts 'or not at all' at DPD 1-5);
    told of the loan and asked to urge repayment from DPD 6, as the source does with
    contacts who know of the loan; at most once a day in the mid tier."""
    the_case = with_guarantor_and_co_borrower(DUE)
    pre_due = run(
        with_guarantor_and_co_borrower(date(2026, 3, 5)), None, at(2026, 3, 3, 10), CONSUMER, CN
    )
    assert pre_due.tier == "pre_due"
    assert refused_rules(pre_due, "g-m", SMS) == ("party.not_in_tier",)
    assert refused_rules(pre_due, "cb-m", SMS) == ("party.not_in_tier",)

    early = run(the_case, None, at(2026, 3, 3, 10, 0), CONSUMER, CN)
    assert refused_rules(early, "g-m", VOICE) == ("party.tier_forbids",)

    mid = run(the_case, None, at(2026, 3, 12, 10, 0), CONSUMER, CN)  # dpd 11, debtor reachable
    action = mid.allowed_for("g-m", VOICE)
    assert action is not None and action.disclosure is Disclosure.FULL
    assert action.template_key == "mid.voice.guarantor.full"
    assert refused_rules(mid, "g-m", SMS) == ("channel.not_in_tier",)
    called = history(attempt(at(2026, 3, 12, 10, 0), "g", "g-m"))
    later = run(the_case, called, at(2026, 3, 12, 15, 0), CONSUMER, CN)
    assert "cap.party.attempts" in refused_rules(later, "g-m", VOICE)

    severe = run(the_case, None, at(2026, 4, 7, 10, 0), CONSUMER, CN)  # dpd 37
    assert severe.tier == "severe"
    for channel in (VOICE, SMS):
        action = severe.allowed_for("g-m", channel)
        assert action is not None and action.disclosure is Disclosure.FULL
