"""When a campaign's case is called: at most one action per channel and its send time.

The engine's most preferred action allowed now if the campaign's local start window is
open in that party's zones, else the earliest instant inside the planning window at which
the engine allows it (found from refusals' `next_allowed` and a fresh decision there).
The planning window is today's while today's has not closed; a campaign started after it
closed plans for the next opening the engine allows (`_planning_window`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dialer.domain.windows import LocalWindow
from dialer.facts.batch import CaseFacts
from strategy.compiled import CompiledStrategy
from strategy.decision import AllowedAction, Decision
from strategy.engine import decide
from strategy.model import Attempt, Channel, History

MAX_LOOKAHEAD_DECISIONS = 3  # fresh decisions per channel when the window is not open now


@dataclass(frozen=True, slots=True)
class PlannedAction:
    action: AllowedAction
    send_at: datetime
    decision: Decision


def choose_actions(
    facts: CaseFacts,
    cs: CompiledStrategy,
    now: datetime,
    window: LocalWindow,
    channels: Sequence[Channel],
) -> tuple[list[PlannedAction], list[str]]:
    """At most one action per campaign channel and its send time; or the rules that
    refused the case (for progress) when nothing could be planned. Each action chosen
    joins the history the next channel is decided on, so two channels planned for one
    case respect the spacing and caps between them as the worker will. The engine's
    decisions on one history are shared by the channels decided on it (a decision does
    not depend on the channel asked for): a channel that planned nothing leaves the
    history, so the next one reuses them instead of deciding again."""
    chosen: list[PlannedAction] = []
    rules: set[str] = set()
    history = facts.history
    decisions: dict[datetime, Decision] = {}
    last = len(channels) - 1
    for n, channel in enumerate(channels):
        picked, refused_by = _choose_channel(facts, history, cs, now, window, channel, decisions)
        if picked is None:
            rules.update(refused_by)
            continue
        chosen.append(picked)
        if n == last:
            break  # no channel left to decide on the history with this attempt
        a = picked.action
        planned = Attempt(picked.send_at, a.channel, a.party_id, a.contact_point_id)
        history = replace(history, attempts=(*history.attempts, planned))
        decisions = {}  # decided on the history before this attempt
    if chosen:
        return chosen, []
    return [], sorted(rules or {"campaign.no_candidate"})


def _choose_channel(
    facts: CaseFacts,
    history: History,
    cs: CompiledStrategy,
    now: datetime,
    window: LocalWindow,
    channel: Channel,
    decisions: dict[datetime, Decision],
) -> tuple[PlannedAction | None, set[str]]:
    """One channel's action, on `history`; `decisions` holds (and gains) the engine's
    decisions on that history by instant."""

    def decision_at(t: datetime) -> Decision:
        found = decisions.get(t)
        if found is None:
            found = decisions[t] = decide(facts.case, history, t, cs)
        return found

    first = decision_at(now)
    if first.case_reasons and not first.allowed:
        return None, {r.rule for r in first.case_reasons}
    zones: dict[str, list[str]] = first.extra.get("zones", {})
    rules: set[str] = set()
    targets: set[datetime] = set()
    for action in first.allowed:  # most preferred first
        if action.channel != channel:
            continue
        bounds = window.next_open(action.zones, now)
        if bounds is None:
            rules.add("campaign.window")
            continue
        if bounds[0] <= now:
            return PlannedAction(action, now, first), set()
        targets.add(bounds[0])  # later today, or the next day's window once today's closed
    rules.update(_later_starts(first, channel, now, now, window, zones, targets))
    tried: set[datetime] = set()
    while targets and len(tried) < MAX_LOOKAHEAD_DECISIONS:
        t = min(targets)
        targets.discard(t)
        tried.add(t)
        later = decision_at(t)
        for action in later.allowed:
            if action.channel != channel:
                continue
            bounds = _planning_window(window, action.zones, now, t)
            if bounds is not None and bounds[0] <= t < bounds[1]:
                return PlannedAction(action, t, later), set()
        # Refused there too (a weekend, a holiday): try when the engine says it may.
        _later_starts(later, channel, now, t, window, zones, targets)
        targets -= tried
    return None, rules


def _planning_window(
    window: LocalWindow, zones: Sequence[str], now: datetime, t: datetime
) -> tuple[datetime, datetime] | None:
    """The window an attempt for instant `t` must fall in: today's while today's has not
    closed at `now` (a morning campaign plans this morning); once it has (a campaign
    started in the afternoon), the first window from `t` on, so planning rolls on to the
    next day the engine allows."""
    today = window.today(zones, now)
    if today is not None and now < today[1]:
        return today
    return window.next_open(zones, t)


def _later_starts(
    decision: Decision,
    channel: Channel,
    now: datetime,
    at: datetime,
    window: LocalWindow,
    zones: dict[str, list[str]],
    into: set[datetime],
) -> set[str]:
    """Add the first instant each of the channel's refused candidates (in a decision
    taken at `at`) may be tried: the engine's `next_allowed`, moved into the planning
    window; return the rules that refused them."""
    rules: set[str] = set()
    for refusal in decision.refused:
        cand = refusal.candidate
        if cand.channel != channel:
            continue
        rules.update(refusal.rules)
        if refusal.next_allowed is None or refusal.next_allowed <= at:
            continue
        point_zones = zones.get(cand.contact_point_id) or []
        bounds = _planning_window(window, point_zones, now, refusal.next_allowed)
        if bounds is None:
            continue
        t = max(bounds[0], refusal.next_allowed)
        if t < bounds[1]:
            into.add(t)
    return rules
