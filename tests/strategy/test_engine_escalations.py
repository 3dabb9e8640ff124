"""Escalations become tasks with stable keys; the profile forces approval for account
locks and formal letters; `days_without_progress` counts from the last right-party
conversation, at most from tier entry. Preferences rank allowed actions; hard preferences
become refusals."""

from __future__ import annotations

from datetime import date
from typing import Any

from strategy.decision import Decision
from strategy.document import Action
from strategy.model import CaseFlag, PartyRole, Result, Stage
from strategy.presets import load_preset
from tests.strategy.builders import (
    SMS,
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
)

DUE = date(2026, 3, 1)
NOW = at(2026, 3, 10, 10, 0)  # a Tuesday, dpd 9


def actions(decision: Decision) -> set[Action]:
    return {t.action for t in decision.tasks}


def with_escalations(*escalations: dict[str, Any], profile: str = "commercial") -> Any:
    return strategy(tier("t1", escalations=list(escalations)), profile=profile)


def test_account_lock_task_requires_approval() -> None:
    preset = load_preset("b2b-receivables")
    paying = case(due=DUE, stage=Stage.PAYMENT, stage_started_on=date(2026, 2, 1))
    decision = run(paying, None, at(2026, 6, 1, 10, 0), preset)  # dpd 92
    tasks = {t.action: t for t in decision.tasks}
    lock = tasks[Action.ACCOUNT_LOCK]
    assert lock.key == "payment_overdue_three_months:account_lock"
    assert lock.requires_approval
    for letter in (Action.DEMAND_LETTER, Action.STATEMENT_OF_ACCOUNT, Action.LAWYER_LETTER):
        assert tasks[letter].requires_approval
    assert not tasks[Action.FIELD_VISIT].requires_approval


def test_profile_forces_approval_even_when_the_document_omits_it() -> None:
    lax = with_escalations(
        {"action": "account_lock", "requires_approval": False},
        {"action": "lawyer_letter"},
        {"action": "notify_manager"},
    )
    tasks = {t.action: t for t in run(case(due=DUE), None, NOW, lax).tasks}
    assert tasks[Action.ACCOUNT_LOCK].requires_approval
    assert tasks[Action.LAWYER_LETTER].requires_approval
    assert not tasks[Action.NOTIFY_MANAGER].requires_approval


def test_escalation_waits_for_min_dpd() -> None:
    gated = with_escalations({"action": "notify_manager", "min_dpd": 10, "note": "help"})
    assert not run(case(due=DUE), None, NOW, gated).tasks  # dpd 9
    (task,) = run(case(due=DUE), None, at(2026, 3, 11, 10), gated).tasks
    assert task.key == "t1:notify_manager"
    assert task.reason.endswith("help")


def test_escalation_waits_for_min_days_in_stage() -> None:
    gated = strategy(
        tier(
            dpd=None,
            stage="bill_confirmation",
            escalations=[{"action": "notify_supervisor", "min_days_in_stage": 5}],
        ),
        profile="commercial",
    )
    bill = case(due=DUE, stage=Stage.BILL_CONFIRMATION, stage_started_on=date(2026, 3, 6))
    assert not run(bill, None, NOW, gated).tasks  # day 4
    assert actions(run(bill, None, at(2026, 3, 11, 10), gated)) == {Action.NOTIFY_SUPERVISOR}


def test_days_without_progress_counts_from_tier_entry_at_most() -> None:
    preset = load_preset("consumer-loan")  # severe from dpd 31: field visit after 7 idle days
    assert Action.FIELD_VISIT not in actions(run(case(due=DUE), None, at(2026, 4, 7, 10), preset))
    decision = run(case(due=DUE), None, at(2026, 4, 8, 10), preset)  # dpd 38
    assert Action.FIELD_VISIT in actions(decision)
    assert Action.DEMAND_LETTER not in actions(decision)
    letter = run(case(due=DUE), None, at(2026, 4, 15, 10), preset)  # dpd 45
    (task,) = [t for t in letter.tasks if t.action is Action.DEMAND_LETTER]
    assert task.requires_approval
    assert task.key == "severe:demand_letter"


def test_right_party_conversation_resets_days_without_progress() -> None:
    preset = load_preset("consumer-loan")
    talk = history(attempt(at(2026, 4, 5, 10), result=Result.RIGHT_PARTY))
    decision = run(case(due=DUE), talk, at(2026, 4, 8, 10), preset)
    assert Action.FIELD_VISIT not in actions(decision)
    assert Action.CASE_REVIEW in actions(decision)


def test_b2b_stalled_bill_escalates_after_two_more_weeks_without_progress() -> None:
    preset = load_preset("b2b-receivables")
    bill = case(due=DUE, stage=Stage.BILL_CONFIRMATION, stage_started_on=date(2026, 3, 2))
    # The stalled tier starts on day 14 (03-16); 14 idle days inside it end on 03-30.
    assert not run(bill, None, at(2026, 3, 27, 10), preset).tasks
    (task,) = run(bill, None, at(2026, 3, 30, 10), preset).tasks
    assert task.key == "bill_confirm_stalled:notify_supervisor"


def test_no_tasks_for_a_blocked_case() -> None:
    escalating = with_escalations({"action": "notify_manager"})
    assert not run(case(due=DUE, flags=[CaseFlag.BANKRUPTCY]), None, NOW, escalating).tasks


def test_no_escalation_while_a_promise_is_pending() -> None:
    # A debtor who promised to pay is not escalated (letters, account lock) before the
    # promise falls due; a broken promise resumes collection and its escalations.
    escalating = with_escalations({"action": "notify_manager"})
    promise = attempt(
        at(2026, 3, 9, 10), result=Result.PROMISE_TO_PAY, promise_date=date(2026, 3, 20)
    )
    pending = run(case(due=DUE), history(promise), NOW, escalating)
    broken = run(case(due=DUE), history(promise), at(2026, 3, 25, 10), escalating)
    assert not pending.allowed
    assert actions(pending) == set()
    assert actions(broken) == {Action.NOTIFY_MANAGER}


# --- preferences -----------------------------------------------------------------------


def test_morning_ranks_above_afternoon() -> None:
    morning_first = strategy(
        tier(
            preferences=["morning"],
            parties={
                "debtor": {"contact": "always", "disclosure": "full"},
                "guarantor": {"contact": "always", "disclosure": "full"},
            },
        )
    )
    # 10:00 in Shanghai is 13:00 in Sydney: the Shanghai guarantor is called first.
    the_case = case(
        debtor(phone("d1"), tz="Australia/Sydney"),
        party("g", PartyRole.GUARANTOR, phone("g1"), tz="Asia/Shanghai"),
        due=DUE,
    )
    decision = run(the_case, None, NOW, morning_first)
    assert [a.contact_point_id for a in decision.allowed][:2] == ["g1", "g1"]
    first, last = decision.allowed[0], decision.allowed[-1]
    assert (first.preference, first.preference_notes) == (1, ("+ morning",))
    assert (last.preference, last.preference_notes) == (0, ())


def test_debtor_ranks_first_among_equal_preferences() -> None:
    both = strategy(
        tier(
            parties={
                "debtor": {"contact": "always", "disclosure": "full"},
                "guarantor": {"contact": "always", "disclosure": "full"},
            }
        )
    )
    the_case = case(party("g", PartyRole.GUARANTOR, phone("g1")), debtor(phone("d1")), due=DUE)
    decision = run(the_case, None, NOW, both)
    assert decision.allowed[0].candidate.party_role is PartyRole.DEBTOR


def test_soft_preferences_score_but_never_refuse() -> None:
    soft = strategy(tier(preferences=["avoid_weekend", "avoid_month_end", "monday"]))
    saturday = run(case(due=DUE), None, at(2026, 3, 28, 15), soft).allowed_for("m1", VOICE)
    assert saturday is not None and saturday.preference == -1
    month_end = run(case(due=DUE), None, at(2026, 3, 30, 15), soft).allowed_for("m1", VOICE)
    assert month_end is not None and month_end.preference == 0  # Monday +1, month-end -1
    assert set(month_end.preference_notes) == {"+ Monday", "- month-end"}


def test_hard_morning_preference_refuses_the_afternoon() -> None:
    hard = strategy(tier(hard_preferences=["morning"]))
    decision = run(case(due=DUE), None, at(2026, 3, 10, 15, 0), hard)
    assert refused_rules(decision, "m1", VOICE) == ("window.preference",)
    refusal = decision.refusal_for("m1", SMS)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 11, 8, 0)
    assert is_allowed(run(case(due=DUE), None, at(2026, 3, 11, 11, 59), hard), "m1", VOICE)


def test_hard_monday_preference_waits_for_monday() -> None:
    hard = strategy(tier(hard_preferences=["monday"]))
    decision = run(case(due=DUE), None, NOW, hard)  # Tuesday
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.rules == ("window.preference",)
    assert refusal.next_allowed == at(2026, 3, 16, 8, 0)


def test_hard_avoid_last_hour_cuts_the_last_window() -> None:
    hard = strategy(tier(windows={"tue": ["09:00-18:00"]}, hard_preferences=["avoid_last_hour"]))
    assert is_allowed(run(case(due=DUE), None, at(2026, 3, 10, 16, 59), hard), "m1", VOICE)
    late = run(case(due=DUE), None, at(2026, 3, 10, 17, 0), hard)
    assert refused_rules(late, "m1", VOICE) == ("window.preference",)
