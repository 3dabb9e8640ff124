"""A case's history indexed once per decision: one sorted pass, then bisections.

Caps count attempts in a period; the period holds few attempts, so each count is two
bisections on the sorted timestamps and a short scan of the slice between them. The
index keeps parallel lists (one per attribute) rather than a row object per attempt:
building it is the one cost every decision pays for its fresh history.
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

_THIRD = PartyRole.THIRD_PARTY
_PROMISE = Result.PROMISE_TO_PAY
_WRONG = Result.WRONG_NUMBER
_REFUSAL = Result.REFUSAL
_CALLBACK = Result.CALLBACK_REQUESTED
_DISPUTE = Result.DISPUTE
_ATTEMPTS = Counted.ATTEMPTS
_CONVERSATIONS = Counted.CONVERSATIONS
_CP_SCOPE = Scope.CONTACT_POINT
_PARTY_SCOPE = Scope.PARTY

# A row's kind, as the caps' row tables key it: (channel, party role, conversation).
RowKey = tuple[Channel, PartyRole, bool]


class HistoryIndex:
    """Sorted attempts and the facts the rules read from them."""

    __slots__ = (
        "attempts",
        "callback_requested",
        "channels",
        "convs",
        "cp_set",
        "cps",
        "disputes",
        "latest_promise",
        "parties",
        "party_set",
        "refused_parties",
        "roles",
        "rpc_by_party",
        "third_party_conversations",
        "ts",
        "wrong_numbers",
    )

    def __init__(self, history: History, party_roles: dict[str, PartyRole]) -> None:
        attempts: list[Attempt] | tuple[Attempt, ...] = history.attempts
        # Built for every decision, from a history read fresh from the database: one
        # comprehension per attribute (faster than one loop appending to each list).
        stamps = [a.at.timestamp() for a in attempts]
        ordered = sorted(stamps)
        if ordered != stamps:
            order = sorted(range(len(stamps)), key=stamps.__getitem__)
            attempts = [attempts[i] for i in order]
            stamps = ordered
        self.ts = stamps
        self.attempts = attempts
        self.parties = parties = [a.party_id for a in attempts]
        self.cps = [a.contact_point_id for a in attempts]
        self.channels = [a.channel for a in attempts]
        results = [a.result for a in attempts]
        conversation_results = CONVERSATION_RESULTS
        self.convs = convs = [r in conversation_results for r in results]
        get_role = party_roles.get
        self.roles = roles = [get_role(p, _THIRD) for p in parties]
        self.party_set = frozenset(parties)
        self.cp_set = frozenset(self.cps)
        self.rpc_by_party: dict[str, list[float]] = {}
        self.refused_parties: set[str] = set()
        self.third_party_conversations: set[str] = set()
        self.callback_requested: set[str] = set()
        self.wrong_numbers: dict[str, float] = {}
        self.latest_promise: tuple[float, Attempt] | None = None
        self.disputes: list[float] = []
        # Only conversations and wrong numbers carry facts beyond the counts: most
        # attempts (no answer, busy, voicemail) are skipped here.
        if True not in convs and _WRONG not in results:
            return
        for i, a in enumerate(attempts):
            result = results[i]
            conversation = convs[i]
            if not conversation and result is not _WRONG:
                continue
            ts = stamps[i]
            if roles[i] is _THIRD:
                if conversation:
                    self.third_party_conversations.add(a.party_id)
            elif result in RIGHT_PARTY_RESULTS or result is _REFUSAL:
                # A debtor (or guarantor) who refused to pay still had a conversation with
                # us: it starts the quiet period (12 CFR 1006.14(b)(2)(ii)).
                self.rpc_by_party.setdefault(a.party_id, []).append(ts)
                self.wrong_numbers.pop(a.contact_point_id, None)
            if result is _REFUSAL:
                self.refused_parties.add(a.party_id)
            elif result is _CALLBACK:
                self.callback_requested.add(a.party_id)
            elif result is _WRONG:
                self.wrong_numbers[a.contact_point_id] = ts
            elif result is _PROMISE and a.promise_date is not None:
                self.latest_promise = (ts, a)
            elif result is _DISPUTE:
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
        by_group = self.cps if scope is _CP_SCOPE else self.parties
        by_role = scope is not _CP_SCOPE and scope is not _PARTY_SCOPE
        roles, chans, convs = self.roles, self.channels, self.convs
        out = []
        for i in range(lo, hi):
            if chans[i] not in channels:
                continue
            if by_role:
                if roles[i] not in group:
                    continue
            elif by_group[i] != group:
                continue
            if counted is _ATTEMPTS or (counted is _CONVERSATIONS) == convs[i]:
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
        by_role = scope is not _CP_SCOPE and scope is not _PARTY_SCOPE
        if not by_role and group not in (self.cp_set if scope is _CP_SCOPE else self.party_set):
            return None
        by_group = self.cps if scope is _CP_SCOPE else self.parties
        roles, chans = self.roles, self.channels
        for i in range(bisect_right(ts, t) - 1, -1, -1):
            if chans[i] not in channels:
                continue
            if (roles[i] in group) if by_role else (by_group[i] == group):
                return ts[i]
        return None
