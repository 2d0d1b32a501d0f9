"""Jobs the integration tests enqueue. Each reports what happened to it in Redis keys.

Every key is under the ``t:<tag>:`` prefix given by the test, and holds a
CLOCK_MONOTONIC time (shared by all processes on the machine), so tests can
both wait on a key and measure.
"""

from __future__ import annotations

import os
import signal
import time

from rq import get_current_job

from rq_graceful import ShutdownRequested, shield, shutdown_requested


def _conn():  # the job's own connection, the one RQ gave it
    return get_current_job().connection


def mark(tag: str, what: str) -> None:
    _conn().set(f"t:{tag}:{what}", repr(time.monotonic()))


def _wait_for_notice(tag: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if shutdown_requested():
            mark(tag, "notified")
            return True
        time.sleep(0.001)
    return False


def plain(tag: str, seconds: float) -> str:
    """Knows nothing of rq_graceful: sleeps, then returns."""
    mark(tag, "started")
    time.sleep(seconds)
    mark(tag, "finished")
    return "done"


def attentive(tag: str, seconds: float) -> str:
    """Runs ``seconds``, marking when it is told; lets ShutdownRequested escape."""
    mark(tag, "started")
    try:
        _wait_for_notice(tag, seconds)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.005)
    except ShutdownRequested:
        mark(tag, "raised")
        raise
    mark(tag, "finished")
    return "done"


def swallower(tag: str, seconds: float) -> str:
    """Catches ShutdownRequested and carries on: must be SIGKILLed on time."""
    mark(tag, "started")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            _wait_for_notice(tag, end - time.monotonic())
            time.sleep(max(0.0, end - time.monotonic()))
        except ShutdownRequested:
            mark(tag, "raised")
    mark(tag, "finished")
    return "done"


def shielded(tag: str, seconds: float) -> str:
    """Holds a shield for ``seconds``: ShutdownRequested must wait for its end."""
    mark(tag, "started")
    try:
        with shield():
            _wait_for_notice(tag, seconds)
            time.sleep(seconds)
            mark(tag, "shield_end")
        time.sleep(seconds)
    except ShutdownRequested:
        mark(tag, "raised")
        raise
    mark(tag, "finished")
    return "done"


def checkpointing(tag: str, items: int, per_item: float) -> int:
    """Processes items one by one; records each in a Redis list; stops cleanly on notice."""
    job = get_current_job()
    start = job.checkpoint or 0
    mark(tag, f"run{job.interruptions}")
    for i in range(start, items):
        if shutdown_requested():
            job.save_checkpoint(i)
            raise ShutdownRequested
        with shield():
            time.sleep(per_item)
            _conn().rpush(f"t:{tag}:done", i)
    mark(tag, "finished")
    return items


def ignores_signals(tag: str, seconds: float) -> str:
    """Sets SIGTERM and SIGUSR1 to SIG_IGN itself, and never looks at the flag."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    return plain(tag, seconds)


def pid_of_horse(tag: str) -> int:
    mark(tag, "started")
    _conn().set(f"t:{tag}:pid", os.getpid())
    return os.getpid()


def fast(tag: str) -> str:
    _conn().incr(f"t:{tag}:count")
    return "ok"
