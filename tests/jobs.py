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


def pg_sleeper(tag: str, dsn: str) -> str:
    """Blocked in PostgreSQL's pg_sleep(60): only a callback that cancels the query can free it."""
    import psycopg

    from rq_graceful import on_shutdown

    with psycopg.connect(dsn, autocommit=True) as pg:
        on_shutdown(pg.cancel)
        mark(tag, "started")
        try:
            pg.execute("SELECT pg_sleep(60)")
        except psycopg.errors.QueryCanceled:
            mark(tag, "cancelled")
            raise ShutdownRequested from None
    mark(tag, "finished")
    return "slept"


def bad_callbacks(tag: str, seconds: float) -> str:
    """Registers a callback that raises and one that hangs, then behaves like attentive()."""
    from rq_graceful import on_shutdown

    def raising() -> None:
        raise RuntimeError("callback boom")

    def hanging() -> None:
        time.sleep(3600)

    on_shutdown(raising)
    on_shutdown(hanging)
    on_shutdown(lambda: mark(tag, "callback"))
    return attentive(tag, seconds)


from rq_graceful import GracefulJob, GracefulTask  # noqa: E402


class HookedJob(GracefulJob):
    """A user's job class: its hook runs at the notice."""

    def on_shutdown_requested(self) -> None:
        self.connection.set(f"t:{self.args[0]}:hook", repr(time.monotonic()))


class Importer(GracefulTask):
    """A class-based job: an instance is enqueued and called."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def on_shutdown_requested(self) -> None:
        mark(self.tag, "task_hook")

    def __call__(self, seconds: float) -> str:
        return attentive(self.tag, seconds)


def dependent(tag: str) -> str:
    mark(tag, "ran")
    return "ok"


def leaves_a_child(tag: str, seconds: float, swallow: bool) -> str:
    """Forks a child that would outlive the job, then runs like swallower() or plain()."""
    import subprocess

    child = subprocess.Popen(["sleep", "300"])
    _conn().set(f"t:{tag}:child", child.pid)
    return swallower(tag, seconds) if swallow else plain(tag, seconds)


def quiet_after_notice(tag: str, seconds: float) -> str:
    """Marks that it was told, then touches Redis no more (Redis may be gone); lets ShutdownRequested escape."""
    mark(tag, "started")
    _wait_for_notice(tag, seconds)
    time.sleep(seconds)
    return "done"
