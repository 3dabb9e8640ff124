"""A case's history indexed once per decision: one sorted pass, then bisections.

Caps count attempts in a period; the period holds few attempts, so each count is two
bisections on the sorted timestamps and a short scan of the slice between them. The
index keeps parallel lists (one per attribute) rather than a row object per attempt:
building it is the one cost every decision pays for its fresh history. Only the attempts
inside the strategy's lookback (the longest span any of its rules counts over) are
converted to timestamps and listed; older ones give only their facts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Final

from strategy.document import Counted, Scope
from strategy.model import (
    CONVERSATION_RESULTS,
    RIGHT_PARTY_RESULTS,
    Attempt,
    Channel,
    History,
    PartyRole,
    Result,
    UnknownReference,
)

_THIRD: Final = PartyRole.THIRD_PARTY
_PROMISE: Final = Result.PROMISE_TO_PAY
_WRONG: Final = Result.WRONG_NUMBER
_REFUSAL: Final = Result.REFUSAL
_CALLBACK: Final = Result.CALLBACK_REQUESTED
_DELIVERED: Final = Result.DELIVERED
_PENDING: Final = Result.PENDING
_DEBTOR: Final = PartyRole.DEBTOR
_DISPUTE: Final = Result.DISPUTE
_ATTEMPTS: Final = Counted.ATTEMPTS
_CONVERSATIONS: Final = Counted.CONVERSATIONS
_CP_SCOPE: Final = Scope.CONTACT_POINT
_PARTY_SCOPE: Final = Scope.PARTY
_CONVERSATION_RESULTS: Final = CONVERSATION_RESULTS
# Results that carry a fact beyond the counts (a delivered or pending attempt on a debtor
# is not a failed one: "debtor unreachable" subtracts them).
_FACT_RESULTS: Final = CONVERSATION_RESULTS | {
    Result.WRONG_NUMBER,
    Result.DELIVERED,
    Result.PENDING,
}
_AT: Final = attrgetter("at")
_STAMP: Final = datetime.timestamp

# A row's kind, as the caps' row tables key it: (channel, party role, conversation).
RowKey = tuple[Channel, PartyRole, bool]


class HistoryIndex:
    """Sorted attempts and the facts the rules read from them."""

    __slots__ = (
        "attempts",
        "callback_open",
        "channels",
        "convs",
        "cp_set",
        "cps",
        "debtor_delivered",
        "debtor_pending",
        "disputes",
        "first",
        "latest_promise",
        "parties",
        "party_set",
        "refused_parties",
        "roles",
        "rpc_by_party",
        "third_party_contacted",
        "ts",
        "wrong_numbers",
    )

    # Long (125 lines): one pass filling parallel lists, each attempt's attributes read once.
    def __init__(
        self,
        history: History,
        party_roles: dict[str, PartyRole],
        since: datetime | None = None,
        owners: dict[str, str] | None = None,
    ) -> None:
        """Index `history`; with `since`, the counted rows (`ts` and the lists beside it)
        start at the first attempt at or after it: the engine passes the earliest instant
        any cap, spacing or reachability rule of the strategy can look back to, so older
        attempts (most of a long history) are never converted to timestamps. The facts
        (conversations, refusals, wrong numbers, promises, disputes) cover every attempt.

        Every attempt read must name a party of the case (`party_roles`) and, given
        `owners` (contact point id -> its party's id), one of that party's contact points:
        an unknown reference raises `UnknownReference`, as counting it as somebody else's
        would lift a cap or a third-party rule. Read are the rows inside the lookback and
        every older one that carries a fact; an older unanswered attempt, which no rule
        reads, is not.
        """
        attempts: tuple[Attempt, ...] = history.attempts
        ats = list(map(_AT, attempts))
        # Aware datetimes compare as their instants: sort by them, not by timestamps.
        if ats != sorted(ats):
            order = sorted(range(len(ats)), key=ats.__getitem__)
            attempts = tuple([attempts[i] for i in order])
            ats = [ats[i] for i in order]
        first = 0
        if since is not None and ats:
            # Compared in the attempts' own zone (stored instants come back in UTC), as
            # two datetimes of one tzinfo compare without asking it for offsets.
            tz = ats[-1].tzinfo
            first = bisect_left(ats, since if since.tzinfo is tz else since.astimezone(tz))
        self.first = first
        self.attempts = attempts
        self.ts = list(map(_STAMP, ats[first:] if first else ats))
        # One pass over the counted rows, each attribute of an attempt read once (compiled,
        # each read is a generic attribute lookup), and the rows carrying facts noted.
        channels: list[Channel] = []
        parties: list[str] = []
        cps: list[str] = []
        convs: list[bool] = []
        roles: list[PartyRole] = []
        fact_rows: list[int] = []
        for i in range(first):
            a = attempts[i]
            if a.result in _FACT_RESULTS:
                # An older row is read only for its fact: checked here. One without a fact
                # (no answer, busy, ...) outside every rule's lookback is never read.
                party = a.party_id
                if party not in party_roles or (
                    owners is not None and owners.get(a.contact_point_id) != party
                ):
                    raise _unknown(history, a, party_roles, owners)
                fact_rows.append(i)
        for i in range(first, len(attempts)):
            a = attempts[i]
            party = a.party_id
            result = a.result
            cp = a.contact_point_id
            role = party_roles.get(party)
            if role is None or (owners is not None and owners.get(cp) != party):
                raise _unknown(history, a, party_roles, owners)
            channels.append(a.channel)
            parties.append(party)
            cps.append(cp)
            convs.append(result in _CONVERSATION_RESULTS)
            roles.append(role)
            if result in _FACT_RESULTS:
                fact_rows.append(i)
        self.channels: Sequence[Channel] = channels
        self.parties: Sequence[str] = parties
        self.cps: Sequence[str] = cps
        self.convs: Sequence[bool] = convs
        self.roles: Sequence[PartyRole] = roles
        self.party_set = frozenset(parties)
        self.cp_set = frozenset(cps)
        self.rpc_by_party: dict[str, list[float]] = {}
        self.refused_parties: set[str] = set()
        # Third parties communicated with (a conversation, or a text or e-mail delivered to
        # them): 15 USC 1692b(3) allows one communication unless they ask for another.
        self.third_party_contacted: set[str] = set()
        # Per third party whose latest communication was a request to be called back: the
        # (contact point, channel) it was asked on. One request allows that one call; the
        # next communication with them uses it up.
        self.callback_open: dict[str, tuple[str, Channel]] = {}
        self.wrong_numbers: dict[str, float] = {}
        self.latest_promise: tuple[float, Attempt] | None = None
        self.disputes: list[float] = []
        # Instants of the texts or e-mails delivered to a debtor, and of a debtor's
        # attempts still pending: neither is a failed attempt.
        self.debtor_delivered: list[float] = []
        self.debtor_pending: list[float] = []
        # Only conversations, wrong numbers, and delivered or pending attempts carry facts
        # beyond the counts: most attempts (no answer, busy, voicemail) are skipped here.
        stamps = self.ts
        for i in fact_rows:
            a = attempts[i]
            result = a.result
            conversation = result in _CONVERSATION_RESULTS
            ts = stamps[i - first] if i >= first else a.at.timestamp()
            role = party_roles[a.party_id]
            if role is _DEBTOR and (result is _DELIVERED or result is _PENDING):
                (self.debtor_delivered if result is _DELIVERED else self.debtor_pending).append(ts)
                continue
            if role is _THIRD:
                if conversation or result is _DELIVERED:
                    self.third_party_contacted.add(a.party_id)
                    if result is _CALLBACK:
                        self.callback_open[a.party_id] = (a.contact_point_id, a.channel)
                    else:
                        self.callback_open.pop(a.party_id, None)
            elif result in RIGHT_PARTY_RESULTS or result is _REFUSAL:
                # A debtor (or guarantor) who refused to pay still had a conversation with
                # us: it starts the quiet period (12 CFR 1006.14(b)(2)(ii)).
                self.rpc_by_party.setdefault(a.party_id, []).append(ts)
                self.wrong_numbers.pop(a.contact_point_id, None)
            if result is _REFUSAL:
                self.refused_parties.add(a.party_id)
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


def _unknown(
    history: History,
    a: Attempt,
    party_roles: dict[str, PartyRole],
    owners: dict[str, str] | None,
) -> UnknownReference:
    """The error for an attempt naming what the case does not hold, with its position in
    the history as given."""
    index = next((i for i, x in enumerate(history.attempts) if x is a), -1)
    where = f"history.attempts[{index}]"
    if a.party_id not in party_roles:
        return UnknownReference(
            f"attempt {a.id or index} at {a.at.isoformat()} names party {a.party_id!r},"
            " which is not a party of the case",
            f"{where}.party_id",
        )
    owner = owners.get(a.contact_point_id) if owners is not None else None
    if owner is None:
        return UnknownReference(
            f"attempt {a.id or index} at {a.at.isoformat()} names contact point"
            f" {a.contact_point_id!r}, which is not in the case",
            f"{where}.contact_point_id",
        )
    return UnknownReference(
        f"attempt {a.id or index} at {a.at.isoformat()} names contact point"
        f" {a.contact_point_id!r} of party {owner!r} under party {a.party_id!r}",
        f"{where}.party_id",
    )
