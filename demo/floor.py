"""A simulated collections floor: callees who answer, let it ring, or are machines, and
collectors with talk and wrap-up times, paced by the service's own `Pacer`.

A call rings 3 s after it starts, then ends one of four ways: a person answers (25%, after
5-25 s of ringing), a machine answers (12%, the same, and is detected 4 s later), nobody
answers (48%, given up after 30 s: at least 15 s as 16 CFR 310.4(b)(4)(i) asks) or it
fails at once (15%, busy or unreachable, 2-6 s). A person talks to a collector for a
lognormal time (mean 120 s), who then wraps up (mean 30 s); 35% of those conversations
end in a promise to pay (`PROMISE`, drawn from its own seeded generator). A person who
answers while no agent is free waits 2 s for one, else the call is abandoned (a short
message plays; it counts as an attempt). Progressive holds one agent per ringing call.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from dialer.dispatch.predictive import Desk, Pacer
from dialer.domain.agents import DialingMode

ANSWER, MACHINE, NO_ANSWER, FAILED = "answer", "machine", "no_answer", "failed"
TICK = 1.0  # the pacer is asked once a second, and whenever an agent frees up
HOLD = 2.0  # a person waits this long for an agent before the call counts as abandoned
SETUP = 3.0  # post-dial delay before the callee's phone rings
RING_LIMIT = 30.0  # ring timeout: at least 15 s, as 16 CFR 310.4(b)(4)(i) asks
DETECT = 4.0  # answering-machine detection, after the machine answers
# With detection on, a person hears 1.5-3.5 s of silence after their greeting while it
# decides; past HOLD that call is abandoned in law (16 CFR 310.4(b)(4)(iii)).
HUMAN_DETECT = (1.5, 3.5)
MACHINE_HANDLE = 8.0  # without detection: an agent hears the machine and drops the call
TALK, WRAP = 120.0, 30.0  # mean seconds (lognormal)
PROMISE = 0.35  # share of conversations that end in a promise to pay


@dataclass
class Floor:
    """One shift of `agents` collectors under one dialing mode."""

    mode: DialingMode
    agents: int
    hours: float
    seed: int
    pacer: Pacer = field(default_factory=Pacer)
    amd: bool = False  # answering-machine detection before an agent is bridged
    machine_time: float = 0.0  # agents' time spent on machines (detection off)
    _answered_at: dict[int, float] = field(default_factory=dict)
    now: float = 0.0
    free: int = 0
    busy_since: dict[int, float] = field(default_factory=dict)  # agent -> call began at
    busy_until: dict[int, float] = field(default_factory=dict)  # agent -> free again at
    ahead: deque[tuple[str, float]] = field(default_factory=deque)  # callees drawn ahead
    ringing: dict[int, float] = field(default_factory=dict)  # call -> started at
    waiting: deque[tuple[float, int]] = field(default_factory=deque)  # (gives up at, call)
    events: list[tuple[float, int, str, int]] = field(default_factory=list)
    talk: float = 0.0
    hourly: dict[int, list[int]] = field(default_factory=dict)  # hour -> [answered, abandoned]
    answers: list[tuple[float, bool]] = field(default_factory=list)  # (at, abandoned)
    dials: int = 0
    promises: int = 0
    _seq: int = 0
    _next_agent: int = 0

    def __post_init__(self) -> None:
        self.free = self.agents
        self.callees = random.Random(self.seed)  # noqa: S311 (seeded: the same callees in both modes)
        self.people = random.Random(self.seed + 1)  # noqa: S311 (seeded talk and wrap times)
        # Its own generator, so promises leave the callees' and agents' draws unchanged.
        self.outcomes = random.Random(self.seed + 2)  # noqa: S311 (seeded promises)

    def at(self, when: float, kind: str, ref: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, kind, ref))

    def run(self) -> Floor:
        end = self.hours * 3600.0
        self.at(0.0, "tick")
        while self.events:
            self.now, _, kind, ref = heapq.heappop(self.events)
            if self.now >= end:
                break
            getattr(self, f"_{kind}")(ref)
        return self

    # --- events -------------------------------------------------------------------------
    def _tick(self, _: int) -> None:
        self._pace()
        self.at(self.now + TICK, "tick")

    def _pace(self) -> None:
        desk = Desk(
            available=self.free,
            busy_elapsed=tuple(self.now - s for s in self.busy_since.values()),
            ringing_elapsed=tuple(self.now - s for s in self.ringing.values()),
        )
        for _ in range(self.pacer.calls_to_start(self.mode, desk, self.now)):
            self._start_call()

    def _start_call(self) -> None:
        self.dials += 1
        call = self.dials
        self.ringing[call] = self.now
        if self.mode is DialingMode.PROGRESSIVE:
            self.free -= 1  # the call holds its agent while it rings
        kind, delay = self.ahead.popleft() if self.ahead else self._callee()
        self.at(self.now + delay + (DETECT if self.amd and kind == MACHINE else 0.0), kind, call)

    def _callee(self) -> tuple[str, float]:
        """The next callee in the list: how the call ends, and when from its start."""
        r, c = self.callees.random(), self.callees
        if r < 0.25:
            return ANSWER, SETUP + c.uniform(5, 25)
        if r < 0.37:
            return MACHINE, SETUP + c.uniform(5, 25)
        if r < 0.85:
            return NO_ANSWER, SETUP + RING_LIMIT
        return FAILED, c.uniform(2, 6)

    def next_callee(self) -> tuple[str, float]:
        """The fate of the next call to start, drawn ahead (for the benchmark's oracle): the
        callees are drawn in the same order, so the floor is the same."""
        if not self.ahead:
            self.ahead.append(self._callee())
        return self.ahead[0]

    def _ended_without_person(self, call: int) -> None:
        self.pacer.dial_ended(person=False, after=self.now - self.ringing.pop(call))
        if self.mode is DialingMode.PROGRESSIVE:
            self.free += 1
            self._pace()

    def _no_answer(self, call: int) -> None:
        self._ended_without_person(call)

    _failed = _no_answer

    def _machine(self, call: int) -> None:
        if self.amd:  # detected: hung up (or a voicemail left) without an agent
            self._ended_without_person(call)
            return
        self.pacer.dial_ended(person=False, after=self.now - self.ringing.pop(call))
        if self.mode is DialingMode.PROGRESSIVE:
            self.free += 1  # its held agent hears the machine
        if self.free > 0:  # an agent hears it and drops it; else it is simply dropped
            self.free -= 1
            self.machine_time += MACHINE_HANDLE
            self._busy(self.now + MACHINE_HANDLE)
        elif self.mode is DialingMode.PROGRESSIVE:
            self._pace()

    def _answer(self, call: int) -> None:
        self.pacer.dial_ended(person=True, after=self.now - self.ringing.pop(call))
        if self.amd:  # the person waits while detection decides
            self._answered_at[call] = self.now
            self.at(self.now + self.callees.uniform(*HUMAN_DETECT), "detected", call)
        else:
            self._bridge(call, HOLD)

    def _detected(self, call: int) -> None:
        self._bridge(call, HOLD - (self.now - self._answered_at.get(call, self.now)))

    def _bridge(self, call: int, hold: float) -> None:
        if self.mode is DialingMode.PROGRESSIVE:
            self.free += 1  # its held agent takes it (or is released, if too late)
        if hold <= 0.0:  # already past 2 s of silence: abandoned, the message plays
            self._count(abandoned=True)
        elif self.free > 0:
            self._connect()
        else:
            self.waiting.append((self.now + hold, call))
            self.at(self.now + hold, "give_up", call)

    def _give_up(self, call: int) -> None:
        if self.waiting and self.waiting[0][1] == call:
            self.waiting.popleft()
            self._count(abandoned=True)

    def _connect(self) -> None:
        self.free -= 1
        self._count(abandoned=False)
        talk = self.people.lognormvariate(math.log(TALK) - 0.18, 0.6)  # mean TALK
        wrap = self.people.lognormvariate(math.log(WRAP) - 0.08, 0.4)  # mean WRAP
        self.talk += talk
        self.promises += self.outcomes.random() < PROMISE
        self.pacer.handled(talk + wrap)
        self._busy(self.now + talk + wrap)

    def _busy(self, until: float) -> None:
        """An agent (already taken from `free`) is busy until `until`."""
        self._next_agent += 1
        self.busy_since[self._next_agent] = self.now
        self.busy_until[self._next_agent] = until
        self.at(until, "agent_free", self._next_agent)

    def _agent_free(self, agent: int) -> None:
        del self.busy_since[agent], self.busy_until[agent]
        self.free += 1
        while self.waiting and self.waiting[0][0] < self.now:
            self.waiting.popleft()  # already counted as abandoned by its give_up
        if self.waiting:
            self.waiting.popleft()
            self._connect()
        self._pace()

    def _count(self, *, abandoned: bool) -> None:
        row = self.hourly.setdefault(int(self.now // 3600), [0, 0])
        row[0] += 1
        row[1] += abandoned
        self.answers.append((self.now, abandoned))
        self.pacer.answered(self.now, abandoned=abandoned)

    # --- figures ------------------------------------------------------------------------
    def utilisation(self) -> float:
        return self.talk / (self.agents * self.hours * 3600.0)

    def abandonment(self) -> tuple[float, float, int]:
        """(overall, worst hour, that hour) as shares of live answers."""
        answered = sum(r[0] for r in self.hourly.values())
        abandoned = sum(r[1] for r in self.hourly.values())
        worst = max(self.hourly, key=lambda h: self.hourly[h][1] / max(1, self.hourly[h][0]))
        rate = self.hourly[worst][1] / max(1, self.hourly[worst][0])
        return abandoned / max(1, answered), rate, worst

    def worst_rolling_hour(self) -> float:
        """The highest abandoned share of live answers in any hour within the shift, not
        only the clock hours: every hour-long window that starts or ends at an answer."""
        times = [at for at, _ in self.answers]
        lost = [0]
        for _, abandoned in self.answers:
            lost.append(lost[-1] + abandoned)
        end = self.hours * 3600.0
        span = min(3600.0, end)
        worst = 0.0
        for i, at in enumerate(times):
            if at >= span:  # (at - 1 h, at]
                lo = bisect.bisect_right(times, at - span)
                worst = max(worst, (lost[i + 1] - lost[lo]) / (i + 1 - lo))
            if at + span <= end:  # [at, at + 1 h)
                hi = bisect.bisect_left(times, at + span)
                worst = max(worst, (lost[hi] - lost[i]) / (hi - i))
        return worst

    def contacts_per_agent_hour(self) -> float:
        answered = sum(r[0] - r[1] for r in self.hourly.values())
        return answered / (self.agents * self.hours)
