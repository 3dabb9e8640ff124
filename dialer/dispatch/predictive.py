"""How many calls to start now for a campaign whose calls go to collectors.

`progressive` starts one call per free agent, who is held for it while it rings: a person
who answers always finds their agent, and agents wait through every unanswered ring.
`predictive` starts more. It learns from the campaign's own recent calls how likely a call
that has rung for e seconds is to reach a person, how long a person takes to answer, and
how likely an agent t seconds into a call is to be free by then. From these it computes the
expected number of people who would answer with no agent free (answers: independent
chances per ringing call; free agents: the free ones plus each busy one's chance), and
starts another call while that call's own chance of being abandoned, should a person
answer, stays below `marginal`. That share shrinks as the control window (the last hour)
runs out of abandoned calls to spare under `safety` x the profile's limit (3% of live
answers by default: 16 CFR 310.4(b)(4), Ofcom): counted in calls, so a small floor, whose
hour holds few, slows early, and a large one keeps its pace. No call beyond progressive
starts while one more abandoned call would put the window over it, or before 20 answers
and 20 handled calls are known.

Pure arithmetic over what the caller observed; no clock, no I/O.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

from dialer.domain.agents import DialingMode

# Answering-machine detection per mode. The automated flow needs it (a machine gets the
# voicemail, not the keypad menu). With an agent, detection's 1.5-3.5 s of silence after
# the greeting makes most live answers abandoned calls under the 2-second rule (16 CFR
# 310.4(b)(4)(iii)): bench/predictive.py measures it. So agents take machines themselves.
MACHINE_DETECTION: dict[DialingMode, bool] = {
    DialingMode.IVR: True,
    DialingMode.PREVIEW: False,
    DialingMode.PROGRESSIVE: False,
    DialingMode.PREDICTIVE: False,
}


@dataclass(frozen=True, slots=True)
class Desk:
    """The campaign's agents and calls at one instant."""

    available: int  # agents free now, with no call held for them
    busy_elapsed: tuple[float, ...] = ()  # per busy agent: seconds since their call began
    # Per call started and not yet answered or ended: seconds since it started. Progressive
    # calls each hold an agent (`reserved`), who is then not `available`; predictive hold none.
    ringing_elapsed: tuple[float, ...] = ()


class _Samples:
    """The last `size` observations, kept sorted, and sorted again for those marked (a
    person answered): conditional probabilities over one common window."""

    def __init__(self, size: int) -> None:
        self._order: deque[tuple[float, bool]] = deque()
        self._sorted: list[float] = []
        self._marked: list[float] = []
        self._size = size

    def add(self, x: float, *, marked: bool = False) -> None:
        self._order.append((x, marked))
        bisect.insort(self._sorted, x)
        if marked:
            bisect.insort(self._marked, x)
        if len(self._order) > self._size:
            old, was_marked = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
            if was_marked:
                del self._marked[bisect.bisect_left(self._marked, old)]

    def __len__(self) -> int:
        return len(self._sorted)

    def above(self, x: float, *, marked: bool = False) -> int:
        values = self._marked if marked else self._sorted
        return len(values) - bisect.bisect_right(values, x)

    def marked_count(self) -> int:
        return len(self._marked)

    def marked_median(self, default: float) -> float:
        return self._marked[len(self._marked) // 2] if self._marked else default

    def mean(self, default: float) -> float:
        return sum(self._sorted) / len(self._sorted) if self._sorted else default


MIN_SAMPLES = 20  # below this many relevant observations, the priors answer


@dataclass(slots=True)
class Pacer:
    """One campaign's predictive pacing: observe what happens, ask how many calls to start."""

    limit: float = 0.03  # abandoned / live-answered, the profile's ceiling
    safety: float = 0.85  # the measured rate at which no call beyond progressive starts
    # A call beyond progressive starts while its own chance of being abandoned, should a
    # person answer, is below this (scaled down as the window's spare abandons run out).
    marginal: float = 0.04
    # Abandoned calls the window can still take at which `marginal` applies in full; with
    # fewer to spare it shrinks in proportion (a count, not a rate: a small floor's hour
    # holds few abandoned calls, a large one's many).
    spare_full: float = 4.0
    window: float = 3600.0  # seconds over which the measured rate is held under the limit
    max_ratio: float = 5.0  # never more calls ringing than this many per staffed agent
    prior_answer_rate: float = 0.2
    prior_handle: float = 180.0
    prior_delay: float = 12.0
    _handles: _Samples = field(default_factory=lambda: _Samples(300))
    # Every call's time from start to answer or end; marked: a person answered.
    _ends: _Samples = field(default_factory=lambda: _Samples(1000))
    _answers: deque[tuple[float, bool]] = field(default_factory=deque)  # (at, abandoned)
    _abandoned: int = 0

    # --- what happened ------------------------------------------------------------------
    def dial_ended(self, *, person: bool, after: float) -> None:
        """A started call was answered by a person, or ended without one (no answer, busy,
        failed, a machine), `after` seconds from its start."""
        self._ends.add(after, marked=person)

    def answered(self, at: float, *, abandoned: bool) -> None:
        """A person answered at `at` (seconds, any epoch); `abandoned`: no agent in 2 s."""
        self._answers.append((at, abandoned))
        self._abandoned += abandoned
        self._forget(at)

    def handled(self, seconds: float) -> None:
        """An agent's call and its wrap-up took `seconds`."""
        self._handles.add(seconds)

    def abandonment(self, now: float) -> tuple[int, int]:
        """(abandoned, live-answered) within the control window ending at `now`."""
        self._forget(now)
        return self._abandoned, len(self._answers)

    def _forget(self, now: float) -> None:
        while self._answers and self._answers[0][0] <= now - self.window:
            self._abandoned -= self._answers.popleft()[1]

    # --- what the observations say ------------------------------------------------------
    def person_chance(self, elapsed: float) -> float:
        """P(a person answers | the call has rung `elapsed` seconds without ending)."""
        still = self._ends.above(elapsed)
        if still < MIN_SAMPLES:
            if len(self._ends) >= MIN_SAMPLES:
                return self._ends.marked_count() / len(self._ends) if elapsed <= 0 else 0.0
            return self.prior_answer_rate
        return self._ends.above(elapsed, marked=True) / still

    def free_chance(self, elapsed: float, within: float) -> float:
        """P(a busy agent `elapsed` seconds into a call is free `within` seconds from now)."""
        running = self._handles.above(elapsed)
        if running < MIN_SAMPLES:  # past what was seen: assume no memory, at the mean
            return 1.0 - math.exp(-within / self._handles.mean(self.prior_handle))
        return (running - self._handles.above(elapsed + within)) / running

    # --- what to do ---------------------------------------------------------------------
    def calls_to_start(self, mode: DialingMode, desk: Desk, now: float) -> int:
        """How many new calls to start now (0 for ivr and preview: they are not paced here)."""
        if mode is DialingMode.PROGRESSIVE:
            return desk.available  # each call holds its agent (`reserved`) while it rings
        if mode is not DialingMode.PREDICTIVE:
            return 0
        ringing = len(desk.ringing_elapsed)
        floor = max(0, desk.available - ringing)  # never fewer than one per free agent
        target = self._target(now)
        staffed = desk.available + len(desk.busy_elapsed)
        ceiling = max(floor, math.floor(self.max_ratio * staffed) - ringing)
        if target <= 0.0 or ceiling <= floor:
            return floor
        delay = self._ends.marked_median(self.prior_delay)
        ring_chances = [self.person_chance(e) for e in desk.ringing_elapsed]
        shortfall = _Shortfall(
            ring_chances, [self.free_chance(e, delay) for e in desk.busy_elapsed], desk.available
        )
        p = min(max(self.person_chance(0.0), 0.01), 0.99)

        def fits(n: int) -> bool:  # the n-th call's own chance of being abandoned, if answered
            return shortfall.expected(n, p) - shortfall.expected(n - 1, p) <= target * p

        # The shortfall is convex in n, so its steps grow: the n that fit are a run.
        best, lo, hi = floor, floor + 1, ceiling
        while lo <= hi:
            mid = (lo + hi) // 2
            if fits(mid):
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    def _target(self, now: float) -> float:
        """The share of live answers that may be abandoned by the calls started now."""
        if self._ends.marked_count() < MIN_SAMPLES or len(self._handles) < MIN_SAMPLES:
            return 0.0  # nothing learned yet: progressive until the rates are known
        abandoned, answered = self.abandonment(now)
        spare = self.limit * self.safety * answered - abandoned  # the window's budget left
        if spare < 1.0:
            return 0.0  # one more abandoned call would put the window over its share
        return self.marginal * min(1.0, spare / self.spare_full)


class _Shortfall:
    """E[people answering with no agent free], for the ringing calls plus n new ones.

    Y = (answers among ringing calls) - (busy agents freed in time) - available; then for
    n new calls, E[max(0, Y + Binomial(n, p))], from tail sums of Y's distribution."""

    def __init__(self, ring: list[float], free: list[float], available: int) -> None:
        answers = _poisson_binomial(ring)
        freed = _poisson_binomial(free)
        offset = len(freed) - 1 + available  # Y's value at index 0
        dist = [0.0] * (len(answers) + len(freed) - 1)
        for a, pa in enumerate(answers):
            if pa:
                for f, pf in enumerate(freed):
                    dist[a + (len(freed) - 1 - f)] += pa * pf
        self._offset = offset
        # Tail sums from index i up: P(Y >= i - offset) and E[index; Y >= i - offset].
        self._mass = [0.0] * (len(dist) + 1)
        self._moment = [0.0] * (len(dist) + 1)
        for i in range(len(dist) - 1, -1, -1):
            self._mass[i] = self._mass[i + 1] + dist[i]
            self._moment[i] = self._moment[i + 1] + dist[i] * i
        self._tail: dict[int, float] = {}

    def _excess(self, k: int) -> float:
        """E[max(0, Y + k)]: the indices i with i - offset + k > 0, from the tail sums."""
        if k not in self._tail:
            i0 = min(max(0, self._offset - k + 1), len(self._mass) - 1)
            self._tail[k] = self._moment[i0] + (k - self._offset) * self._mass[i0]
        return self._tail[k]

    def expected(self, n: int, p: float) -> float:
        total, pk = 0.0, (1.0 - p) ** n
        for k in range(n + 1):
            total += pk * self._excess(k)
            if k < n:
                pk *= (n - k) / (k + 1) * p / (1.0 - p)
        return total


def _poisson_binomial(chances: list[float]) -> list[float]:
    """P(exactly k of the independent events happen), k = 0..len(chances)."""
    dist = [1.0]
    for q in chances:
        nxt = [0.0] * (len(dist) + 1)
        for k, pk in enumerate(dist):
            nxt[k] += pk * (1.0 - q)
            nxt[k + 1] += pk * q
        dist = nxt
    return dist
