"""The shipped presets load, stay within their profiles, and match the committed schema."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from strategy.document import (
    Action,
    ContactWhen,
    Counted,
    Preference,
    Scope,
    Strategy,
    strategy_json_schema,
)
from strategy.guardrails import get_profile
from strategy.model import Channel, Disclosure, PartyRole, Stage
from strategy.presets import PRESET_NAMES, SCHEMA_FILE, load_preset
from strategy.validation import validate_strategy

REGENERATE = (
    ".venv/bin/python -c 'import json; from strategy.document import strategy_json_schema;"
    ' open("strategy/presets/strategy.schema.json", "w").write('
    'json.dumps(strategy_json_schema(), indent=2, ensure_ascii=False) + "\\n")\''
)


def committed_schema() -> Any:
    text = resources.files("strategy").joinpath("presets", SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_loads_and_stays_within_its_profile(name: str) -> None:
    preset = load_preset(name)

    assert preset.name == name
    assert validate_strategy(preset, get_profile(preset.profile)) == []


def test_every_shipped_yaml_is_a_named_preset() -> None:
    shipped = resources.files("strategy").joinpath("presets").iterdir()
    names = {f.name.removesuffix(".yaml") for f in shipped if f.name.endswith(".yaml")}

    assert names == set(PRESET_NAMES)


def test_unknown_preset_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="consumer-loan"):
        load_preset("payday")


def test_committed_schema_is_the_generated_one() -> None:
    assert committed_schema() == strategy_json_schema(), f"regenerate it: {REGENERATE}"


def test_schema_accepts_spans_as_written_in_the_presets() -> None:
    span = committed_schema()["$defs"]["Span"]
    pattern = next(s["pattern"] for s in span["anyOf"] if s.get("type") == "string")

    for name in PRESET_NAMES:
        raw = resources.files("strategy").joinpath("presets", f"{name}.yaml").read_text("utf-8")
        written = re.findall(r'"(\d\d:\d\d-\d\d:\d\d)"', raw)
        assert written
        assert all(re.fullmatch(pattern, text) for text in written)


# --- consumer-loan ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def consumer() -> Strategy:
    return load_preset("consumer-loan")


def test_consumer_loan_runs_under_cn_consumer_by_dpd_in_shanghai(consumer: Strategy) -> None:
    assert (consumer.profile, consumer.ladder) == ("cn-consumer", "dpd")
    assert (consumer.timezone, consumer.holiday_country) == ("Asia/Shanghai", "CN")
    assert [t.id for t in consumer.tiers] == ["pre_due", "early", "mid", "late", "severe"]
    ranges = [(t.dpd.min, t.dpd.max) for t in consumer.tiers if t.dpd]
    assert ranges == [(-3, 0), (1, 5), (6, 17), (18, 30), (31, None)]


def test_consumer_pre_due_texts_only_the_debtor_once_a_day(consumer: Strategy) -> None:
    pre_due = consumer.tier("pre_due")

    assert pre_due.channels == {Channel.SMS}
    assert set(pre_due.parties) == {PartyRole.DEBTOR}
    assert any(
        c.scope is Scope.CASE and c.count is Counted.ATTEMPTS and c.limit == 1 and c.local_days == 1
        for c in pre_due.caps
    )


def test_consumer_never_tells_a_third_party_of_the_debt(consumer: Strategy) -> None:
    for tier in consumer.tiers:
        rule = tier.parties.get(PartyRole.THIRD_PARTY)
        if rule is None:
            continue
        assert rule.contact in (ContactWhen.WHEN_DEBTOR_UNREACHABLE, ContactWhen.NEVER)
        raised = (rule.disclosure_if_knows_debt, rule.disclosure_if_debtor_unreachable)
        assert rule.disclosure is Disclosure.NONE
        assert all(level in (None, Disclosure.NONE) for level in raised)


def test_consumer_keeps_three_a_day_as_a_spaced_target_under_caps(consumer: Strategy) -> None:
    mid = consumer.tier("mid")

    assert mid.daily_target == 3
    assert any(s.scope is Scope.PARTY and s.minutes >= 120 for s in mid.spacing)
    assert any(c.scope is Scope.CASE and c.local_days == 1 for c in mid.caps)


def test_consumer_records_every_narrowing_with_its_clause(consumer: Strategy) -> None:
    for tier_id in ("mid", "late", "severe"):
        narrowed = consumer.tier(tier_id).narrowed
        assert narrowed, tier_id
        assert any("cn.third_party" in line for line in narrowed), tier_id
    assert any("cn.conversations_per_day" in line for line in consumer.tier("mid").narrowed)


def test_consumer_windows_and_preferences(consumer: Strategy) -> None:
    for tier in consumer.tiers:
        assert tier.skip_holidays
        assert {str(s) for s in tier.windows["mon"]} == {"09:00-12:00", "14:00-20:00"}
        weekday = sum(e - s for s, e in (x.minutes for x in tier.windows["mon"]))
        weekend = sum(e - s for s, e in (x.minutes for x in tier.windows["sat"]))
        assert weekend < weekday
        assert not tier.hard_preferences
    early = consumer.tier("early")
    assert set(early.preferences) == set(Preference)


def test_consumer_escalations(consumer: Strategy) -> None:
    assert Action.REFRESH_CONTACT_DATA in {e.action for e in consumer.tier("mid").escalations}
    severe = {e.action: e for e in consumer.tier("severe").escalations}
    assert {Action.CASE_REVIEW, Action.FIELD_VISIT, Action.DEMAND_LETTER} <= set(severe)
    assert severe[Action.DEMAND_LETTER].requires_approval
    assert consumer.tier("early").quiet_hours_after_conversation >= 4
    assert all(t.guidance for t in consumer.tiers)


# --- b2b-receivables --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def b2b() -> Strategy:
    return load_preset("b2b-receivables")


def cadence_caps(
    strategy: Strategy, tier_id: str
) -> tuple[dict[Channel, tuple[int, int | None]], tuple[int, int | None] | None]:
    """A B2B tier's caps: per channel (limit, local days), and its occasions cap."""
    per_channel: dict[Channel, tuple[int, int | None]] = {}
    occasions = None
    for cap in strategy.tier(tier_id).caps:
        assert cap.scope is Scope.CASE and cap.channels is not None
        if cap.count is Counted.OCCASIONS:
            assert cap.channels == {Channel.EMAIL, Channel.VOICE}
            occasions = (cap.limit, cap.local_days)
            continue
        for channel in cap.channels:
            per_channel[channel] = (cap.limit, cap.local_days)
    return per_channel, occasions


def test_b2b_runs_under_commercial_by_stage(b2b: Strategy) -> None:
    assert (b2b.profile, b2b.ladder, b2b.timezone) == ("commercial", "stage", "Asia/Shanghai")
    bill = [t for t in b2b.tiers if t.stage is Stage.BILL_CONFIRMATION]
    payment = [t for t in b2b.tiers if t.stage is Stage.PAYMENT]
    assert [(t.days_in_stage.min, t.days_in_stage.max) for t in bill if t.days_in_stage] == [
        (0, 6),
        (7, 13),
        (14, None),
    ]
    assert [(t.dpd.min, t.dpd.max) for t in payment if t.dpd] == [
        (-7, -1),
        (1, 7),
        (8, 14),
        (15, 30),
        (31, 60),
        (61, 90),
        (91, None),
    ]


@pytest.mark.parametrize(
    ("tier_id", "occasions"),
    [
        # Source 账款催收 §一: the first week, a follow-up every two days, by email + phone.
        ("bill_confirm_first_week", (1, 2)),
        ("bill_confirm_second_week", None),
        # §二: remind once in the week before the due date.
        ("payment_reminder", (1, 7)),
        # §二: overdue up to a week, a follow-up every two days, by email + phone.
        ("payment_overdue_first_week", (1, 2)),
        ("payment_overdue_second_week", None),
        ("payment_overdue_three_months", None),
    ],
)
def test_b2b_cadence_counts_follow_ups_across_email_and_phone(
    b2b: Strategy, tier_id: str, occasions: tuple[int, int] | None
) -> None:
    """A follow-up is one occasion on both channels; on its day, one email and one call."""
    assert cadence_caps(b2b, tier_id) == (
        {Channel.EMAIL: (1, 1), Channel.VOICE: (1, 1)},
        occasions,
    )


def test_b2b_contacts_the_customer_in_working_hours_on_weekdays(b2b: Strategy) -> None:
    for tier in b2b.tiers:
        assert tier.channels == {Channel.EMAIL, Channel.VOICE}
        assert set(tier.parties) == {PartyRole.DEBTOR}
        assert tier.parties[PartyRole.DEBTOR].disclosure is Disclosure.FULL
        assert set(tier.windows) == {"mon", "tue", "wed", "thu", "fri"}
        assert {str(s) for s in tier.windows["fri"]} == {"09:00-11:30", "14:00-17:00"}
        assert tier.skip_holidays


def test_b2b_escalates_and_letters_need_approval(b2b: Strategy) -> None:
    def actions(tier_id: str) -> dict[Action, Any]:
        return {e.action: e for e in b2b.tier(tier_id).escalations}

    stalled = actions("bill_confirm_stalled")[Action.NOTIFY_SUPERVISOR]
    assert stalled.days_without_progress == 14
    assert Action.NOTIFY_SUPERVISOR in actions("payment_no_progress")
    assert Action.NOTIFY_MANAGER in actions("payment_overdue_month")
    assert Action.NOTIFY_GENERAL_MANAGER in actions("payment_overdue_two_months")
    last = actions("payment_overdue_three_months")
    needs_approval = {
        Action.ACCOUNT_LOCK,
        Action.DEMAND_LETTER,
        Action.STATEMENT_OF_ACCOUNT,
        Action.LAWYER_LETTER,
    }
    assert needs_approval | {Action.FIELD_VISIT} == set(last)
    assert all(last[a].requires_approval for a in needs_approval)
