"""The shutdown state machine, driven with plain numbers for time."""

from __future__ import annotations

import signal

import pytest

from rq_graceful import Mode, Settings
from rq_graceful._phases import DUPLICATE_WINDOW, Action, Controller, Phase, Reason

N, R, K = Action.NOTICE, Action.RAISE, Action.KILL


def controller(**kwargs: object) -> Controller:
    return Controller(Settings.from_env({}, dockerenv="/nonexistent", **kwargs))


def busy(**kwargs: object) -> Controller:
    c = controller(**kwargs)
    assert c.job_started(0.0) == []
    return c


def test_entire_graceful_only_tells_the_job() -> None:
    c = busy()
    assert c.on_signal(signal.SIGTERM, 10.0) == [N]
    assert c.shutdown_mode is Mode.ENTIRE
    assert c.next_deadline() is None
    assert c.tick(10_000.0) == []
    assert not c.may_take_job


def test_halfway_phases_fall_due_in_order() -> None:
    c = busy(term_child=True, pre_shutdown_timeout=20, term_timeout=8)
    assert c.on_signal(signal.SIGTERM, 100.0) == [N]
    assert c.next_deadline() == 120.0
    assert c.tick(119.999) == []
    assert c.tick(120.0) == [R]
    assert c.next_deadline() == 128.0
    assert c.tick(128.0) == [K]
    assert c.next_deadline() is None
    assert c.sequence is not None and c.sequence.phase is Phase.KILLED


def test_late_tick_carries_out_every_overdue_phase_at_once() -> None:
    c = busy(term_child=True, pre_shutdown_timeout=1, term_timeout=1)
    c.on_signal(signal.SIGTERM, 0.0)
    assert c.tick(5.0) == [R, K]


def test_immediate_does_everything_at_once() -> None:
    c = busy(term_child=True, pre_shutdown_timeout=0, term_timeout=0)
    assert c.on_signal(signal.SIGTERM, 3.0) == [N, R, K]


def test_quit_is_entire_graceful_whatever_the_mode() -> None:
    c = busy(term_child=True, pre_shutdown_timeout=0, term_timeout=0)
    assert c.on_signal(signal.SIGQUIT, 3.0) == [N]
    assert c.shutdown_mode is Mode.ENTIRE


def test_quit_still_respects_the_kill_deadline() -> None:
    c = busy(kill_deadline=10, safety_margin=1, term_timeout=2)
    c.on_signal(signal.SIGQUIT, 0.0)
    assert c.next_deadline() == pytest.approx(6.5)


@pytest.mark.parametrize("repeat", [signal.SIGTERM, signal.SIGCONT, signal.SIGQUIT])
def test_repeated_term_or_cont_during_shutdown_changes_nothing(repeat: int) -> None:
    c = busy(term_child=True, pre_shutdown_timeout=20, term_timeout=8)
    c.on_signal(signal.SIGTERM, 0.0)
    assert c.on_signal(repeat, 5.0) == []
    assert c.next_deadline() == 20.0
    assert c.shutdown_mode is Mode.HALFWAY


def test_second_int_skips_to_the_next_phase() -> None:
    c = busy()
    assert c.on_signal(signal.SIGINT, 0.0) == [N]
    assert c.on_signal(signal.SIGINT, 2.0) == [R]
    assert c.next_deadline() is None  # entire graceful: no kill until asked
    assert c.on_signal(signal.SIGINT, 3.5) == [K]


def test_int_within_a_second_is_a_duplicate() -> None:
    c = busy()
    c.on_signal(signal.SIGTERM, 0.0)
    assert c.on_signal(signal.SIGINT, DUPLICATE_WINDOW - 0.01) == []
    assert c.on_signal(signal.SIGINT, DUPLICATE_WINDOW + 0.5) == [R]


def test_usr1_stops_the_job_with_the_halfway_sequence_and_keeps_working() -> None:
    c = busy(pre_shutdown_timeout=2, term_timeout=3)  # TERM_CHILD off: USR1 still uses them
    assert c.on_signal(signal.SIGUSR1, 10.0) == [N]
    assert c.sequence is not None and c.sequence.reason is Reason.STOP
    assert c.tick(12.0) == [R]
    assert c.tick(15.0) == [K]
    assert not c.shutting_down and c.may_take_job
    c.job_ended()
    assert c.sequence is None


def test_usr1_when_idle_or_twice_does_nothing() -> None:
    c = controller()
    assert c.on_signal(signal.SIGUSR1, 0.0) == []
    c.job_started(1.0)
    c.on_signal(signal.SIGUSR1, 1.0)
    assert c.on_signal(signal.SIGUSR1, 1.5) == []


def test_shutdown_during_a_stop_keeps_the_earlier_deadlines() -> None:
    c = busy(pre_shutdown_timeout=10, term_timeout=10, kill_deadline=6, safety_margin=1)
    c.on_signal(signal.SIGUSR1, 0.0)
    # deadline 6 - margin 1 - reserve 0.5: SIGKILL at 1 + 4.5, so term is clamped to 4.5 and
    # ShutdownRequested is due at once, well before the stop's own 10 s
    assert c.on_signal(signal.SIGTERM, 1.0) == [R]
    assert c.sequence is not None and c.sequence.reason is Reason.STOP
    assert c.next_deadline() == pytest.approx(5.5)


def test_pause_and_resume() -> None:
    c = controller()
    c.on_signal(signal.SIGUSR2, 0.0)
    assert c.paused and not c.may_take_job and not c.shutting_down
    c.on_signal(signal.SIGCONT, 1.0)
    assert c.may_take_job


def test_term_while_paused_shuts_down_and_cont_no_longer_resumes() -> None:
    c = controller()
    c.on_signal(signal.SIGUSR2, 0.0)
    c.on_signal(signal.SIGTERM, 1.0)
    c.on_signal(signal.SIGCONT, 1.1)
    assert c.shutting_down and not c.may_take_job


def test_idle_shutdown_has_nothing_to_tell() -> None:
    c = controller(term_child=True)
    assert c.on_signal(signal.SIGTERM, 0.0) == []
    assert c.shutting_down and c.sequence is None


def test_job_started_after_the_shutdown_is_told_at_once() -> None:
    c = controller(term_child=True, pre_shutdown_timeout=5, term_timeout=5)
    c.on_signal(signal.SIGTERM, 0.0)
    assert c.job_started(2.0) == [N]
    assert c.next_deadline() == 5.0  # counted from the first TERM
