"""One decision's inputs and what the rules found of them, shared by the engine's steps.

`Context` holds the case, the compiled strategy and its cache, the history indexed once
and the candidates; `TierState` and `At` are what the rules found at one instant (the
fixed-point search for a next-allowed time asks several instants of one decision).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from strategy.cache import EngineCache, remember
from strategy.calendar import from_ts
from strategy.compiled import CompiledStrategy, CompiledTier
from strategy.history import HistoryIndex
from strategy.model import Case, CaseFlag, History, Party, PartyRole
from strategy.verdicts import Cand, Exceeded, RuleReason, WindowVerdict


class TierState:
    """The case's tier and the reasons that block the whole case, at one instant."""

    __slots__ = ("case_reasons", "days_in_stage", "dpd", "ordinal", "tier")

    def __init__(
        self,
        tier: CompiledTier | None,
        dpd: int,
        days_in_stage: int | None,
        case_reasons: tuple[RuleReason, ...],
        ordinal: int,
    ) -> None:
        self.ordinal = ordinal  # the instant's local day in the strategy's home zone
        self.tier = tier
        self.dpd = dpd
        self.days_in_stage = days_in_stage
        self.case_reasons = case_reasons


class At:
    """What the rules found at one instant, shared by every candidate evaluated there."""

    __slots__ = ("caps", "exceeded", "periods", "spacing", "state", "unreachable", "windows")

    def __init__(self, state: TierState) -> None:
        self.state = state
        # (cap index, group or None for the case, zone key) -> the cap's reason or None
        self.caps: dict[tuple[int, str | None, int], RuleReason | None] = {}
        # zone key -> the caps over their limit, by group
        self.exceeded: dict[int, Exceeded] = {}
        self.periods: dict[tuple[int, int], tuple[float, float]] = {}
        self.spacing: dict[tuple[int, str | None], RuleReason | None] = {}
        self.windows: dict[int, WindowVerdict] = {}
        self.unreachable: bool | None = None


class Context:
    """A decision's inputs, its indexed history and candidates, and its memos."""

    __slots__ = (
        "at_memo",
        "cache",
        "candidates",
        "case",
        "cs",
        "debtor_usable",
        "debtors",
        "home_zone",
        "idx",
        "payments",
        "point_zones",
        "profile",
        "represented",
        "strategy",
        "zone_sources",
    )

    def __init__(self, case: Case, history: History, cs: CompiledStrategy, t: float) -> None:
        self.case = case
        self.cs = cs
        self.cache = cache = cs.cache
        self.strategy = cs.strategy
        self.profile = cs.profile
        self.home_zone = cs.strategy.timezone
        roles, owners = _party_maps(cache, case.parties)
        # The earliest instant any rule looks back to, in UTC (as stored instants are).
        since = cache.since.get(t)
        if since is None:
            since = remember(cache.since, t, from_ts(t) - cs.lookback)
        self.idx = HistoryIndex(history, roles, since, owners)
        self.payments: list[tuple[datetime, Decimal]] = (
            sorted(history.payments) if history.payments else []
        )
        self.represented = CaseFlag.ATTORNEY in case.flags
        # Per contact point: its candidate zones and where they came from (Decision.extra).
        self.point_zones: dict[str, list[str]] = {}
        self.zone_sources: dict[str, str] = {}
        # The debtors and whether any of their contact points can be used (on first need).
        self.debtors: list[Party] | None = None
        self.debtor_usable = False
        self.candidates: list[Cand] = []  # set by the engine (strategy.candidates)
        self.at_memo: dict[float, At] = {}


def _party_maps(
    cache: EngineCache, parties: tuple[Party, ...]
) -> tuple[dict[str, PartyRole], dict[str, str]]:
    """Each party's role, and each contact point's party (an attempt must name a pair the
    case holds). Kept for the last parties tuple: it and its frozen parties are immutable."""
    last = cache.last_parties
    if last[0] is parties:
        return last[1], last[2]
    roles: dict[str, PartyRole] = {}
    owners: dict[str, str] = {}
    for p in parties:
        party_id = p.id
        roles[party_id] = p.role
        for cp in p.contact_points:
            owners[cp.id] = party_id
    cache.last_parties = (parties, roles, owners)
    return roles, owners
