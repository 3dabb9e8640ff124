"""A case's history indexed once per decision, so every cap is a pair of bisections."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable

from strategy.document import Counted, Scope
from strategy.model import (
    CONVERSATION_RESULTS,
    RIGHT_PARTY_RESULTS,
    Attempt,
    Channel,
    History,
    PartyRole,
    Result,
)

# (scope, group id, channel, counted) -> sorted timestamps
Key = tuple[Scope, str, Channel, Counted]


class HistoryIndex:
    """Sorted timestamps per (scope group, channel, counted kind).

    Scope groups: a contact point id, a party id, or a party role (the case scope is the
    sum over roles, which lets a case-level cap be limited to some roles)."""

    __slots__ = (
        "_series",
        "attempts",
        "callback_requested",
        "disputes",
        "last_conversation_by_party",
        "last_rpc_by_party",
        "latest_promise",
        "party_roles",
        "refused_parties",
        "third_party_conversations",
        "wrong_numbers",
    )

    def __init__(self, history: History, party_roles: dict[str, PartyRole]) -> None:
        attempts = sorted(history.attempts, key=lambda a: a.at)
        self.attempts: list[tuple[float, Attempt]] = [(a.at.timestamp(), a) for a in attempts]
        self.party_roles = party_roles
        series: dict[Key, list[float]] = defaultdict(list)
        self.last_conversation_by_party: dict[str, float] = {}
        self.last_rpc_by_party: dict[str, float] = {}
        self.refused_parties: set[str] = set()
        self.third_party_conversations: set[str] = set()
        self.callback_requested: set[str] = set()
        self.wrong_numbers: dict[str, float] = {}
        self.latest_promise: tuple[float, Attempt] | None = None
        self.disputes: list[float] = []
        for ts, a in self.attempts:
            result = a.result
            conversation = result in CONVERSATION_RESULTS
            role = party_roles.get(a.party_id, PartyRole.THIRD_PARTY)
            kind = Counted.CONVERSATIONS if conversation else Counted.UNANSWERED
            for scope, group in (
                (Scope.CONTACT_POINT, a.contact_point_id),
                (Scope.PARTY, a.party_id),
                (Scope.CASE, role.value),
            ):
                series[(scope, group, a.channel, Counted.ATTEMPTS)].append(ts)
                series[(scope, group, a.channel, kind)].append(ts)
            if conversation:
                self.last_conversation_by_party[a.party_id] = ts
                if role == PartyRole.THIRD_PARTY:
                    self.third_party_conversations.add(a.party_id)
            if result in RIGHT_PARTY_RESULTS and role != PartyRole.THIRD_PARTY:
                self.last_rpc_by_party[a.party_id] = ts
            if result == Result.REFUSAL:
                self.refused_parties.add(a.party_id)
            elif result == Result.CALLBACK_REQUESTED:
                self.callback_requested.add(a.party_id)
            elif result == Result.WRONG_NUMBER:
                self.wrong_numbers[a.contact_point_id] = ts
            elif result == Result.PROMISE_TO_PAY and a.promise_date is not None:
                self.latest_promise = (ts, a)
            elif result == Result.DISPUTE:
                self.disputes.append(ts)
            if result in RIGHT_PARTY_RESULTS and a.contact_point_id in self.wrong_numbers:
                # reaching the right party on a number clears an older wrong-number result
                del self.wrong_numbers[a.contact_point_id]
        self._series = dict(series)

    def series(
        self,
        scope: Scope,
        groups: Iterable[str],
        channels: Iterable[Channel],
        counted: Counted,
    ) -> list[list[float]]:
        """The timestamp lists a cap sums over: one per group and channel. Groups are a
        contact point id or a party id, or for the case scope the party roles counted."""
        get = self._series.get
        out = []
        for g in groups:
            for ch in channels:
                s = get((scope, g, ch, counted))
                if s:
                    out.append(s)
        return out

    @staticmethod
    def count(series: list[list[float]], start: float, end: float) -> int:
        """Attempts in [start, end)."""
        return sum(bisect_left(s, end) - bisect_left(s, start) for s in series)

    @staticmethod
    def last_before(series: list[list[float]], ts: float) -> float | None:
        best: float | None = None
        for s in series:
            i = bisect_right(s, ts)
            if i and (best is None or s[i - 1] > best):
                best = s[i - 1]
        return best

    @staticmethod
    def in_range(series: list[list[float]], start: float, end: float) -> list[float]:
        out: list[float] = []
        for s in series:
            out.extend(s[bisect_left(s, start) : bisect_left(s, end)])
        out.sort()
        return out
