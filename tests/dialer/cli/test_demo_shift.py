"""`dialer demo --agents N`: a simulated shift, progressive against predictive."""

from __future__ import annotations

from typer.testing import CliRunner

from demo.floor import PROMISE
from demo.shift import play_shift
from dialer.cli.main import app
from dialer.domain.agents import DialingMode


def _shift(*args: str) -> str:
    result = CliRunner().invoke(app, ["demo", "--hours", "2", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_same_seed_prints_the_same_shift() -> None:
    first = _shift("--agents", "8", "--seed", "11")
    assert first == _shift("--agents", "8", "--seed", "11")
    assert first != _shift("--agents", "8", "--seed", "12")


def test_the_summary_prints_the_floors_figures_and_says_what_it_is() -> None:
    out = _shift("--agents", "8", "--seed", "7")
    floors = play_shift(8, 2.0, 7)
    for mode, floor in floors.items():
        overall, worst, hour = floor.abandonment()
        answered = sum(row[0] for row in floor.hourly.values())
        abandoned = sum(row[1] for row in floor.hourly.values())
        row = next(line for line in out.splitlines() if line.strip().startswith(str(mode)))
        cells = row.split()
        assert cells[1] == str(floor.dials)
        assert cells[2] == f"{floor.utilisation():.1%}"
        assert f"{overall:.1%} ({abandoned}/{answered})" in row
        assert f"{worst:.1%} (h{hour + 1})" in row
        assert cells[-2:] == [f"{floor.contacts_per_agent_hour():.1f}", str(floor.promises)]
    assert "not the full service stack" in " ".join(out.split())
    assert "predictive / progressive talk-time utilisation" in out


def test_the_shift_holds_abandonment_and_promises_follow_conversations() -> None:
    floors = play_shift(8, 4.0, 7)
    pred, prog = floors[DialingMode.PREDICTIVE], floors[DialingMode.PROGRESSIVE]
    assert pred.abandonment()[1] <= 0.03  # the worst hour, at the profile's default limit
    assert prog.abandonment()[0] == 0.0  # progressive holds an agent for every ringing call
    for floor in floors.values():
        conversations = sum(row[0] - row[1] for row in floor.hourly.values())
        share = floor.promises / conversations
        assert PROMISE - 0.1 < share < PROMISE + 0.1, (floor.promises, conversations)


def test_one_agent_is_a_shift_and_none_is_refused() -> None:
    assert "progressive" in _shift("--agents", "1")
    refused = CliRunner().invoke(app, ["demo", "--agents", "0"])
    assert refused.exit_code == 2
    assert "--agents" in refused.output
