"""The work horse's side: what the running job sees of a shutdown.

The worker talks to its horse through a pipe: one byte per message. A
listener thread in the horse reads it, sets the notice flag, runs the
shutdown callbacks, and, when told to, signals the horse's main thread so
that ShutdownRequested is raised in the job's own code. An end of file on the
pipe means the worker died: the horse then stops the job on its own.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from ._threads import start_quiet_thread, start_quiet_thread_nowait

__all__ = ["ShutdownRequested", "on_shutdown", "shield", "shutdown_requested"]

logger = logging.getLogger("rq.worker.graceful")

#: The signal the listener thread sends to the horse's main thread.
RAISE_SIGNAL: int = signal.SIGRTMIN + 1 if hasattr(signal, "SIGRTMIN") else signal.SIGUSR2

# Messages from the worker to its horse.
MSG_NOTICE = b"N"  # the worker is shutting down: the job will be requeued
MSG_STOP = b"S"  # a person stopped this job: it will end stopped
MSG_RAISE = b"R"  # raise ShutdownRequested now (or at the end of the shield)

#: Exit statuses of a horse whose job was interrupted.
EXIT_REQUEUED = 75  # EX_TEMPFAIL: the horse put the job back itself
EXIT_STOPPED = 76  # the job ended by ShutdownRequested after a stop
EXIT_UNSETTLED = 77  # interrupted, but the horse could not record it: the worker must


class ShutdownRequested(BaseException):
    """Raised in a job's code when its worker is shutting down (or the job is stopped).

    It derives from BaseException, like KeyboardInterrupt, so that
    ``except Exception:`` in a job does not swallow it by accident. Let it
    escape: the job is then requeued (or ends stopped) instead of failing.
    """

    def __init__(self, reason: str = "shutdown") -> None:
        super().__init__(f"{reason} requested")
        self.reason = reason


class _State:
    """Per-process state of the horse; inert in any other process."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.active = False  # True in a horse while its job is being run
        self.notice = threading.Event()
        self.reason = "shutdown"
        self.in_job_code = False
        self.shield_depth = 0
        self.requested = False  # the worker asked for ShutdownRequested
        self.delivered = False  # ShutdownRequested was raised in the job
        self.callbacks: list[Callable[[], object]] = []
        self.lock = threading.Lock()
        self.main_ident: int | None = None
        self.orphaned: Callable[[], None] | None = None
        self.job: object | None = None


_state = _State()


def shutdown_requested() -> bool:
    """True in a job once its worker has been asked to shut down (or to stop it).

    False outside a job, and before any notice.
    """
    return _state.active and _state.notice.is_set()


def on_shutdown(callback: Callable[[], object]) -> None:
    """Run ``callback()`` on a helper thread of the work horse at the soft notice.

    It runs concurrently with the job, so it can unblock a job stuck in C code
    (cancel a database query, close a socket). Registered for the current
    execution only; if the notice has already come, it runs at once. A
    callback that raises is logged; one that hangs delays nothing.
    """
    with _state.lock:
        if not _state.notice.is_set():
            _state.callbacks.append(callback)
            return
    _run_callback(callback)


@contextmanager
def shield() -> Iterator[None]:
    """Defer ShutdownRequested until the end of the block.

    Nothing shields the SIGKILL that follows the term timeout: keep shielded
    blocks short.
    """
    _state.shield_depth += 1
    try:
        yield
    finally:
        _state.shield_depth -= 1
        if _state.shield_depth == 0:
            _deliver_if_due()


def _deliver_if_due() -> None:
    s = _state
    if s.requested and not s.delivered and s.in_job_code and s.shield_depth == 0:
        s.delivered = True
        raise ShutdownRequested(s.reason)


def _on_raise_signal(signum: int, frame: FrameType | None) -> None:
    _state.requested = True
    _deliver_if_due()


@contextmanager
def job_code() -> Iterator[None]:
    """Mark the window in which ShutdownRequested may be raised: the job's own code."""
    _state.in_job_code = True
    try:
        _deliver_if_due()
        yield
    finally:
        _state.in_job_code = False


def _run_callback(callback: Callable[[], object]) -> None:
    def run() -> None:
        _enter_job_context()
        try:
            callback()
        except Exception:
            logger.exception("rq_graceful: shutdown callback %r raised", callback)

    start_quiet_thread(run, "rq_graceful-callback")


def _enter_job_context() -> None:
    """Make rq.get_current_job() work on this helper thread too (RQ keeps it per thread)."""
    if _state.job is None:
        return
    import rq.job

    current = getattr(rq.job, "_current_job", None)  # a ContextVar in RQ 2.x and 3.x
    if current is not None:
        current.set(_state.job)
    elif hasattr(rq.job, "_job_stack"):  # pragma: no cover - older RQ
        rq.job._job_stack.push(_state.job)


def _notify(reason: str) -> None:
    with _state.lock:
        if _state.notice.is_set():
            return
        _state.reason = reason
        _state.notice.set()
        callbacks, _state.callbacks = _state.callbacks, []
    for callback in callbacks:
        _run_callback(callback)
    from . import signals

    signals.send(signals.shutdown_noticed, _state.job, reason=reason, at=time.monotonic())


def _request_raise() -> None:
    if _state.main_ident is not None:
        signal.pthread_kill(_state.main_ident, RAISE_SIGNAL)


def _listen(fd: int) -> None:
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        except OSError:
            return
        if not data:
            logger.warning("rq_graceful: the worker is gone; stopping the job")
            _notify("shutdown")
            _request_raise()
            if _state.orphaned is not None:
                _state.orphaned()
            return
        for byte in data:
            message = bytes((byte,))
            if message == MSG_NOTICE:
                _notify("shutdown")
            elif message == MSG_STOP:
                _notify("stop")
            elif message == MSG_RAISE:
                _request_raise()


def set_job(job: object) -> None:
    _state.job = job


def start(fd: int, orphaned: Callable[[], None]) -> None:
    """Become a horse: called once in the forked child, before the job runs."""
    _state.reset()
    _state.active = True
    _state.main_ident = threading.get_ident()
    _state.orphaned = orphaned
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    for sig in (signal.SIGCONT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(RAISE_SIGNAL, _on_raise_signal)
    start_quiet_thread_nowait(_listen, fd)
