"""When a candidate may be contacted: the tier's windows (with the profile's hours and the
tier's hard preferences) in every zone the candidate may be in, the next opening, and the
soft preferences' score of an allowed instant."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, timedelta
from typing import Final

from strategy.cache import INTERVAL_CACHE_SIZE, EngineCache, TierCache, remember
from strategy.calendar import (
    Interval,
    day_kind,
    intersect,
    local_date,
    local_interval,
    local_ordinal,
    zone,
)
from strategy.compiled import (
    EARLY_MONTH_LAST_DAY,
    LAST_HOUR,
    MONTH_END_DAYS,
    CompiledTier,
    MinuteSpan,
)
from strategy.document import Preference
from strategy.guardrails import GuardrailProfile
from strategy.verdicts import WindowVerdict

WINDOW_SEARCH_DAYS: Final = 21
GUARD_WINDOW: Final = "guardrail.window"
_MONTH_END_SPAN: Final = timedelta(days=MONTH_END_DAYS)


def _day_spans(ct: CompiledTier, ordinal: int, *, guard: bool) -> tuple[MinuteSpan, ...]:
    d = date.fromordinal(ordinal)
    weekday = d.weekday()
    kind = day_kind(ct.holiday_country, ct.holiday_subdivision, ordinal)
    if ct.tier.skip_holidays and kind == "holiday":
        return ()
    source = ct.spans if guard else ct.tier_spans
    # A weekend day made a working day (China's 调休) takes Monday's windows.
    adjusted = kind == "workday_adjusted" and ct.tier.skip_holidays
    spans = source[0] if adjusted else source[weekday]
    hard = ct.tier.hard_preferences
    if not guard or not hard:
        return spans
    if Preference.MONDAY in hard and weekday != 0:
        return ()
    if Preference.AVOID_WEEKEND in hard and kind == "weekend":
        return ()
    if Preference.EARLY_MONTH in hard and d.day > EARLY_MONTH_LAST_DAY:
        return ()
    month_days = monthrange(d.year, d.month)[1]
    if Preference.AVOID_MONTH_END in hard and d.day > month_days - MONTH_END_DAYS:
        return ()
    return spans


def day_intervals(
    tc: TierCache, ct: CompiledTier, zone_name: str, ordinal: int, guard: bool = True
) -> tuple[Interval, ...]:
    """The tier's contact intervals on one local day of one zone, as instants.

    `guard=False` gives the tier's own windows (without the profile or hard preferences),
    used only to say which of the two refused a time."""
    key = (zone_name, ordinal, guard)
    hit = tc.intervals.get(key)
    if hit is None:
        spans = _day_spans(ct, ordinal, guard=guard)
        value = tuple(local_interval(zone_name, ordinal, a, b) for a, b in spans)
        hit = remember(tc.intervals, key, value, INTERVAL_CACHE_SIZE)
    return hit


def window(
    tc: TierCache, ct: CompiledTier, profile: GuardrailProfile, zones: tuple[str, ...], t: float
) -> WindowVerdict:
    """(inside, end of the current window or the next opening, rule, message, whether
    the tier's own hours refused t: the decision then also asks the profile's hours, so a
    night-time refusal names both and a count by legal clause is whole)."""
    end = None
    for z in zones:
        o = local_ordinal(t, z)
        hit = None
        for a, b in day_intervals(tc, ct, z, o):
            if a <= t < b:
                hit = b
                break
        if hit is None:
            end = None
            break
        end = hit if end is None or hit < end else end
    if end is not None:
        return True, end, "", "", False
    nxt = _next_opening(tc, ct, zones, t)
    if len(zones) > 1 and nxt is None:
        message = f"no hour is inside the window in all {len(zones)} possible zones"
        return False, None, "window.no_common_hours", message, True
    return _outside(tc, ct, profile, zones, t, nxt)


def _outside(
    tc: TierCache,
    ct: CompiledTier,
    profile: GuardrailProfile,
    zones: tuple[str, ...],
    t: float,
    nxt: float | None,
) -> WindowVerdict:
    """Which rule refused t outside the window: the profile's ceiling or the tier's hard
    preferences (t is inside the tier's own hours), a holiday, or the tier's hours."""
    in_tier = all(
        any(a <= t < b for a, b in day_intervals(tc, ct, z, local_ordinal(t, z), False))
        for z in zones
    )
    where = _where(zones)
    if in_tier:
        if ct.tier.hard_preferences:
            message = (
                f"outside the tier's required times ({', '.join(ct.tier.hard_preferences)})"
                f" or the profile's hours {profile.window} local ({where})"
            )
            return False, nxt, "window.preference", message, False
        return False, nxt, GUARD_WINDOW, f"outside {profile.window} local time ({where})", False
    if ct.tier.skip_holidays:
        for z in zones:
            day = local_date(t, z)
            if day_kind(ct.holiday_country, ct.holiday_subdivision, day.toordinal()) == "holiday":
                return False, nxt, "window.holiday", f"{day} is a public holiday ({z})", True
    return False, nxt, "window.local_time", f"outside the tier's contact hours ({where})", True


def _where(zones: tuple[str, ...]) -> str:
    return ", ".join(zones) if len(zones) <= 3 else f"{len(zones)} possible zones"


def guard_window(
    cache: EngineCache, profile: GuardrailProfile, zones: tuple[str, ...], t: float
) -> tuple[str, float | None] | None:
    """The profile's own refusal of t (its hours, every day, in every candidate zone) and
    the next instant those hours are open in all the zones; None inside them."""
    lo, hi = profile.window.minutes
    ordinals = [local_ordinal(t, z) for z in zones]
    outside = False
    for i in range(len(zones)):
        a, b = _profile_interval(cache, zones[i], ordinals[i], lo, hi)
        if not a <= t < b:
            outside = True
            break
    if not outside:
        return None
    common: list[Interval] | None = None
    for i in range(len(zones)):
        o = ordinals[i]
        ivs = [_profile_interval(cache, zones[i], d, lo, hi) for d in range(o - 1, o + 3)]
        common = ivs if common is None else intersect(common, ivs)
    nxt = next((max(a, t) for a, b in common or () if b > t), None)
    return f"outside {profile.window} local time ({_where(zones)})", nxt


def _profile_interval(
    cache: EngineCache, zone_name: str, ordinal: int, lo: int, hi: int
) -> Interval:
    # lo and hi are the compiled strategy's profile's hours: the key need not hold them.
    key = (zone_name, ordinal)
    hit = cache.profile_intervals.get(key)
    if hit is None:
        hit = remember(cache.profile_intervals, key, local_interval(zone_name, ordinal, lo, hi))
    return hit


def _next_opening(
    tc: TierCache, ct: CompiledTier, zones: tuple[str, ...], t: float
) -> float | None:
    common: list[Interval] | None = None
    for z in zones:
        o = local_ordinal(t, z)
        ivs: list[Interval] = []
        for d in range(o, o + WINDOW_SEARCH_DAYS):
            ivs.extend(day_intervals(tc, ct, z, d))
        common = ivs if common is None else intersect(common, ivs)
        if not common:
            return None
    for a, b in common or ():
        if b > t:
            return max(a, t)
    return None


def preference(
    tc: TierCache, ct: CompiledTier, zone_name: str, t: float
) -> tuple[int, tuple[str, ...]]:
    """Soft preferences from the source (mornings, Mondays, early in the month; not
    month-end, weekends or the last hour of the working day) as a score, not a ban."""
    key = (zone_name, t)
    hit = tc.preferences.get(key)
    if hit is None:
        hit = remember(tc.preferences, key, _preference(tc, ct, zone_name, t))
    return hit


def _preference(
    tc: TierCache, ct: CompiledTier, zone_name: str, t: float
) -> tuple[int, tuple[str, ...]]:
    prefs = ct.tier.preferences
    if not prefs:
        return 0, ()
    local = datetime.fromtimestamp(t, zone(zone_name))
    notes: list[tuple[int, str]] = []
    for p in prefs:
        if p is Preference.MORNING:
            if local.hour < 12:
                notes.append((1, "morning"))
        elif p is Preference.MONDAY:
            if local.weekday() == 0:
                notes.append((1, "Monday"))
        elif p is Preference.EARLY_MONTH:
            if local.day <= EARLY_MONTH_LAST_DAY:
                notes.append((1, "early in the month"))
        elif p is Preference.AVOID_MONTH_END:
            if (local + _MONTH_END_SPAN).month != local.month:
                notes.append((-1, "month-end"))
        elif p is Preference.AVOID_WEEKEND:
            if local.weekday() >= 5:
                notes.append((-1, "weekend"))
        elif p is Preference.AVOID_LAST_HOUR:
            ivs = day_intervals(tc, ct, zone_name, local.toordinal())
            if ivs and t >= ivs[-1][1] - LAST_HOUR * 60:
                notes.append((-1, "last hour of the working day"))
    return sum(n for n, _ in notes), tuple(f"{'+' if n > 0 else '-'} {w}" for n, w in notes)
