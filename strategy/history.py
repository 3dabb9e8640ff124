"""A case's history indexed once per decision: one sorted pass, then bisections.

Caps count attempts in a period; the period holds few attempts, so each count is two
bisections on the sorted timestamps and a short scan of the slice between them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection

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

_CP, _PARTY, _ROLE, _CHANNEL, _CONV = range(5)
_THIRD = PartyRole.THIRD_PARTY
_PROMISE = Result.PROMISE_TO_PAY


class HistoryIndex:
    """Sorted attempts and the facts the rules read from them."""

    __slots__ = (
        "attempts",
        "callback_requested",
        "disputes",
        "latest_promise",
        "refused_parties",
        "rows",
        "rpc_by_party",
        "third_party_conversations",
        "ts",
        "wrong_numbers",
    )

    def __init__(self, history: History, party_roles: dict[str, PartyRole]) -> None:
        attempts = list(history.attempts)
        stamps = [a.at.timestamp() for a in attempts]
        ordered = sorted(stamps)
        if ordered != stamps:
            order = sorted(range(len(stamps)), key=stamps.__getitem__)
            attempts = [attempts[i] for i in order]
            stamps = ordered
        self.ts = stamps
        self.attempts = attempts
        get_role = party_roles.get
        conversations = [a.result in CONVERSATION_RESULTS for a in attempts]
        self.rows = [
            (a.contact_point_id, a.party_id, get_role(a.party_id, _THIRD), a.channel, conv)
            for a, conv in zip(attempts, conversations, strict=True)
        ]
        self.rpc_by_party: dict[str, list[float]] = {}
        self.refused_parties: set[str] = set()
        self.third_party_conversations: set[str] = set()
        self.callback_requested: set[str] = set()
        self.wrong_numbers: dict[str, float] = {}
        self.latest_promise: tuple[float, Attempt] | None = None
        self.disputes: list[float] = []
        # Only conversations and wrong numbers carry facts beyond the counts: most
        # attempts (no answer, busy, voicemail) are skipped here.
        for i, a in enumerate(attempts):
            result = a.result
            conversation = conversations[i]
            if not conversation and result is not Result.WRONG_NUMBER:
                continue
            ts = stamps[i]
            role = self.rows[i][_ROLE]
            if role is _THIRD:
                if conversation:
                    self.third_party_conversations.add(a.party_id)
            elif result in RIGHT_PARTY_RESULTS or result is Result.REFUSAL:
                # A debtor (or guarantor) who refused to pay still had a conversation with
                # us: it starts the quiet period (12 CFR 1006.14(b)(2)(ii)).
                self.rpc_by_party.setdefault(a.party_id, []).append(ts)
                self.wrong_numbers.pop(a.contact_point_id, None)
            if result is Result.REFUSAL:
                self.refused_parties.add(a.party_id)
            elif result is Result.CALLBACK_REQUESTED:
                self.callback_requested.add(a.party_id)
            elif result is Result.WRONG_NUMBER:
                self.wrong_numbers[a.contact_point_id] = ts
            elif result is _PROMISE and a.promise_date is not None:
                self.latest_promise = (ts, a)
            elif result is Result.DISPUTE:
                self.disputes.append(ts)

    def last_rpc(self, party_id: str, t: float) -> float | None:
        """The latest right-party conversation with the party at or before t."""
        stamps = self.rpc_by_party.get(party_id)
        if not stamps:
            return None
        i = bisect_right(stamps, t)
        return stamps[i - 1] if i else None

    def count(
        self,
        start: float,
        end: float,
        scope: Scope,
        group: str | Collection[PartyRole],
        channels: Collection[Channel],
        counted: Counted,
    ) -> list[float]:
        """Timestamps, oldest first, of the counted attempts in [start, end) in the scope
        group (a contact point id, a party id, or for the case scope a set of roles)."""
        ts = self.ts
        lo = bisect_left(ts, start)
        hi = bisect_left(ts, end, lo)
        if lo == hi:
            return []
        rows = self.rows
        key = _CP if scope is Scope.CONTACT_POINT else _PARTY if scope is Scope.PARTY else _ROLE
        out = []
        for i in range(lo, hi):
            row = rows[i]
            if row[_CHANNEL] not in channels:
                continue
            if key == _ROLE:
                if row[_ROLE] not in group:
                    continue
            elif row[key] != group:
                continue
            if counted is Counted.ATTEMPTS or (counted is Counted.CONVERSATIONS) == row[_CONV]:
                out.append(ts[i])
        return out

    def last_before(
        self,
        t: float,
        scope: Scope,
        group: str | Collection[PartyRole],
        channels: Collection[Channel],
    ) -> float | None:
        """The latest attempt at or before t in the scope group on those channels."""
        ts = self.ts
        rows = self.rows
        key = _CP if scope is Scope.CONTACT_POINT else _PARTY if scope is Scope.PARTY else _ROLE
        for i in range(bisect_right(ts, t) - 1, -1, -1):
            row = rows[i]
            if row[_CHANNEL] not in channels:
                continue
            if (row[_ROLE] in group) if key == _ROLE else (row[key] == group):
                return ts[i]
        return None
