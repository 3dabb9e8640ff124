"""Predictive pacing: more calls than free agents, held under the abandonment limit."""

from __future__ import annotations

from demo.floor import Floor
from dialer.dispatch.predictive import Desk, Pacer
from dialer.domain.agents import DialingMode


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
