"""validate_strategy: every place a document asks for more than its profile allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from strategy.document import Cap, Counted, Scope, Strategy
from strategy.guardrails import CN_CONSUMER, COMMERCIAL, US_CONSUMER, Clause, GuardrailProfile
from strategy.model import Channel, PartyRole
from strategy.validation import Violation, cap_implies, validate_strategy

FIXTURES = Path(__file__).parent / "fixtures"

# Caps that imply cn-consumer's two: 3 debtor conversations a day, 6 unanswered per number.
CN_CAPS: list[dict[str, Any]] = [
    {"scope": "party", "count": "conversations", "limit": 3, "local_days": 1, "roles": ["debtor"]},
    {"scope": "contact_point", "count": "unanswered", "limit": 6, "local_days": 1},
]
US_VOICE_CAP: dict[str, Any] = {
    "scope": "party",
    "count": "attempts",
    "limit": 7,
    "local_days": 7,
    "channels": ["voice"],
}


def tier(**fields: Any) -> dict[str, Any]:
    """A tier that satisfies cn-consumer, with `fields` replacing its defaults."""
    base: dict[str, Any] = {
        "id": "mid",
        "dpd": {"min": 6, "max": 17},
        "channels": ["voice", "sms"],
        "windows": {"mon": ["09:00-12:00", "14:00-20:00"]},
        "parties": {"debtor": {"contact": "always", "disclosure": "full"}},
        "caps": CN_CAPS,
    }
    return base | fields


def strategy(profile: str, *tiers: dict[str, Any]) -> Strategy:
    return Strategy.model_validate({"name": "test", "profile": profile, "tiers": list(tiers)})


def validate(profile: GuardrailProfile, *tiers: dict[str, Any]) -> list[Violation]:
    return validate_strategy(strategy(profile.name, *tiers), profile)


def clauses(violations: list[Violation]) -> set[str]:
    return {v.clause for v in violations}


def test_tier_within_cn_consumer_has_no_violations() -> None:
    assert validate(CN_CONSUMER, tier()) == []


# --- strategy level -------------------------------------------------------------------------
def test_strategy_naming_another_profile_breaks_profile_mismatch() -> None:
    found = validate_strategy(strategy("commercial", tier()), CN_CONSUMER)

    assert [(v.tier, v.path, v.clause) for v in found] == [(None, "profile", "profile.mismatch")]
    assert "'commercial'" in found[0].message
    assert "'cn-consumer'" in found[0].message


# --- windows --------------------------------------------------------------------------------
@pytest.mark.parametrize("span", ["20:00-23:00", "07:30-09:00", "21:59-22:01"])
def test_span_outside_08_to_22_breaks_cn_window(span: str) -> None:
    found = validate(CN_CONSUMER, tier(windows={"mon": ["09:00-12:00"], "tue": [span]}))

    assert len(found) == 1
    v = found[0]
    assert (v.tier, v.path, v.clause) == ("mid", "tiers[0].windows.tue[0]", "cn.window")
    assert v.source == "GB/T 45251-2025; CBA guideline 2026-01-30"
    assert span in v.message
    assert "08:00-22:00" in v.message


def test_every_span_outside_the_window_is_reported() -> None:
    late = ["08:00-12:00", "20:00-23:00"]
    found = validate(CN_CONSUMER, tier(windows={"mon": late, "sat": late, "sun": late}))

    assert [v.path for v in found] == [
        "tiers[0].windows.mon[1]",
        "tiers[0].windows.sat[1]",
        "tiers[0].windows.sun[1]",
    ]


def test_span_from_08_to_22_exactly_fits_cn_window() -> None:
    assert validate(CN_CONSUMER, tier(windows={"mon": ["08:00-22:00"]})) == []


def test_weekday_without_spans_is_within_the_window() -> None:
    assert validate(CN_CONSUMER, tier(windows={"mon": ["09:00-12:00"], "sun": []})) == []


def test_tier_without_windows_means_any_time_and_breaks_cn_window() -> None:
    found = validate(CN_CONSUMER, tier(windows={}))

    assert [(v.path, v.clause) for v in found] == [("tiers[0].windows", "cn.window")]
    assert "any time" in found[0].message


def test_us_window_ends_at_21() -> None:
    found = validate(
        US_CONSUMER,
        tier(
            windows={"mon": ["08:00-21:30"]},
            caps=[US_VOICE_CAP],
            quiet_hours_after_conversation=168,
        ),
    )

    assert clauses(found) == {"us.inconvenient_time"}


# --- caps -----------------------------------------------------------------------------------
def test_tier_without_caps_breaks_both_cn_caps_with_plain_messages() -> None:
    found = validate(CN_CONSUMER, tier(caps=[]))

    assert [(v.tier, v.path, v.clause) for v in found] == [
        ("mid", "tiers[0].caps", "cn.conversations_per_day"),
        ("mid", "tiers[0].caps", "cn.unanswered_per_method"),
    ]
    assert found[0].message.startswith(
        "tier 'mid' allows unlimited conversations with a debtor per party per day;"
        " cn-consumer allows 3"
    )
    assert found[1].message.startswith(
        "tier 'mid' allows unlimited unanswered attempts per contact point per day;"
        " cn-consumer allows 6"
    )
    assert found[1].source == "CBA guideline 2026"


def test_cap_above_the_profile_limit_names_what_the_tier_allows() -> None:
    loose = {"scope": "contact_point", "count": "unanswered", "limit": 8, "local_days": 1}

    found = validate(CN_CONSUMER, tier(caps=[CN_CAPS[0], loose]))

    assert [v.clause for v in found] == ["cn.unanswered_per_method"]
    assert found[0].message.startswith("tier 'mid' allows up to 8 unanswered attempts")


def test_case_level_attempt_cap_implies_both_cn_caps() -> None:
    case_cap = {"scope": "case", "count": "attempts", "limit": 3, "local_days": 1}

    assert validate(CN_CONSUMER, tier(caps=[case_cap])) == []


def test_case_level_attempt_cap_above_three_does_not_imply_three_conversations() -> None:
    case_cap = {"scope": "case", "count": "attempts", "limit": 5, "local_days": 1}

    assert clauses(validate(CN_CONSUMER, tier(caps=[case_cap]))) == {"cn.conversations_per_day"}


def test_cap_over_a_longer_period_with_a_lower_limit_implies_a_daily_cap() -> None:
    # At most 5 in any 2 local days means at most 5 on any one day, which is <= 6.
    two_days = {"scope": "case", "count": "unanswered", "limit": 5, "local_days": 2}

    assert validate(CN_CONSUMER, tier(caps=[CN_CAPS[0], two_days])) == []


def test_cap_over_a_shorter_period_does_not_imply_a_weekly_cap() -> None:
    # 2 calls a day allows 14 in 7 days: more than 12 CFR 1006.14(b)(2)(i)'s 7.
    daily = US_VOICE_CAP | {"limit": 2, "local_days": 1}

    found = validate(
        US_CONSUMER,
        tier(windows={"mon": ["09:00-20:00"]}, caps=[daily], quiet_hours_after_conversation=168),
    )

    assert [(v.path, v.clause) for v in found] == [("tiers[0].caps", "us.call_frequency")]
    assert "2 voice attempts per party per day" not in found[0].message
    assert "up to 14 voice attempts per party per 7 local days" in found[0].message


def test_one_call_a_local_day_implies_seven_in_seven_days() -> None:
    # Any 7 consecutive local days are 7 one-day windows of at most 1 call each.
    daily = US_VOICE_CAP | {"limit": 1, "local_days": 1}

    found = validate(
        US_CONSUMER,
        tier(windows={"mon": ["09:00-20:00"]}, caps=[daily], quiet_hours_after_conversation=168),
    )

    assert found == []


def test_rolling_hours_cap_does_not_imply_a_local_day_cap() -> None:
    rolling = {"scope": "contact_point", "count": "unanswered", "limit": 6, "rolling_hours": 48}

    found = validate(CN_CONSUMER, tier(caps=[CN_CAPS[0], rolling]))

    assert clauses(found) == {"cn.unanswered_per_method"}


def test_rolling_cap_over_more_hours_implies_a_rolling_cap() -> None:
    required = Cap(scope=Scope.PARTY, limit=4, rolling_hours=24)

    assert cap_implies(Cap(scope=Scope.CASE, limit=4, rolling_hours=36), required)
    assert not cap_implies(Cap(scope=Scope.CASE, limit=4, rolling_hours=12), required)


def test_narrower_scope_does_not_imply_a_party_cap() -> None:
    per_number = CN_CAPS[0] | {"scope": "contact_point"}

    found = validate(CN_CONSUMER, tier(caps=[per_number, CN_CAPS[1]]))

    assert clauses(found) == {"cn.conversations_per_day"}


def test_conversation_cap_does_not_imply_an_unanswered_cap() -> None:
    conversations = CN_CAPS[1] | {"count": "conversations"}

    found = validate(CN_CONSUMER, tier(caps=[CN_CAPS[0], conversations]))

    assert clauses(found) == {"cn.unanswered_per_method"}


def test_attempt_cap_implies_unanswered_and_conversation_caps() -> None:
    for counted in (Counted.UNANSWERED, Counted.CONVERSATIONS):
        required = Cap(scope=Scope.PARTY, count=counted, limit=3, local_days=1)
        assert cap_implies(Cap(scope=Scope.PARTY, limit=3, local_days=1), required)


def test_cap_on_some_channels_does_not_imply_a_cap_on_every_channel() -> None:
    voice_only = CN_CAPS[1] | {"channels": ["voice"]}

    found = validate(CN_CONSUMER, tier(caps=[CN_CAPS[0], voice_only]))

    assert clauses(found) == {"cn.unanswered_per_method"}


def test_cap_on_some_roles_does_not_imply_a_cap_on_every_role() -> None:
    debtor_only = CN_CAPS[1] | {"roles": ["debtor"]}

    found = validate(CN_CONSUMER, tier(caps=[CN_CAPS[0], debtor_only]))

    assert clauses(found) == {"cn.unanswered_per_method"}


def test_cap_on_more_roles_implies_a_cap_on_the_debtor() -> None:
    required = Cap(
        scope=Scope.PARTY,
        count=Counted.CONVERSATIONS,
        limit=3,
        local_days=1,
        roles=frozenset({PartyRole.DEBTOR}),
    )
    wider = required.model_copy(update={"roles": frozenset(PartyRole), "limit": 2})

    assert cap_implies(wider, required)


def test_us_strategy_without_a_voice_7_in_7_cap_breaks_us_call_frequency() -> None:
    found = validate(
        US_CONSUMER,
        tier(windows={"mon": ["09:00-20:00"]}, caps=[], quiet_hours_after_conversation=168),
    )

    assert [(v.tier, v.path, v.clause) for v in found] == [
        ("mid", "tiers[0].caps", "us.call_frequency")
    ]
    assert found[0].source == "12 CFR 1006.14(b)(2)(i)"


def test_us_strategy_with_a_voice_7_in_7_cap_satisfies_us_call_frequency() -> None:
    found = validate(
        US_CONSUMER,
        tier(
            windows={"mon": ["09:00-20:00"]},
            caps=[US_VOICE_CAP],
            quiet_hours_after_conversation=168,
        ),
    )

    assert found == []


def test_profile_cap_on_a_channel_the_tier_never_uses_is_not_broken() -> None:
    # us.call_frequency counts calls; a tier that only texts and emails cannot break it.
    found = validate(US_CONSUMER, tier(windows={"mon": ["09:00-20:00"]}, channels=["sms"], caps=[]))

    assert found == []


def test_channel_added_by_a_party_rule_counts_as_used() -> None:
    parties = {
        "debtor": {"contact": "always", "disclosure": "full"},
        "attorney": {"contact": "always", "disclosure": "full", "channels": ["voice"]},
    }

    found = validate(
        US_CONSUMER,
        tier(windows={"mon": ["09:00-20:00"]}, channels=["sms"], parties=parties, caps=[]),
    )

    assert clauses(found) == {"us.call_frequency", "us.call_after_conversation"}


# --- disclosure -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field", ["disclosure", "disclosure_if_knows_debt", "disclosure_if_debtor_unreachable"]
)
def test_third_party_full_disclosure_breaks_cn_third_party(field: str) -> None:
    third = {"contact": "when_debtor_unreachable", "disclosure": "none", field: "full"}
    parties = {"debtor": {"disclosure": "full"}, "third_party": third}

    found = validate(CN_CONSUMER, tier(parties=parties))

    assert [(v.tier, v.path, v.clause) for v in found] == [
        ("mid", f"tiers[0].parties.third_party.{field}", "cn.third_party")
    ]
    assert "full" in found[0].message
    assert "at most none" in found[0].message


def test_third_party_identity_disclosure_breaks_us_third_party() -> None:
    parties = {"third_party": {"contact": "always", "disclosure": "identity"}}

    found = validate(
        US_CONSUMER,
        tier(
            windows={"mon": ["09:00-20:00"]},
            parties=parties,
            caps=[US_VOICE_CAP],
            quiet_hours_after_conversation=168,
        ),
    )

    assert [(v.path, v.clause) for v in found] == [
        ("tiers[0].parties.third_party.disclosure", "us.third_party")
    ]


def test_third_party_without_disclosure_satisfies_cn_third_party() -> None:
    third = {
        "contact": "when_debtor_unreachable",
        "disclosure": "none",
        "disclosure_if_knows_debt": "none",
    }
    parties = {"debtor": {"disclosure": "full"}, "third_party": third}

    assert validate(CN_CONSUMER, tier(parties=parties)) == []


def test_debtor_full_disclosure_is_within_cn_consumer() -> None:
    parties = {role: {"disclosure": "full"} for role in ("debtor", "guarantor", "co_borrower")}

    assert validate(CN_CONSUMER, tier(parties=parties)) == []


# --- third parties only when the debtor is unreachable --------------------------------------
@pytest.mark.parametrize("contact", ["always", "if_knows_of_debt"])
def test_third_party_contacted_before_debtor_unreachable_breaks_cn_third_party(
    contact: str,
) -> None:
    parties = {"debtor": {}, "third_party": {"contact": contact, "disclosure": "none"}}

    found = validate(CN_CONSUMER, tier(parties=parties))

    assert [(v.path, v.clause) for v in found] == [
        ("tiers[0].parties.third_party.contact", "cn.third_party")
    ]
    assert contact in found[0].message


@pytest.mark.parametrize("contact", ["when_debtor_unreachable", "never"])
def test_third_party_contacted_only_when_debtor_unreachable_satisfies_cn(contact: str) -> None:
    parties = {"debtor": {}, "third_party": {"contact": contact}}

    assert validate(CN_CONSUMER, tier(parties=parties)) == []


def test_us_consumer_may_contact_third_parties_for_location_information() -> None:
    parties = {"debtor": {}, "third_party": {"contact": "always", "disclosure": "none"}}

    found = validate(
        US_CONSUMER,
        tier(
            windows={"mon": ["09:00-20:00"]},
            parties=parties,
            caps=[US_VOICE_CAP],
            quiet_hours_after_conversation=168,
        ),
    )

    assert found == []


# --- quiet period after a conversation ------------------------------------------------------
def test_calling_within_7_days_of_a_conversation_breaks_us_call_after_conversation() -> None:
    found = validate(
        US_CONSUMER,
        tier(
            windows={"mon": ["09:00-20:00"]}, caps=[US_VOICE_CAP], quiet_hours_after_conversation=24
        ),
    )

    assert [(v.path, v.clause) for v in found] == [
        ("tiers[0].quiet_hours_after_conversation", "us.call_after_conversation")
    ]
    assert "waits 24 hours" in found[0].message
    assert "requires 168" in found[0].message


def test_quiet_period_is_not_required_of_a_tier_that_never_calls() -> None:
    found = validate(
        US_CONSUMER, tier(windows={"mon": ["09:00-20:00"]}, channels=["email"], caps=[])
    )

    assert found == []


# --- approvals ------------------------------------------------------------------------------
def b2b_tier(**fields: Any) -> dict[str, Any]:
    return tier(
        id="overdue",
        channels=["email", "voice"],
        windows={"mon": ["09:00-11:30", "14:00-17:00"]},
        caps=[],
        **fields,
    )


def test_account_lock_without_approval_breaks_the_approval_clause() -> None:
    escalations = [{"action": "notify_manager"}, {"action": "account_lock", "min_dpd": 91}]

    found = validate(COMMERCIAL, b2b_tier(escalations=escalations))

    assert [(v.tier, v.path, v.clause) for v in found] == [
        ("overdue", "tiers[0].escalations[1].requires_approval", "approval")
    ]
    assert "account_lock" in found[0].message


@pytest.mark.parametrize(
    "action", ["account_lock", "demand_letter", "statement_of_account", "lawyer_letter"]
)
def test_approval_actions_with_requires_approval_satisfy_the_approval_clause(action: str) -> None:
    escalations = [{"action": action, "requires_approval": True}]

    assert validate(COMMERCIAL, b2b_tier(escalations=escalations)) == []


def test_field_visit_needs_no_approval() -> None:
    assert validate(COMMERCIAL, b2b_tier(escalations=[{"action": "field_visit"}])) == []


# --- the source's ladder, unnarrowed --------------------------------------------------------
def load_unnarrowed() -> Strategy:
    text = (FIXTURES / "consumer-loan-unnarrowed.yaml").read_text("utf-8")
    return Strategy.model_validate(yaml.safe_load(text))


def test_unnarrowed_source_ladder_is_rejected_by_cn_consumer() -> None:
    found = validate_strategy(load_unnarrowed(), CN_CONSUMER)
    by_tier = {(v.tier, v.clause) for v in found}
    paths = {(v.tier, v.path) for v in found}

    expected = {
        "cn.third_party",
        "cn.window",
        "cn.conversations_per_day",
        "cn.unanswered_per_method",
    }
    assert expected <= clauses(found)
    for tier_id in ("early", "mid", "late", "severe"):
        for clause in expected:
            assert (tier_id, clause) in by_tier, (tier_id, clause)
    # Each of the source's third-party habits is named where it is written.
    assert ("early", "tiers[0].parties.third_party.contact") in paths
    assert ("mid", "tiers[1].parties.third_party.contact") in paths
    assert ("mid", "tiers[1].parties.third_party.disclosure_if_knows_debt") in paths
    assert ("late", "tiers[2].parties.third_party.disclosure_if_debtor_unreachable") in paths
    assert ("severe", "tiers[3].parties.third_party.disclosure") in paths
    # A demand letter without approval, and every 08:00-23:00 span on all seven days.
    assert ("severe", "approval") in by_tier
    assert sum(v.clause == "cn.window" for v in found) == 4 * 7


def test_every_violation_carries_its_clause_source() -> None:
    sources = {clause.id: clause.source for clause in _cn_clauses()}

    for v in validate_strategy(load_unnarrowed(), CN_CONSUMER):
        assert v.source == sources[v.clause]
        assert v.message


def _cn_clauses() -> list[Clause]:
    profile = CN_CONSUMER
    listed: list[Clause | None] = [profile.window_clause, profile.approval_clause]
    listed += [c.clause for c in profile.caps]
    listed += [profile.disclosure_clause, profile.third_party_clause]
    return [c for c in listed if c is not None]


def test_violation_is_immutable() -> None:
    v = Violation(tier=None, path="profile", clause="x", source="y", message="z")

    with pytest.raises(AttributeError):
        v.path = "other"  # type: ignore[misc]


def test_cap_on_every_channel_implies_a_voice_cap_and_not_the_reverse() -> None:
    # A cap with channels None counts every channel a tier can use.
    everything = Cap(scope=Scope.CASE, limit=1, local_days=1)
    voice = Cap(scope=Scope.CASE, limit=1, local_days=1, channels=frozenset({Channel.VOICE}))

    assert cap_implies(everything, voice)
    assert not cap_implies(voice, everything)
