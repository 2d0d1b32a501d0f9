"""The shutdown state machine, as data: no I/O, no signals, no clock of its own.

The worker feeds it what happened (a signal, a job starting or ending, the
time passing) and carries out the actions it returns. Unit tests drive it with
plain numbers for time.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from ._settings import Budget, Mode, Settings

#: A second INT closer than this to the previous shutdown signal is a duplicate
#: (a worker pool and the terminal both deliver Ctrl+C), as in RQ.
DUPLICATE_WINDOW = 1.0


class Phase(enum.IntEnum):
    RUNNING = 0
    NOTIFIED = 1
    RAISED = 2
    KILLED = 3


class Action(str, enum.Enum):
    NOTICE = "notice"
    RAISE = "raise"
    KILL = "kill"


class Reason(str, enum.Enum):
    SHUTDOWN = "shutdown"  # the worker is going away: the job is requeued
    STOP = "stop"  # a person stopped this job: it ends stopped


@dataclass
class Sequence:
    """Notice, then ShutdownRequested, then SIGKILL, for the running job.

    Times are absolute, on the caller's monotonic clock; ``None`` means that
    phase never comes on its own (entire graceful with no deadline).
    """

    reason: Reason
    raise_at: float | None
    kill_at: float | None
    phase: Phase = Phase.RUNNING

    @classmethod
    def start(cls, reason: Reason, t0: float, budget: Budget) -> Sequence:
        return cls(
            reason,
            None if budget.raise_at is None else t0 + budget.raise_at,
            None if budget.kill_at is None else t0 + budget.kill_at,
        )

    def tighten(self, other: Sequence) -> None:
        """Keep the earlier deadline of each phase (a shutdown during a stop)."""
        self.raise_at = _earliest(self.raise_at, other.raise_at)
        self.kill_at = _earliest(self.kill_at, other.kill_at)

    def advance(self, now: float) -> list[Action]:
        """Move through every phase whose time has come; return what to do."""
        actions: list[Action] = []
        if self.phase < Phase.NOTIFIED:
            self.phase = Phase.NOTIFIED
            actions.append(Action.NOTICE)
        if self.phase < Phase.RAISED and self.raise_at is not None and now >= self.raise_at:
            self.phase = Phase.RAISED
            actions.append(Action.RAISE)
        if self.phase < Phase.KILLED and self.kill_at is not None and now >= self.kill_at:
            self.phase = Phase.KILLED
            actions.append(Action.KILL)
        return actions

    def escalate(self, now: float) -> list[Action]:
        """Bring the next phase forward to now."""
        if self.phase < Phase.RAISED:
            self.raise_at = now
        elif self.phase < Phase.KILLED:
            self.kill_at = now
        return self.advance(now)

    def next_deadline(self) -> float | None:
        if self.phase < Phase.RAISED:
            return self.raise_at
        if self.phase < Phase.KILLED:
            return self.kill_at
        return None


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Controller:
    """What the worker's main loop consults: signals in, actions out."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.shutdown_mode: Mode | None = None
        self.shutdown_started: float | None = None
        self._last_shutdown_signal = float("-inf")
        self.paused = False
        self.busy = False
        self.sequence: Sequence | None = None

    @property
    def shutting_down(self) -> bool:
        return self.shutdown_mode is not None

    @property
    def may_take_job(self) -> bool:
        return not self.shutting_down and not self.paused

    def job_started(self, now: float) -> list[Action]:
        """A job was handed to a horse; if a shutdown is already under way, it is told at once."""
        self.busy = True
        self.sequence = None
        if self.shutdown_mode is None or self.shutdown_started is None:
            return []
        self.sequence = Sequence.start(Reason.SHUTDOWN, self.shutdown_started, self.settings.budget(self.shutdown_mode))
        return self.sequence.advance(now)

    def job_ended(self) -> None:
        self.busy = False
        self.sequence = None

    def on_signal(self, signum: int, now: float) -> list[Action]:
        """Record one signal's meaning; return what to do to the running job now."""
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            if not self.shutting_down:
                return self._start_shutdown(Mode.ENTIRE if signum == signal.SIGQUIT else None, now)
            if signum == signal.SIGINT and now - self._last_shutdown_signal >= DUPLICATE_WINDOW:
                self._last_shutdown_signal = now
                if self.sequence is not None:
                    return self.sequence.escalate(now)
            return []
        if signum == signal.SIGUSR1:
            if self.busy and self.sequence is None:
                self.sequence = Sequence.start(Reason.STOP, now, self.stop_budget())
                return self.sequence.advance(now)
            return []
        if signum == signal.SIGUSR2:
            self.paused = True
        elif signum == signal.SIGCONT and not self.shutting_down:
            self.paused = False
        return []

    def stop_budget(self) -> Budget:
        """The halfway sequence used to stop one job (USR1, stop command)."""
        pre, term = self.settings.pre_shutdown_timeout, self.settings.term_timeout
        return Budget(Mode.HALFWAY, pre, pre + term, None, None)

    def _start_shutdown(self, mode: Mode | None, now: float) -> list[Action]:
        self.shutdown_mode = self.settings.mode if mode is None else mode
        self.shutdown_started = now
        self._last_shutdown_signal = now
        if not self.busy:
            return []
        seq = Sequence.start(Reason.SHUTDOWN, now, self.settings.budget(self.shutdown_mode))
        if self.sequence is None:
            self.sequence = seq
        else:
            self.sequence.tighten(seq)
        return self.sequence.advance(now)

    def tick(self, now: float) -> list[Action]:
        return [] if self.sequence is None else self.sequence.advance(now)

    def next_deadline(self) -> float | None:
        return None if self.sequence is None else self.sequence.next_deadline()
