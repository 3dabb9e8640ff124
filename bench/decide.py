"""Decisions per second for a realistic case, beside a bare loop doing the same lookups.

The case: a consumer loan at 20 days past due (tier `late` of the consumer-loan preset,
cn-consumer profile) with 3 parties (debtor, two third-party contacts), 5 contact points
(debtor: two mobiles and an email; one mobile per contact) and 30 past attempts over
the last 10 days. The instant is a Tuesday 10:30 in Shanghai, inside the window, so the
decision has allowed actions and refusals (caps, spacing, the third-party rules) with
next-allowed times.

The bare loop is the ceiling: for every candidate it does the lookups the rules need
(role rule, opt-out and consent sets, window bounds, one bisection per cap and spacing
rule over pre-sorted timestamps) with no structure, no reasons and no explanation.

    python bench/decide.py [--seconds 3]

Ends with one line per figure: `name: value unit`.
"""

from __future__ import annotations

import argparse
import time
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from strategy.compiled import compile_strategy
from strategy.engine import decide
from strategy.guardrails import get_profile
from strategy.model import (
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


def realistic_case() -> tuple[Case, History]:
    debtor = Party(
        id="p-debtor",
        role=PartyRole.DEBTOR,
        name="Wang Fang",
        contact_points=(
            ContactPoint(id="cp-1", kind=ContactKind.PHONE, value="+8613812345678"),
            ContactPoint(id="cp-2", kind=ContactKind.PHONE, value="+8613912345679"),
            ContactPoint(id="cp-3", kind=ContactKind.EMAIL, value="wang.fang@example.cn"),
        ),
    )
    sister = Party(
        id="p-ref-1",
        role=PartyRole.THIRD_PARTY,
        name="Wang Li",
        relation="relative",
        contact_points=(ContactPoint(id="cp-4", kind=ContactKind.PHONE, value="+8613712345670"),),
    )
    colleague = Party(
        id="p-ref-2",
        role=PartyRole.THIRD_PARTY,
        name="Zhao Lei",
        relation="colleague",
        contact_points=(ContactPoint(id="cp-5", kind=ContactKind.PHONE, value="+8618612345671"),),
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


def bare_loop(case: Case, history: History, now: datetime, n: int) -> float:
    """The same lookups without the engine's structure: the ceiling for one core."""
    t = now.timestamp()
    by_cp: dict[str, list[float]] = {}
    by_party: dict[str, list[float]] = {}
    every: list[float] = []
    for a in sorted(history.attempts, key=lambda a: a.at):
        ts = a.at.timestamp()
        by_cp.setdefault(a.contact_point_id, []).append(ts)
        by_party.setdefault(a.party_id, []).append(ts)
        every.append(ts)
    rules = {PartyRole.DEBTOR: "always", PartyRole.THIRD_PARTY: "when_debtor_unreachable"}
    day_start = datetime.combine(now.date(), datetime.min.time(), SHANGHAI).timestamp()
    win_lo, win_hi = day_start + 9 * 3600, day_start + 20 * 3600
    flags: frozenset[str] = frozenset()
    cands = [
        (p, cp, ch)
        for p in case.parties
        for cp in p.contact_points
        for ch in (
            (Channel.VOICE, Channel.SMS) if cp.kind is ContactKind.PHONE else (Channel.EMAIL,)
        )
    ]
    began = time.perf_counter()
    allowed = 0
    for _ in range(n):
        for p, cp, ch in cands:
            ok = rules.get(p.role) is not None and not flags
            ok = ok and ch not in cp.opted_out and ch not in cp.consent | frozenset({ch}) - {ch}
            ok = ok and win_lo <= t < win_hi
            s = by_cp.get(cp.id, every)
            ok = ok and bisect_left(s, t) - bisect_left(s, day_start) < 4
            s = by_party.get(p.id, every)
            ok = ok and bisect_left(s, t) - bisect_left(s, day_start) < 3
            ok = ok and bisect_left(every, t) - bisect_left(every, day_start) < 8
            ok = ok and (not s or t - s[-1] > 7200)
            allowed += ok
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
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

    # warm up, then measure for a fixed time
    for _ in range(200):
        decide(case, history, NOW, compiled)
    n = 0
    began = time.perf_counter()
    while (elapsed := time.perf_counter() - began) < args.seconds:
        for _ in range(100):
            decide(case, history, NOW, compiled)
        n += 100
    engine_rate = n / elapsed

    bare_n = 20_000
    bare_elapsed = bare_loop(case, history, NOW, bare_n)
    while bare_elapsed < args.seconds / 3:
        bare_n *= 2
        bare_elapsed = bare_loop(case, history, NOW, bare_n)
    bare_rate = bare_n / bare_elapsed

    print(f"bare_lookups: {bare_rate:.0f} decisions/s")
    print(f"engine_vs_bare: {engine_rate / bare_rate:.3f} ratio")
    print(f"decide: {engine_rate:.0f} decisions/s")


if __name__ == "__main__":
    main()
