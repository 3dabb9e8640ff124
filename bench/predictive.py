"""Progressive against predictive dialing, in a discrete-event simulation of a collections floor.

The pacing is the service's own (`dialer.dispatch.predictive.Pacer`); the simulation plays
the callees and the agents (`demo.floor`, whose docstring gives the callees' and agents'
behaviour).

Progressive holds one agent per ringing call; predictive starts as many calls as the
pacer allows. Both run the same shift with the same random callees (same seed). Printed:
agents' talk-time utilisation (talk time / staffed time), abandonment overall and in the
worst hour, right-party contacts per agent-hour, and the ratio predictive / progressive
(the target: at least 1.5 with abandonment at most 3% in every hour).

    python bench/predictive.py [--hours 8] [--agents 10 50] [--seed 7]
"""

from __future__ import annotations

import argparse
import time

from demo.floor import Floor
from dialer.domain.agents import DialingMode


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
            mode: Floor(mode, agents, args.hours, args.seed).run()
            for mode in (DialingMode.PROGRESSIVE, DialingMode.PREDICTIVE)
        }
        cpu = time.process_time() - started
        for mode, floor in floors.items():
            overall, worst, hour = floor.abandonment()
            print(
                f"{agents} agents, {mode}: {floor.dials} calls, talk utilisation"
                f" {floor.utilisation():.1%}, abandoned {overall:.2%} (worst hour {hour}:"
                f" {worst:.2%}), {floor.contacts_per_agent_hour():.1f} contacts/agent-hour"
            )
            lines.append(f"{mode}_{agents}_utilisation: {floor.utilisation():.3f} ratio")
            lines.append(f"{mode}_{agents}_abandonment: {overall * 100:.2f} %")
            lines.append(f"{mode}_{agents}_abandonment_worst_hour: {worst * 100:.2f} %")
        prog, pred = floors[DialingMode.PROGRESSIVE], floors[DialingMode.PREDICTIVE]
        lines.append(
            f"predictive_vs_progressive_{agents}: {pred.utilisation() / prog.utilisation():.2f} x"
        )
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
