"""Helper threads that never take a signal meant for the main thread."""

from __future__ import annotations

import _thread
import signal
import threading
from collections.abc import Callable

#: Blocked in helper threads, so that a signal meant for the job (RQ's SIGALRM timeout,
#: rq_graceful's raise signal) interrupts the main thread, wherever it is blocked.
BLOCKED = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def start_quiet_thread(target: Callable[..., object], name: str, *args: object) -> threading.Thread:
    """Start a daemon thread with every signal blocked (it inherits the mask it is started with)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)
    try:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


def start_quiet_thread_nowait(target: Callable[..., object], *args: object) -> None:
    """Like start_quiet_thread, without waiting for the thread to be scheduled (it is not in
    threading.enumerate()). For the work horse's listener: starting costs the job nothing."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)
    try:
        _thread.start_new_thread(target, args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
