"""The pure results the engine keeps for one compiled strategy: one object, bounded.

A campaign decides many cases at the same instants, so what depends only on the compiled
strategy and an instant (window verdicts, preference scores, the tier of a case's dates on
a local day, a period's bounds) is computed once and shared. Nothing here is keyed by a
case's history; the last parties and the last `now` are kept by identity, as objects the
cache holds (immutable, so their derived maps stay true).

Every map is bounded: it is emptied when it reaches its size (instants move on:
yesterday's are never asked again): `EngineCache.bound()` is the most entries one cache
holds in all (149,024 for a four-tier strategy).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, TypeVar

from strategy.calendar import Interval
from strategy.decision import Reason
from strategy.model import Channel, Disclosure, PartyRole, Stage
from strategy.verdicts import TierFacts, WindowVerdict

_K = TypeVar("_K")
_V = TypeVar("_V")

INSTANT_CACHE_SIZE: Final = 4096  # each map keyed by an instant
INTERVAL_CACHE_SIZE: Final = 16_384  # a tier's contact intervals per (zone, local day)
PUBLIC_CACHE_SIZE: Final = 20_000  # public reasons, by their text and instant


def remember(cache: dict[_K, _V], key: _K, value: _V, bound: int = INSTANT_CACHE_SIZE) -> _V:
    """Store a pure result, emptying the map first when it has reached `bound`."""
    if len(cache) >= bound:
        cache.clear()
    cache[key] = value
    return value


class TierCache:
    """The results that depend on one tier of the compiled strategy."""

    __slots__ = ("facts", "intervals", "preferences", "templates", "windows")

    def __init__(self) -> None:
        # (zone, local day ordinal, guarded) -> contact intervals that day
        self.intervals: dict[tuple[str, int, bool], tuple[Interval, ...]] = {}
        # (party role, knows of the debt, channel) -> what the tier says of such a candidate
        self.facts: dict[tuple[PartyRole, bool, Channel], TierFacts] = {}
        # (channel, party role, disclosure) -> (template key, voicemail disclosure, whether
        # a text carries the opt-out line)
        self.templates: dict[tuple[Channel, PartyRole, Disclosure], tuple[str, Disclosure, bool]]
        self.templates = {}
        # (zones, instant) -> the window verdict there
        self.windows: dict[tuple[tuple[str, ...], float], WindowVerdict] = {}
        # (zone, instant) -> the soft preferences' score and notes
        self.preferences: dict[tuple[str, float], tuple[int, tuple[str, ...]]] = {}

    def entries(self) -> int:
        return (
            len(self.intervals)
            + len(self.facts)
            + len(self.templates)
            + len(self.windows)
            + len(self.preferences)
        )


# A tier's facts and templates are bounded by their keys' kinds (roles x 2 x channels, and
# channels x roles x disclosure levels): 256 each is more than they can hold.
TIER_CACHE_BOUND: Final = INTERVAL_CACHE_SIZE + 2 * INSTANT_CACHE_SIZE + 2 * 256
SHARED_CACHE_BOUND: Final = 7 * INSTANT_CACHE_SIZE + PUBLIC_CACHE_SIZE

# (tier index or -1, days past due, days in stage)
TierOfDates = tuple[int, int, int | None]


class EngineCache:
    """Every cache of one compiled strategy (`CompiledStrategy.cache`)."""

    __slots__ = (
        "calendar_warnings",
        "instants",
        "last_now",
        "last_parties",
        "periods",
        "profile_intervals",
        "publics",
        "quiet_ends",
        "since",
        "tier_of_dates",
        "tiers",
    )

    def __init__(self, tiers: int) -> None:
        self.tiers = tuple(TierCache() for _ in range(tiers))
        # (home-zone local day, due date, stage, stage start) -> the tier those dates are in
        self.tier_of_dates: dict[tuple[int, date, Stage, date | None], TierOfDates] = {}
        # (zones, days, instant) -> [start, end) of the n local days ending that day
        self.periods: dict[tuple[tuple[str, ...], int, float], tuple[float, float]] = {}
        # (zone, local day ordinal) -> the profile's hours that day, as instants
        self.profile_intervals: dict[tuple[str, int], Interval] = {}
        # (zones, conversation instant, days) -> when the quiet period after it ends
        self.quiet_ends: dict[tuple[tuple[str, ...], float, int], float] = {}
        # instant -> the start of the strategy's lookback, in UTC
        self.since: dict[float, datetime] = {}
        # instant -> its datetime in UTC (a decision's instant, a window's end)
        self.instants: dict[float, datetime] = {}
        # home-zone local day ordinal -> the calendar's warnings for a decision that day
        self.calendar_warnings: dict[int, tuple[Reason, ...]] = {}
        # (rule, message, next instant, source) -> the public reason
        self.publics: dict[tuple[str, str, float | None, str | None], Reason] = {}
        # The last `now` decided at and its timestamp: a planner decides its cases at one.
        self.last_now: tuple[datetime | None, float] = (None, 0.0)
        # The last parties tuple, its roles by party id and each contact point's party id:
        # a planner decides one case at several instants in a row.
        self.last_parties: tuple[object, dict[str, PartyRole], dict[str, str]] = (None, {}, {})

    def bound(self) -> int:
        """The most entries this cache can hold."""
        return SHARED_CACHE_BOUND + len(self.tiers) * TIER_CACHE_BOUND

    def entries(self) -> int:
        """The entries it holds now."""
        return sum(t.entries() for t in self.tiers) + (
            len(self.tier_of_dates)
            + len(self.periods)
            + len(self.profile_intervals)
            + len(self.quiet_ends)
            + len(self.since)
            + len(self.instants)
            + len(self.calendar_warnings)
            + len(self.publics)
        )
