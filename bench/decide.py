"""Decisions per second for a realistic case, beside a bare loop doing the same lookups.

The case: a consumer loan at 20 days past due (tier `late` of the consumer-loan preset,
cn-consumer profile), 3 parties, 5 contact points, 30 past attempts over 10 days, decided
on a Tuesday 10:30 in Shanghai (allowed actions and refusals with next-allowed times).
The bare loop does the lookups the rules need with no structure and no reasons: the
ceiling, run over a history indexed once and indexing it per decision as `decide` must.

Figures, each interleaved in short rounds of CPU time (`time.process_time`):
- `decide`: a compiled strategy, the same instant each call (a campaign's steady state);
- `decide_new_instant_each_call`: an instant no other decision used (per-instant caches
  never answer);
- `decide_with_strategy_document`: the document and profile, found in the compile cache;
- `decide_300_attempts_over_100_days`: 270 more older attempts in the history.

    python bench/decide.py [--seconds 5]

Ends with one line per figure, `name: value unit` (`engine_compiled`: 1 when the engine
ran as a mypyc extension). Results and their history: docs/performance.md.
"""

from __future__ import annotations

import argparse
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from strategy import engine as engine_module
from strategy.calendar import phone_facts
from strategy.compiled import compile_strategy
from strategy.engine import decide
from strategy.guardrails import get_profile
from strategy.model import (
    CHANNELS_BY_KIND,
    CONVERSATION_RESULTS,
    Attempt,
    Case,
    Channel,
    ContactKind,
    ContactPoint,
    History,
    Party,
    PartyRole,
    Result,
)
from strategy.presets import load_preset

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=SHANGHAI)


def _phone(cp_id: str, number: str) -> ContactPoint:
    """A phone as the dialer hands it to the engine: with the number's candidate zones and
    line type stored when it was imported (`dialer.facts.convert`), not derived per decision."""
    zones, mobile = phone_facts(number)
    return ContactPoint(id=cp_id, kind=ContactKind.PHONE, value=number, zones=zones, mobile=mobile)


def realistic_case() -> tuple[Case, History]:
    debtor = Party(
        id="p-debtor",
        role=PartyRole.DEBTOR,
        name="Wang Fang",
        contact_points=(
            _phone("cp-1", "+8613812345678"),
            _phone("cp-2", "+8613912345679"),
            ContactPoint(id="cp-3", kind=ContactKind.EMAIL, value="wang.fang@example.cn"),
        ),
    )
    sister = Party(
        id="p-ref-1",
        role=PartyRole.THIRD_PARTY,
        name="Wang Li",
        relation="relative",
        contact_points=(_phone("cp-4", "+8613712345670"),),
    )
    colleague = Party(
        id="p-ref-2",
        role=PartyRole.THIRD_PARTY,
        name="Zhao Lei",
        relation="colleague",
        contact_points=(_phone("cp-5", "+8618612345671"),),
    )
    case = Case(
        id="case-bench",
        amount=Decimal("12000.00"),
        currency="CNY",
        due_date=NOW.date() - timedelta(days=20),
        parties=(debtor, sister, colleague),
    )
    results = [Result.NO_ANSWER, Result.BUSY, Result.VOICEMAIL, Result.NO_ANSWER, Result.FAILED]
    attempts = []
    start = NOW - timedelta(days=10)
    for i in range(30):
        at = start + timedelta(hours=8 * i + 1)
        cp, party = (("cp-1", "p-debtor"), ("cp-2", "p-debtor"), ("cp-4", "p-ref-1"))[i % 3]
        channel = Channel.SMS if i % 7 == 0 else Channel.VOICE
        # Stored instants come back from the database in UTC, as here.
        at_utc = at.astimezone(UTC)
        attempts.append(Attempt(at_utc, channel, party, cp, results[i % len(results)], id=f"a{i}"))
    return case, History(attempts=tuple(attempts))


def with_older_attempts(history: History, n: int) -> History:
    """The history after `n` more unanswered calls, one every 8 hours before its first
    (a case months into collection: 270 more reach 90 days further back)."""
    first = history.attempts[0]
    older = [
        Attempt(
            first.at - timedelta(hours=8 * (n - i)),
            Channel.VOICE,
            first.party_id,
            first.contact_point_id,
            Result.NO_ANSWER,
            id=f"old{i}",
        )
        for i in range(n)
    ]
    return History(attempts=(*older, *history.attempts))


# Buckets of sorted instants the caps and spacing read: per party (all attempts), per
# party (conversations), per contact point (unanswered), per case (all, debtor's, SMS).
_PARTY, _PARTY_CONV, _CP_UNANSWERED, _CASE = range(4)
Buckets = tuple[dict[str, list[float]], ...]


def _index(history: History, roles: dict[str, PartyRole]) -> Buckets:
    """The history as sorted instants per group and counted kind, in one pass."""
    party: dict[str, list[float]] = {}
    conv: dict[str, list[float]] = {}
    unanswered: dict[str, list[float]] = {}
    case: dict[str, list[float]] = {"all": [], "debtor": [], "sms": []}
    for a in sorted(history.attempts, key=lambda a: a.at):
        ts = a.at.timestamp()
        party.setdefault(a.party_id, []).append(ts)
        if a.result in CONVERSATION_RESULTS:
            conv.setdefault(a.party_id, []).append(ts)
        else:
            unanswered.setdefault(a.contact_point_id, []).append(ts)
        case["all"].append(ts)
        if roles.get(a.party_id) is PartyRole.DEBTOR:
            case["debtor"].append(ts)
        if a.channel is Channel.SMS:
            case["sms"].append(ts)
    return party, conv, unanswered, case


def bare_loop(case: Case, history: History, now: datetime, n: int, *, index: bool) -> float:
    """The same lookups without the engine's structure: the ceiling for one core.

    For each candidate: the tier's role rule and channels, opt-out and consent membership,
    the window bounds of the local day, one bisection pair per applicable cap (the late
    tier's five and the profile's two), the spacing rule's last attempt, and for third
    parties whether the debtor is unreachable. With `index`, the history is also indexed
    on every decision (as `decide` must: its input is a fresh history each call)."""
    t = now.timestamp()
    roles = {p.id: p.role for p in case.parties}
    empty: list[float] = []
    buckets = _index(history, roles)
    rules = {
        PartyRole.DEBTOR: (frozenset({Channel.VOICE, Channel.SMS}), False),
        PartyRole.THIRD_PARTY: (frozenset({Channel.VOICE}), True),
    }
    consent_required: frozenset[Channel] = frozenset()
    windows = {(9 * 60, 12 * 60), (14 * 60, 20 * 60)}
    zone_intervals: dict[tuple[str, int], list[tuple[float, float]]] = {}
    day = datetime.fromtimestamp(t, SHANGHAI).toordinal()
    midnight = datetime.combine(date.fromordinal(day), datetime.min.time(), SHANGHAI).timestamp()
    zone_intervals["Asia/Shanghai", day] = [
        (midnight + a * 60, midnight + b * 60) for a, b in windows
    ]
    # Per candidate, the caps that apply: (bucket, key, limit).
    cands = []
    for p in case.parties:
        for cp in p.contact_points:
            for ch in CHANNELS_BY_KIND[cp.kind]:
                caps: list[tuple[int, str, int]] = [(_CASE, "all", 10)]
                if p.role is PartyRole.DEBTOR:
                    caps += [(_PARTY_CONV, p.id, 3), (_PARTY_CONV, p.id, 3)]
                else:
                    caps.append((_PARTY, p.id, 1))
                caps += [(_CP_UNANSWERED, cp.id, 4), (_CP_UNANSWERED, cp.id, 6)]
                if ch is Channel.SMS:
                    caps.append((_CASE, "sms", 1))
                cands.append((p, cp, ch, tuple(caps)))
    flags = case.flags
    began = time.process_time()
    allowed = 0
    for _ in range(n):
        if index:
            buckets = _index(history, roles)
        local_day = datetime.fromtimestamp(t, SHANGHAI).toordinal()
        ivs = zone_intervals.get(("Asia/Shanghai", local_day), [])
        day_start = midnight
        debtor = buckets[_CASE]["debtor"]
        tried = bisect_left(debtor, t) - bisect_left(debtor, day_start - 2 * 86400)
        unreachable = tried >= 6
        for p, cp, ch, cand_caps in cands:
            # Every lookup is made even after a "no": the engine reports every reason.
            rule = rules.get(p.role)
            ok = rule is not None and ch in rule[0] and not flags
            ok &= rule is None or not rule[1] or unreachable
            ok &= ch not in cp.opted_out
            ok &= ch not in consent_required or ch in cp.consent
            inside = False
            for a, b in ivs:
                inside |= a <= t < b
            ok &= inside
            for bucket, key, limit in cand_caps:
                s = buckets[bucket].get(key, empty)
                ok &= bisect_left(s, t) - bisect_left(s, day_start) < limit
            s = buckets[_PARTY].get(p.id, empty)
            i = bisect_right(s, t)
            ok &= i == 0 or t - s[i - 1] >= 7200
            allowed += ok
    return time.process_time() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--seconds", type=float, default=5.0, help="CPU time of the run, shared by the figures"
    )
    args = ap.parse_args()

    case, history = realistic_case()
    strategy = load_preset("consumer-loan")
    profile = get_profile(strategy.profile)
    compiled = compile_strategy(strategy, profile)
    decision = decide(case, history, NOW, compiled)
    print(
        f"case: tier {decision.tier}, {len(decision.allowed)} allowed,"
        f" {len(decision.refused)} refused, {len(history.attempts)} attempts"
    )
    for r in decision.refused[:3]:
        print(f"  refused {r.candidate.contact_point_id}/{r.candidate.channel}: {r.rules}")

    t0 = NOW.timestamp()
    calls = 0

    def engine(n: int) -> float:
        began = time.process_time()
        for _ in range(n):
            decide(case, history, NOW, compiled)
        return time.process_time() - began

    def engine_new_instant(n: int) -> float:
        # A new instant each call, a millisecond apart: inside the same window, never
        # one the per-instant caches have seen.
        nonlocal calls
        instants = [
            datetime.fromtimestamp(t0 + (calls + i) * 0.001, UTC).astimezone(SHANGHAI)
            for i in range(n)
        ]
        calls += n
        began = time.process_time()
        for now in instants:
            decide(case, history, now, compiled)
        return time.process_time() - began

    long_history = with_older_attempts(history, 270)

    def engine_long_history(n: int) -> float:
        began = time.process_time()
        for _ in range(n):
            decide(case, long_history, NOW, compiled)
        return time.process_time() - began

    def engine_document(n: int) -> float:
        began = time.process_time()
        for _ in range(n):
            decide(case, history, NOW, strategy, profile)
        return time.process_time() - began

    def bare(n: int) -> float:
        return bare_loop(case, history, NOW, n, index=False)

    def bare_indexing(n: int) -> float:
        return bare_loop(case, history, NOW, n, index=True)

    measures: dict[str, Callable[[int], float]] = {
        "decide": engine,
        "decide_new_instant_each_call": engine_new_instant,
        "decide_with_strategy_document": engine_document,
        "decide_300_attempts_over_100_days": engine_long_history,
        "bare_lookups": bare,
        "bare_lookups_indexing_history": bare_indexing,
    }
    # Warm up; then interleave short rounds of every measurement until each has had its
    # share of the time.
    for fn in measures.values():
        fn(200)
    rounds = 6
    done = dict.fromkeys(measures, 0)
    spent = dict.fromkeys(measures, 0.0)
    batch = dict.fromkeys(measures, 100)
    for _ in range(rounds):
        for name, fn in measures.items():
            share = args.seconds / rounds / len(measures)
            used = 0.0
            while used < share:
                elapsed = fn(batch[name])
                done[name] += batch[name]
                used += elapsed
                if elapsed < 0.02:
                    batch[name] *= 2
            spent[name] += used
    rate = {name: done[name] / spent[name] for name in measures}
    lookups = rate["bare_lookups"]
    indexed = rate["bare_lookups_indexing_history"]
    engine_rate = rate["decide"]
    print(f"bare_lookups: {lookups:.0f} decisions/s")
    print(f"bare_lookups_indexing_history: {indexed:.0f} decisions/s")
    print(f"decide_new_instant_each_call: {rate['decide_new_instant_each_call']:.0f} decisions/s")
    print(f"decide_with_strategy_document: {rate['decide_with_strategy_document']:.0f} decisions/s")
    print(
        "decide_300_attempts_over_100_days:"
        f" {rate['decide_300_attempts_over_100_days']:.0f} decisions/s"
    )
    print(f"engine_vs_bare: {engine_rate / lookups:.3f} ratio")
    print(f"engine_vs_bare_indexing_history: {engine_rate / indexed:.3f} ratio")
    print(
        "engine_new_instant_vs_bare_indexing_history:"
        f" {rate['decide_new_instant_each_call'] / indexed:.3f} ratio"
    )
    # 1 when the engine runs as a compiled extension (mypyc), 0 when it is pure Python.
    compiled_engine = not (engine_module.__file__ or "").endswith(".py")
    print(f"engine_compiled: {int(compiled_engine)} flag")
    print(f"decide: {engine_rate:.0f} decisions/s")


if __name__ == "__main__":
    main()
