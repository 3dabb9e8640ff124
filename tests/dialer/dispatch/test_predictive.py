"""Predictive pacing: more calls than free agents, held under the abandonment limit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from demo.floor import TALK, WRAP, Floor
from dialer.dispatch.predictive import Desk, Pacer
from dialer.domain.agents import DialingMode

BENCH = Path(__file__).parents[3] / "bench" / "predictive.py"


def _learned(answers: int = 100, answer_every: int = 4, handle: float = 150.0) -> Pacer:
    """A pacer that has seen 400 calls (one in `answer_every` reached a person, after 15 s),
    100 handled calls, and `answers` people answering in the last seconds, none abandoned."""
    pacer = Pacer()
    for i in range(400):
        person = i % answer_every == 0
        pacer.dial_ended(person=person, after=15.0 if person else 30.0)
    for _ in range(100):
        pacer.handled(handle)
    for i in range(answers):
        pacer.answered(float(i), abandoned=False)
    return pacer


def test_ivr_and_preview_are_not_paced_here_and_progressive_is_one_call_per_free_agent() -> None:
    desk = Desk(available=3, busy_elapsed=(10.0,), ringing_elapsed=())
    pacer = _learned()
    assert pacer.calls_to_start(DialingMode.IVR, desk, 0.0) == 0
    assert pacer.calls_to_start(DialingMode.PREVIEW, desk, 0.0) == 0
    assert pacer.calls_to_start(DialingMode.PROGRESSIVE, desk, 0.0) == 3


def test_predictive_is_progressive_until_it_has_learned_the_rates() -> None:
    desk = Desk(available=5, busy_elapsed=(100.0,) * 5)
    assert Pacer().calls_to_start(DialingMode.PREDICTIVE, desk, 0.0) == 5


def test_predictive_starts_more_than_one_call_per_free_agent_at_a_low_answer_rate() -> None:
    desk = Desk(available=5, busy_elapsed=(100.0,) * 5)
    assert _learned().calls_to_start(DialingMode.PREDICTIVE, desk, 0.0) > 5


def test_agents_near_the_end_of_their_calls_count_and_fresh_calls_do_not() -> None:
    pacer = _learned()
    ending = Desk(available=0, busy_elapsed=(149.0,) * 10)
    starting = Desk(available=0, busy_elapsed=(1.0,) * 10)
    assert pacer.calls_to_start(DialingMode.PREDICTIVE, ending, 0.0) > 0
    assert pacer.calls_to_start(DialingMode.PREDICTIVE, starting, 0.0) == 0


def test_no_more_than_progressive_while_one_more_abandon_would_reach_the_limit() -> None:
    desk = Desk(available=5, busy_elapsed=(100.0,) * 5)
    few = _learned(answers=30)  # 1 abandon in 30 answers would be 3.3%
    assert few.calls_to_start(DialingMode.PREDICTIVE, desk, 30.0) == 5
    pacer = _learned(answers=0)
    for i in range(100):
        pacer.answered(float(i), abandoned=i < 3)  # 3% of the last 100 answers
    assert pacer.calls_to_start(DialingMode.PREDICTIVE, desk, 100.0) == 5
    # An hour later those answers have left the window; with new clean ones it presses again.
    for i in range(100):
        pacer.answered(3700.0 + i, abandoned=False)
    assert pacer.calls_to_start(DialingMode.PREDICTIVE, desk, 3800.0) > 5


def test_a_simulated_shift_beats_progressive_and_abandons_at_most_3_percent_each_hour() -> None:
    progressive = Floor(DialingMode.PROGRESSIVE, agents=20, hours=2, seed=11).run()
    predictive = Floor(DialingMode.PREDICTIVE, agents=20, hours=2, seed=11).run()
    assert sum(abandoned for _, abandoned in progressive.hourly.values()) == 0
    for hour, (answered, abandoned) in predictive.hourly.items():
        assert answered > 50, hour
        assert abandoned / answered <= 0.03, (hour, answered, abandoned)
    assert sum(abandoned for _, abandoned in predictive.hourly.values()) > 0  # it did press
    assert predictive.utilisation() > 1.2 * progressive.utilisation()


def test_machine_detection_is_off_with_agents_because_it_breaks_the_two_second_rule() -> None:
    from dialer.dispatch.predictive import MACHINE_DETECTION

    detecting = Floor(DialingMode.PROGRESSIVE, agents=10, hours=1, seed=3, amd=True).run()
    overall, _, _ = detecting.abandonment()
    assert overall > 0.03  # the silence while it decides abandons live answers
    assert MACHINE_DETECTION[DialingMode.IVR]
    assert not any(MACHINE_DETECTION[m] for m in DialingMode if m is not DialingMode.IVR)


def _window(answers: int, abandoned: int) -> Pacer:
    """A learned pacer whose last hour holds `answers` live answers, `abandoned` of them
    abandoned."""
    pacer = _learned(answers=0)
    for i in range(answers):
        pacer.answered(float(i), abandoned=i < abandoned)
    return pacer


def test_full_pace_while_the_window_has_abandons_to_spare_fewer_near_it_none_past_it() -> None:
    desk = Desk(available=5, busy_elapsed=(100.0,) * 5)
    # 1000 answers: 3% x 0.85 allows 25.5 abandoned; these leave 25.5, 10.5, 1.5 and 0.5.
    clean, spare, near, full = (
        _window(1000, a).calls_to_start(DialingMode.PREDICTIVE, desk, 1000.0)
        for a in (0, 15, 24, 25)
    )
    assert clean == spare > near > full == 5  # at 1.5% measured, still the full marginal


def test_the_spare_is_counted_in_calls_so_the_same_rate_binds_a_small_window_first() -> None:
    desk = Desk(available=5, busy_elapsed=(100.0,) * 5)
    small = _window(100, 2)  # 2%: 0.55 abandoned calls to spare
    large = _window(1000, 20)  # 2%: 5.5 to spare
    assert small.calls_to_start(DialingMode.PREDICTIVE, desk, 1000.0) == 5
    assert large.calls_to_start(DialingMode.PREDICTIVE, desk, 1000.0) > 5


def test_at_the_limit_never_more_than_one_call_per_free_agent_not_already_rung_for() -> None:
    pacer = _window(1000, 25)
    for available, ringing in ((5, 0), (5, 2), (5, 9), (0, 0), (3, 3)):
        desk = Desk(available, (100.0,) * 5, (4.0,) * ringing)
        assert pacer.calls_to_start(DialingMode.PREDICTIVE, desk, 1000.0) == max(
            0, available - ringing
        )


class _Peeking(Floor):
    """A floor that looks at the next callee before every pacing decision."""

    def _pace(self) -> None:
        self.next_callee()
        super()._pace()


def test_drawing_callees_ahead_leaves_the_floor_unchanged() -> None:
    plain = Floor(DialingMode.PREDICTIVE, agents=10, hours=1, seed=5).run()
    peeking = _Peeking(DialingMode.PREDICTIVE, agents=10, hours=1, seed=5).run()
    assert (peeking.dials, peeking.talk, peeking.hourly) == (plain.dials, plain.talk, plain.hourly)


def test_the_worst_rolling_hour_sees_abandons_that_straddle_two_clock_hours() -> None:
    floor = Floor(DialingMode.PREDICTIVE, agents=10, hours=2, seed=1)
    # 100 answers each side of 01:00 (3000-3099 s, 3700-3799 s), 3 abandoned next to it.
    floor.answers = [(3000.0 + i, i >= 97) for i in range(100)]
    floor.answers += [(3700.0 + i, i < 3) for i in range(100)]
    assert floor.worst_rolling_hour() == 6 / 103  # (3096 s, 4096 s]: every clock hour is 3%


def test_the_bench_ceiling_knows_the_callees_and_beats_the_pacer_without_abandoning() -> None:
    spec = importlib.util.spec_from_file_location("bench_predictive", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ceiling = bench.Foresight(agents=10, hours=1, seed=5).run()
    predictive = Floor(DialingMode.PREDICTIVE, agents=10, hours=1, seed=5).run()
    assert ceiling.worst_rolling_hour() == 0.0
    assert ceiling.utilisation() > predictive.utilisation()
    assert ceiling.utilisation() < TALK / (TALK + WRAP) + 0.03  # wrap-up is never talk
