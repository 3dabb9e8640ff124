"""Progressive against predictive dialing, in a discrete-event simulation of a collections floor.

The pacing is the service's own (`dialer.dispatch.predictive.Pacer`); the simulation plays
the callees and the agents (`demo.floor`, whose docstring gives the callees' and agents'
behaviour).

Progressive holds one agent per ringing call; predictive starts as many calls as the
pacer allows. Both run the same shift with the same random callees (same seed). Printed:
agents' talk-time utilisation (talk time / staffed time), abandonment overall, in the
worst clock hour and in the worst rolling hour, right-party contacts per agent-hour, and
the ratio predictive / progressive (the target: at least 1.5 with abandonment at most 3%
in every hour). Two references run on the same floor and callees: `ceiling` (`Foresight`,
an oracle that knows the callees and the agents: what no pacer can beat) and
`known_free` (the service's pacer told when each agent will be free: what better
handle-time estimates could buy).

    python bench/predictive.py [--hours 8] [--agents 10 50] [--seed 7]
"""

from __future__ import annotations

import argparse
import heapq
import math
import time

from demo.floor import ANSWER, HOLD, MACHINE, MACHINE_HANDLE, Floor
from dialer.dispatch.predictive import Pacer
from dialer.domain.agents import DialingMode


class Foresight(Floor):
    """The ceiling: a pacer that knows every callee's fate before dialling (whether, when and
    by whom the call is answered) and when every busy agent will be free. It dials the same
    callees in the same order and never holds an agent: it starts the next call as soon as
    every person in flight is sure to meet an agent within the 2-second hold, machines
    heard by agents included. No pacer that cannot see the future does better on this
    floor: what it loses is wrap-up, machines and the one-second tick."""

    def __init__(self, agents: int, hours: float, seed: int) -> None:
        super().__init__(DialingMode.PREDICTIVE, agents, hours, seed)
        self.flight: dict[int, tuple[float, str]] = {}  # call -> (answered at, by whom)

    def _pace(self) -> None:
        while True:
            kind, delay = self.next_callee()
            if kind in (ANSWER, MACHINE) and not self._safe((self.now + delay, kind)):
                return
            self._start_call()
            if kind in (ANSWER, MACHINE):
                self.flight[self.dials] = (self.now + delay, kind)

    def _safe(self, extra: tuple[float, str]) -> bool:
        """Replays the answers in flight plus `extra` against the agents' free times: every
        person meets an agent within the hold; a machine takes a free agent for its 8 s."""
        agents = [self.now] * self.free + sorted(self.busy_until.values())
        heapq.heapify(agents)
        waiting = [(until - HOLD, ANSWER) for until, _ in self.waiting]
        for at, kind in sorted([*waiting, *self.flight.values(), extra]):
            if agents and agents[0] <= at + (0.5 * HOLD if kind == ANSWER else 0.0):
                heapq.heapreplace(agents, math.inf if kind == ANSWER else at + MACHINE_HANDLE)
            elif kind == ANSWER:
                return False
        return True

    def _answer(self, call: int) -> None:
        self.flight.pop(call, None)
        super()._answer(call)

    def _machine(self, call: int) -> None:
        self.flight.pop(call, None)
        super()._machine(call)


class KnownFree(Pacer):
    """The service's pacer told the truth about agents: when each busy one will be free
    (what it otherwise estimates from handle times). Callees stay unknown to it."""

    def __init__(self) -> None:
        super().__init__()
        self.remaining: dict[float, float] = {}  # busy agent's elapsed -> seconds to free

    def free_chance(self, elapsed: float, within: float) -> float:
        left = self.remaining.get(elapsed)
        return super().free_chance(elapsed, within) if left is None else float(left <= within)


class KnownFreeFloor(Floor):
    """The floor paced by `KnownFree`, which it keeps told."""

    def __init__(self, agents: int, hours: float, seed: int) -> None:
        self.known = KnownFree()
        super().__init__(DialingMode.PREDICTIVE, agents, hours, seed, pacer=self.known)

    def _pace(self) -> None:
        self.known.remaining = {
            self.now - s: self.busy_until[a] - self.now for a, s in self.busy_since.items()
        }
        super()._pace()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--agents", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    lines: list[str] = []
    for agents in args.agents:
        started = time.process_time()
        floors = {
            str(mode): Floor(mode, agents, args.hours, args.seed).run()
            for mode in (DialingMode.PROGRESSIVE, DialingMode.PREDICTIVE)
        }
        cpu = time.process_time() - started
        floors["known_free"] = KnownFreeFloor(agents, args.hours, args.seed).run()
        floors["ceiling"] = Foresight(agents, args.hours, args.seed).run()
        for name, floor in floors.items():
            overall, worst, hour = floor.abandonment()
            rolling = floor.worst_rolling_hour()
            print(
                f"{agents} agents, {name}: {floor.dials} calls, talk utilisation"
                f" {floor.utilisation():.1%}, abandoned {overall:.2%} (worst clock hour {hour}:"
                f" {worst:.2%}, worst rolling hour {rolling:.2%}),"
                f" {floor.contacts_per_agent_hour():.1f} contacts/agent-hour"
            )
            lines.append(f"{name}_{agents}_utilisation: {floor.utilisation():.3f} ratio")
            lines.append(f"{name}_{agents}_abandonment: {overall * 100:.2f} %")
            lines.append(f"{name}_{agents}_abandonment_worst_hour: {worst * 100:.2f} %")
            lines.append(f"{name}_{agents}_abandonment_worst_rolling_hour: {rolling * 100:.2f} %")
        base = floors["progressive"].utilisation()
        for name in ("predictive", "known_free", "ceiling"):
            ratio = floors[name].utilisation() / base
            lines.append(f"{name}_vs_progressive_{agents}: {ratio:.2f} x")
        lines.append(f"simulation_cpu_{agents}: {cpu:.1f} s")
    # The cost of answering-machine detection before the bridge, 10 agents, both modes.
    for mode in (DialingMode.PROGRESSIVE, DialingMode.PREDICTIVE):
        with_amd = Floor(mode, 10, args.hours, args.seed, amd=True).run()
        overall, _, _ = with_amd.abandonment()
        lines.append(f"{mode}_10_with_amd_utilisation: {with_amd.utilisation():.3f} ratio")
        lines.append(f"{mode}_10_with_amd_abandonment: {overall * 100:.2f} %")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
