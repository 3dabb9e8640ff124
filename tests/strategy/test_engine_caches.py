"""The engine's caches never change an answer.

A compiled strategy carries one bounded cache (`strategy.cache.EngineCache`) of pure
per-instant results, and the process compiles a strategy version once
(`strategy.compiled.StrategyCache`, keyed by version key and profile). These tests show
that a cache answers only for its own strategy and profile, that a different history or
case is never answered from a previous one, that the caches stay within their bounds,
that a re-parsed document of one version finds its compiled strategy, and that a warm
cache gives exactly the decision a fresh compile gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy.cache import INSTANT_CACHE_SIZE, EngineCache, remember
from strategy.calendar import local_date, local_ordinal
from strategy.compiled import CompiledStrategy, StrategyCache, compile_strategy, document_key
from strategy.decision import Decision, Reason
from strategy.document import Strategy
from strategy.engine import _new_decision, decide
from strategy.guardrails import GuardrailProfile, get_profile
from strategy.model import Case, History, ProfileMismatch, Result
from strategy.presets import load_preset
from tests.strategy.builders import (
    SHANGHAI,
    SMS,
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
    strategy,
    tier,
)
from tests.strategy.test_properties import EXAMPLES, Scenario, scenarios

PRESETS = ("consumer-loan", "us-consumer-loan", "b2b-receivables")


def fresh(the_strategy: Strategy, profile: GuardrailProfile) -> CompiledStrategy:
    """A compile that shares no cache with any earlier one (a registry of its own), under
    `profile` as its portfolio's."""
    return StrategyCache().get(the_strategy, profile, portfolio_profile=profile.name)


def cold(
    the_case: Case, the_history: History, now: datetime, s: Strategy, p: GuardrailProfile
) -> Decision:
    return decide(the_case, the_history, now, fresh(s, p))


def test_window_cache_does_not_leak_between_strategies() -> None:
    # Two strategies that differ only in their hours, decided alternately at one instant.
    morning = strategy(tier(windows={d: ["09:00-12:00"] for d in ("mon", "tue", "wed")}))
    afternoon = strategy(tier(windows={d: ["14:00-18:00"] for d in ("mon", "tue", "wed")}))
    profile = get_profile("cn-consumer")
    c = case(debtor(phone()))
    now = at(2026, 3, 10, 10, 30)  # a Tuesday, 10:30 in Shanghai
    for _ in range(2):
        first = decide(c, History(), now, morning, profile)
        second = decide(c, History(), now, afternoon, profile)
        assert is_allowed(first, "m1", VOICE)
        assert "window.local_time" in refused_rules(second, "m1", VOICE)
        assert first == cold(c, History(), now, morning, profile)
        assert second == cold(c, History(), now, afternoon, profile)


def test_caches_do_not_leak_between_profiles_of_one_strategy() -> None:
    # One document compiled against two profiles (its own, and a portfolio's that an
    # administrator switched): cn-consumer allows 08:00-22:00 local, us-consumer
    # 08:00-21:00, so at 21:30 only the first may call.
    doc = strategy(tier(windows={"tue": ["00:00-24:00"]}))
    cn, us = get_profile("cn-consumer"), get_profile("us-consumer")
    c = case(debtor(phone()))
    now = at(2026, 3, 10, 21, 30)
    for _ in range(2):
        under_cn = decide(c, History(), now, doc, cn)
        under_us = decide(c, History(), now, doc, us, portfolio_profile="us-consumer")
        assert under_cn.profile == "cn-consumer" and under_us.profile == "us-consumer"
        assert is_allowed(under_cn, "m1", VOICE)
        assert not is_allowed(under_us, "m1", VOICE)
        assert under_cn == cold(c, History(), now, doc, cn)
        assert under_us == cold(c, History(), now, doc, us)


def test_a_different_history_is_never_answered_from_the_previous_one() -> None:
    # cap.case.attempts: 2 a local day. The same case, strategy and instant with 0, 2 and
    # again 0 attempts today: the verdict follows the history each time.
    doc = strategy(tier(caps=[{"scope": "case", "count": "attempts", "limit": 2, "local_days": 1}]))
    profile = get_profile("cn-consumer")
    c = case(debtor(phone()))
    now = at(2026, 3, 10, 15, 0)
    busy = history(attempt(at(2026, 3, 10, 9, 0)), attempt(at(2026, 3, 10, 11, 30)))
    compiled = compile_strategy(doc, profile)
    quiet_day = decide(c, History(), now, compiled)
    capped = decide(c, busy, now, compiled)
    quiet_again = decide(c, History(), now, compiled)
    assert is_allowed(quiet_day, "m1", VOICE) and is_allowed(quiet_again, "m1", SMS)
    assert "cap.case.attempts" in refused_rules(capped, "m1", VOICE)
    assert quiet_day == quiet_again == cold(c, History(), now, doc, profile)
    assert capped == cold(c, busy, now, doc, profile)


def test_the_tier_cache_answers_each_case_for_its_own_dates() -> None:
    # The consumer-loan preset: 20 days past due is `late`, 2 days past due `early`; two
    # cases decided alternately at one instant on one compiled strategy keep their tiers.
    doc = load_preset("consumer-loan")
    profile = get_profile(doc.profile)
    compiled = compile_strategy(doc, profile)
    now = at(2026, 12, 1, 10, 30)
    late = case(debtor(phone()), due=date(2026, 11, 11))
    early = case(debtor(phone()), due=date(2026, 11, 29))
    for _ in range(2):
        assert decide(late, History(), now, compiled).tier == "late"
        assert decide(early, History(), now, compiled).tier == "early"
    # The next local day moves the early case on by one day past due, not the cached one.
    tomorrow = decide(early, History(), now + timedelta(days=1), compiled)
    assert tomorrow.days_past_due == 3


def test_a_conversation_in_one_history_does_not_quiet_another() -> None:
    # quiet.after_conversation (4 h here): only the history with the
    # conversation is quiet; the same instant with an unanswered call is not.
    doc = strategy(tier(quiet_hours_after_conversation=4))
    profile = get_profile("cn-consumer")
    compiled = compile_strategy(doc, profile)
    c = case(debtor(phone()))
    now = at(2026, 3, 10, 15, 0)
    spoke = history(attempt(at(2026, 3, 10, 13, 0), result=Result.RIGHT_PARTY))
    rang = history(attempt(at(2026, 3, 10, 13, 0), result=Result.NO_ANSWER))
    assert "quiet.after_conversation" in refused_rules(decide(c, spoke, now, compiled), "m1", VOICE)
    assert is_allowed(decide(c, rang, now, compiled), "m1", VOICE)
    assert "quiet.after_conversation" in refused_rules(decide(c, spoke, now, compiled), "m1", VOICE)


def test_instant_caches_stay_bounded() -> None:
    cache: dict[int, int] = {}
    for i in range(INSTANT_CACHE_SIZE * 2 + 3):
        assert remember(cache, i, i * i) == i * i
        assert len(cache) <= INSTANT_CACHE_SIZE
        assert cache[i] == i * i


# Zones with daylight saving (both hemispheres, half-hour and 30-minute shifts) and without.
_ZONES = (
    SHANGHAI,
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
    "Asia/Kolkata",
)


@given(
    zone=st.sampled_from(_ZONES),
    instant=st.integers(
        int(datetime(2020, 1, 1, tzinfo=UTC).timestamp()),
        int(datetime(2032, 1, 1, tzinfo=UTC).timestamp()),
    ),
    shift=st.sampled_from((0.0, -0.001, 0.001, -1.0, 1.0)),
)
def test_local_day_by_offset_matches_zoneinfo(zone: str, instant: int, shift: float) -> None:
    # Instants on the quarter hour (where midnights and transitions fall) and beside them.
    ts = instant // 900 * 900 + shift
    assert local_ordinal(ts, zone) == local_date(ts, zone).toordinal()


def test_local_day_by_offset_on_transition_days() -> None:
    # Every minute of the days New York and Lord Howe change their clocks in 2026.
    for zone, day in (
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Australia/Lord_Howe", date(2026, 4, 5)),
        ("Australia/Lord_Howe", date(2026, 10, 4)),
    ):
        start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp()
        for minute in range(-120, 26 * 60 + 120):
            ts = start + minute * 60.0
            assert local_ordinal(ts, zone) == local_date(ts, zone).toordinal()


_SHARED_PRESETS: dict[str, CompiledStrategy] = {}


def _shared_preset(profile: GuardrailProfile) -> CompiledStrategy:
    """One compiled preset per profile, shared by every example: its caches grow warm
    with other cases, histories and instants."""
    hit = _SHARED_PRESETS.get(profile.name)
    if hit is None:
        hit = _SHARED_PRESETS[profile.name] = compile_strategy(
            load_preset("consumer-loan"), profile, portfolio_profile=profile.name
        )
    return hit


@settings(max_examples=max(1, EXAMPLES * 2 // 5), deadline=None)
@given(scenarios(), st.lists(st.integers(-3 * 24 * 60, 3 * 24 * 60), min_size=1, max_size=3))
def test_warm_caches_give_the_decision_a_fresh_compile_gives(
    s: Scenario, minutes: list[int]
) -> None:
    compiled = compile_strategy(s.strategy, s.profile, portfolio_profile=s.profile.name)
    preset = _shared_preset(s.profile)
    fewer = History(attempts=s.history.attempts[: len(s.history.attempts) // 2])
    for offset in [0, *minutes, 0]:
        now = s.now + timedelta(minutes=offset)
        for hist in (s.history, fewer):
            assert decide(s.case, hist, now, compiled) == cold(
                s.case, hist, now, s.strategy, s.profile
            )
            assert decide(s.case, hist, now, preset) == decide(
                s.case, hist, now, fresh(preset.strategy, s.profile)
            )


def test_each_compiled_strategy_owns_its_cache() -> None:
    doc = load_preset("consumer-loan")
    profile = get_profile(doc.profile)
    one, other = fresh(doc, profile), fresh(doc, profile)
    assert one is not other and one.cache is not other.cache
    assert one.cache.entries() == other.cache.entries() == 0
    decide(case(debtor(phone()), due=date(2026, 11, 11)), History(), at(2026, 12, 1, 10, 30), one)
    assert one.cache.entries() > 0
    assert other.cache.entries() == 0
    assert len(one.cache.tiers) == len(one.tiers) == len(doc.tiers)


def test_the_engine_cache_stays_within_its_bound() -> None:
    # More distinct instants than a per-instant map holds: every map stays within its
    # size, the whole cache within its stated bound, and the answers stay right.
    doc = load_preset("consumer-loan")
    profile = get_profile(doc.profile)
    compiled = fresh(doc, profile)
    cache = compiled.cache
    c = case(debtor(phone(), email()), due=date(2026, 11, 11))
    start = at(2026, 12, 1, 10, 30)
    for i in range(INSTANT_CACHE_SIZE + 50):
        now = start + timedelta(seconds=i)
        d = decide(c, History(), now, compiled)
        if i % 1000 == 0:
            assert d == cold(c, History(), now, doc, profile)
        assert len(cache.instants) <= INSTANT_CACHE_SIZE
        assert len(cache.since) <= INSTANT_CACHE_SIZE
        assert len(cache.tiers[1].windows) <= INSTANT_CACHE_SIZE
    assert 0 < cache.entries() <= cache.bound()
    assert cache.bound() == EngineCache(len(compiled.tiers)).bound()


def test_a_reparsed_document_of_one_version_finds_its_compiled_strategy() -> None:
    # A request parses the stored document afresh: the same version key (the caller's,
    # or the document's digest) finds the strategy compiled before.
    doc = load_preset("consumer-loan")
    profile = get_profile(doc.profile)
    registry = StrategyCache()
    first = registry.get(doc, profile, key="version-1")
    again = Strategy.model_validate_json(doc.model_dump_json())
    assert again is not doc
    assert registry.get(again, profile, key="version-1") is first
    by_digest = registry.get(doc, profile)
    assert registry.get(Strategy.model_validate_json(doc.model_dump_json()), profile) is by_digest
    assert document_key(again) == document_key(doc) == by_digest.version_key
    # Another document (another version) is compiled on its own, as is another profile.
    changed = doc.model_copy(update={"version": doc.version + 1})
    assert document_key(changed) != document_key(doc)
    assert registry.get(changed, profile) is not by_digest
    us = get_profile("us-consumer")
    under_us = registry.get(doc, us, key="version-1", portfolio_profile="us-consumer")
    assert under_us is not first and under_us.profile is us
    # A cached version is still refused under a profile it may not be decided under.
    with pytest.raises(ProfileMismatch):
        registry.get(again, us, key="version-1")
    # The process's registry is the one compile_strategy uses.
    assert compile_strategy(doc, profile, key=("test", 1)) is compile_strategy(
        again, profile, key=("test", 1)
    )


def test_a_documents_key_does_not_depend_on_the_processs_string_hashing() -> None:
    # A set's iteration order follows the process's string hashing (PYTHONHASHSEED): the
    # document's JSON lists a set's members in their enum's order, so every process (and
    # every re-parse) gives a stored version one digest. Seeds 16, 32 and 39 ordered the
    # channels {voice, sms} as "sms", "voice" before the fix.
    probe = (
        f"PRESETS = {PRESETS!r};"
        "from strategy.compiled import document_key;"
        "from strategy.document import Strategy;"
        "from strategy.presets import load_preset;"
        "docs = [load_preset(n) for n in PRESETS];"
        "print([document_key(d) for d in docs]);"
        "print([document_key(Strategy.model_validate_json(d.model_dump_json())) for d in docs])"
    )
    keys = set()
    for seed in ("0", "16", "32", "39", "1234"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert out[0] == out[1], f"seed {seed}: a re-parsed document has another key"
        keys.add(out[0])
    assert len(keys) == 1, keys
    doc = load_preset("consumer-loan")
    assert '"channels":["voice","sms"]' in doc.model_dump_json()


def test_the_compile_cache_is_bounded() -> None:
    doc = load_preset("consumer-loan")
    profile = get_profile(doc.profile)
    registry = StrategyCache(size=2)
    a = registry.get(doc, profile, key="a")
    registry.get(doc, profile, key="b")
    assert registry.get(doc, profile, key="a") is a  # used last: kept
    registry.get(doc, profile, key="c")  # drops b, the least recently used
    assert len(registry) == 2
    assert registry.get(doc, profile, key="a") is a
    assert registry.get(doc, profile, key="b") is not a


def test_the_engine_builds_the_decision_the_dataclass_builds() -> None:
    # The engine sets a Decision's slots directly (`strategy.engine._new_decision`)
    # instead of calling the frozen dataclass's `__init__`: the object must be the one
    # `Decision(...)` builds, every field set, and a field added to Decision must be added
    # there too.
    assert len(fields(Decision)) == 14
    assert not hasattr(Decision, "__post_init__")
    values = (
        "case-1",
        at(2026, 12, 1, 10, 30),
        "consumer-loan",
        3,
        "cn-consumer",
        "late",
        20,
        (),
        (),
        (),
        (),
        ("call in the morning",),
        {"zones": {"m1": [SHANGHAI]}},
        (Reason("calendar.no_published_schedule", "no notice for 2027"),),
    )
    built = _new_decision(*values)
    assert type(built) is Decision
    assert built == Decision(*values) and repr(built) == repr(Decision(*values))
    assert [getattr(built, f.name) for f in fields(Decision)] == list(values)
    # A real decision, rebuilt through the dataclass from its own fields.
    doc = load_preset("consumer-loan")
    c = case(debtor(phone(), email()), due=date(2026, 11, 11))
    d = decide(c, History(), at(2026, 12, 1, 10, 30), doc, get_profile(doc.profile))
    assert d.allowed and d.refused
    assert d == Decision(*(getattr(d, f.name) for f in fields(Decision)))
