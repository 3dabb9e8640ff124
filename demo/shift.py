"""`dialer demo --agents N`: a simulated shift of N collectors, progressive against predictive.

Both modes play the same shift with the same seeded callees on `demo.floor` (the simulated
floor, paced by the service's own `dialer.dispatch.predictive.Pacer`). It is not the whole
service: no database, no worker, no Twilio; the bridged call through the worker is a
separate piece of work. The printed table is a function of the seed alone.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from demo.floor import PROMISE, Floor
from dialer.domain.agents import DialingMode

MODES = (DialingMode.PROGRESSIVE, DialingMode.PREDICTIVE)


def play_shift(agents: int, hours: float, seed: int) -> dict[DialingMode, Floor]:
    """The same shift played under each mode (same seed, so the same callees)."""
    return {mode: Floor(mode, agents, hours, seed).run() for mode in MODES}


def shift_table(floors: dict[DialingMode, Floor]) -> Table:
    table = Table(
        title="the shift, by dialing mode",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in (
        "mode",
        "calls",
        "talk",
        "abandoned",
        "worst",
        "RPC/h",
        "promises",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right", no_wrap=True)
    for mode, floor in floors.items():
        overall, worst, hour = floor.abandonment()
        answered = sum(row[0] for row in floor.hourly.values())
        abandoned = sum(row[1] for row in floor.hourly.values())
        table.add_row(
            str(mode),
            f"{floor.dials}",
            f"{floor.utilisation():.1%}",
            f"{overall:.1%} ({abandoned}/{answered})",
            f"{worst:.1%} (h{hour + 1})",
            f"{floor.contacts_per_agent_hour():.1f}",
            f"{floor.promises}",
        )
    table.caption = (
        "calls: calls placed; talk: agents' talk time / staffed time; abandoned:"
        " abandoned / live answers (limit 3%), overall and (worst) in the worst hour;"
        " RPC/h: right-party contacts per agent-hour; promises: promises to pay"
    )
    return table


def run_shift_demo(console: Console, agents: int, hours: float, seed: int) -> None:
    """Play the shift and print its summary (see the module docstring for what it is)."""
    floors = play_shift(agents, hours, seed)
    console.print(
        f"A simulated shift: {agents} collector(s), {hours:g} h, seed {seed}. Callees answer"
        " 25% of calls (12% machines, 48% no answer, 15% fail); a conversation lasts ~120 s"
        f" and its wrap-up ~30 s; {PROMISE:.0%} of conversations end in a promise."
    )
    console.print(shift_table(floors))
    prog, pred = floors[DialingMode.PROGRESSIVE], floors[DialingMode.PREDICTIVE]
    if prog.utilisation() > 0:
        console.print(
            f"predictive / progressive talk-time utilisation: "
            f"{pred.utilisation() / prog.utilisation():.2f}x"
            f" (the abandonment limit is {pred.pacer.limit:.0%} of live answers)"
        )
    console.print(
        "What this is: the simulated floor (demo/floor.py) paced by the service's own"
        " predictive pacer (dialer.dispatch.predictive.Pacer); every person who answers is"
        " taken as the right party. It is not the full service stack: no database, worker"
        " or Twilio call is involved, and the bridged-call path through the worker is still"
        " being built."
    )
