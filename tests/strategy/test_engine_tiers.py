"""Tier selection: by days past due (incl. pre-due) on a DPD ladder, by stage and days in
stage on a stage ladder; no tier means no contact until one matches."""

from __future__ import annotations

from datetime import date

from strategy.model import Stage
from strategy.presets import load_preset
from tests.strategy.builders import SHANGHAI, at, case, run, strategy, tier

LADDER = strategy(
    tier("pre_due", dpd={"min": -3, "max": 0}),
    tier("early", dpd={"min": 1, "max": 5}),
    tier("mid", dpd={"min": 6, "max": 17}),
    tier("severe", dpd={"min": 18}),
)
DUE = date(2026, 3, 10)


def test_dpd_counts_local_days_in_the_portfolio_zone() -> None:
    # 2026-03-10 23:30 Shanghai is still the due date there (15:30 UTC): dpd 0.
    assert run(case(due=DUE), None, at(2026, 3, 10, 23, 30), LADDER).days_past_due == 0
    # Ten minutes after local midnight the case is one day late.
    assert run(case(due=DUE), None, at(2026, 3, 11, 0, 10), LADDER).days_past_due == 1


def test_tier_chosen_by_dpd_at_each_boundary() -> None:
    expected = {
        date(2026, 3, 7): "pre_due",  # dpd -3
        date(2026, 3, 10): "pre_due",  # dpd 0
        date(2026, 3, 11): "early",  # dpd 1
        date(2026, 3, 15): "early",  # dpd 5
        date(2026, 3, 16): "mid",  # dpd 6
        date(2026, 3, 27): "mid",  # dpd 17
        date(2026, 3, 28): "severe",  # dpd 18
        date(2026, 9, 1): "severe",
    }
    for day, tier_id in expected.items():
        decision = run(case(due=DUE), None, at(day.year, day.month, day.day, 10), LADDER)
        assert decision.tier == tier_id, (day, decision.tier)


def test_negative_dpd_selects_pre_due_tier() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 8, 10), LADDER)
    assert decision.days_past_due == -2
    assert decision.tier == "pre_due"
    assert decision.allowed


def test_no_tier_refuses_everything_until_the_first_matching_day() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 1, 10), LADDER)  # dpd -9
    assert decision.tier is None
    assert not decision.allowed
    (reason,) = [r for r in decision.case_reasons if r.rule == "tier.none"]
    # The pre-due tier starts at dpd -3: local midnight of 2026-03-07.
    assert reason.next_allowed == at(2026, 3, 7, 0, 0, SHANGHAI)
    # A candidate's next-allowed instant also waits for the profile's 08:00 on that day.
    assert {r.next_allowed for r in decision.refused} == {at(2026, 3, 7, 8, 0, SHANGHAI)}


def test_first_matching_tier_wins_when_ranges_overlap() -> None:
    overlapping = strategy(tier("narrow", dpd={"min": 5, "max": 6}), tier("wide", dpd={"min": 1}))
    assert run(case(due=DUE), None, at(2026, 3, 15, 10), overlapping).tier == "narrow"
    assert run(case(due=DUE), None, at(2026, 3, 20, 10), overlapping).tier == "wide"


def test_stage_ladder_selects_by_stage_and_days_in_stage() -> None:
    stages = strategy(
        tier("confirm_week1", dpd=None, stage="bill_confirmation", days_in_stage={"max": 6}),
        tier("confirm_week2", dpd=None, stage="bill_confirmation", days_in_stage={"min": 7}),
        tier("payment", dpd=None, stage="payment"),
        profile="commercial",
    )
    bill = case(due=DUE, stage=Stage.BILL_CONFIRMATION, stage_started_on=date(2026, 3, 2))
    first = run(bill, None, at(2026, 3, 8, 10), stages)
    assert (first.tier, first.extra["days_in_stage"]) == ("confirm_week1", 6)
    assert run(bill, None, at(2026, 3, 9, 10), stages).tier == "confirm_week2"
    paying = case(due=DUE, stage=Stage.PAYMENT, stage_started_on=date(2026, 3, 2))
    assert run(paying, None, at(2026, 3, 9, 10), stages).tier == "payment"


def test_days_in_stage_tier_never_matches_without_a_stage_start() -> None:
    stages = strategy(
        tier("confirm", dpd=None, stage="bill_confirmation", days_in_stage={"min": 0}),
        profile="commercial",
    )
    bill = case(due=DUE, stage=Stage.BILL_CONFIRMATION, stage_started_on=None)
    decision = run(bill, None, at(2026, 3, 9, 10), stages)
    assert decision.tier is None
    assert "tier.none" in {r.rule for r in decision.case_reasons}


def test_consumer_loan_preset_tiers_by_dpd() -> None:
    preset = load_preset("consumer-loan")
    for day, tier_id in {
        date(2026, 3, 9): "pre_due",
        date(2026, 3, 12): "early",
        date(2026, 3, 20): "mid",
        date(2026, 4, 1): "late",
        date(2026, 4, 20): "severe",
    }.items():
        decision = run(case(due=DUE), None, at(day.year, day.month, day.day, 10), preset)
        assert decision.tier == tier_id, day


def test_b2b_preset_tiers_by_stage_and_dpd() -> None:
    preset = load_preset("b2b-receivables")
    paying = case(due=DUE, stage=Stage.PAYMENT, stage_started_on=date(2026, 2, 20))
    for day, tier_id in {
        date(2026, 3, 3): "payment_reminder",  # dpd -7
        date(2026, 3, 11): "payment_overdue_first_week",  # dpd 1
        date(2026, 3, 18): "payment_overdue_second_week",  # dpd 8
        date(2026, 3, 25): "payment_no_progress",  # dpd 15
        date(2026, 4, 10): "payment_overdue_month",  # dpd 31
        date(2026, 5, 10): "payment_overdue_two_months",  # dpd 61
        date(2026, 6, 9): "payment_overdue_three_months",  # dpd 91
    }.items():
        decision = run(paying, None, at(day.year, day.month, day.day, 10), preset)
        assert decision.tier == tier_id, day
    # Before the reminder week nothing is due yet; on the due date nothing is overdue yet.
    assert run(paying, None, at(2026, 3, 1, 10), preset).tier is None
    assert run(paying, None, at(2026, 3, 10, 10), preset).tier is None
