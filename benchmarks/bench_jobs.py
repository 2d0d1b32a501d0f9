"""Jobs used by the benchmarks. Times are CLOCK_MONOTONIC, shared by all processes."""

from __future__ import annotations

import os
import time

from rq import get_current_job

from rq_graceful import ShutdownRequested, on_shutdown, shield, shutdown_requested


def reporter(key: str, seconds: float, swallow: bool) -> str:
    """Reports its pid, when it is told (flag polled every 0.2 ms, and callback), and when an exception
    (ShutdownRequested, or HerokuWorker's ShutDownImminentException) reaches it."""
    conn = get_current_job().connection
    conn.hset(key, "pid", os.getpid())
    on_shutdown(lambda: conn.hset(key, "callback", repr(time.monotonic())))
    conn.hset(key, "started", repr(time.monotonic()))
    end = time.monotonic() + seconds
    told = False
    while time.monotonic() < end:
        try:
            while time.monotonic() < end:
                if not told and shutdown_requested():
                    conn.hset(key, "flag", repr(time.monotonic()))
                    told = True
                time.sleep(0.0002)
        except BaseException as exc:
            conn.hset(key, "raised", repr(time.monotonic()))
            conn.hset(key, "raised_type", type(exc).__name__)
            if not swallow:
                raise
    return "done"


def sleeper(key: str, seconds: float) -> str:
    """A plain job for the chaos runs: counts its runs, sleeps."""
    conn = get_current_job().connection
    conn.hincrby(key, "runs", 1)
    time.sleep(seconds)
    conn.hincrby(key, "finished", 1)
    return "slept"


def items(key: str, count: int, per_item: float) -> int:
    """A checkpointing job for the chaos runs: counts each item's executions in a hash."""
    job = get_current_job()
    conn = job.connection
    conn.hincrby(key, "runs", 1)
    start = getattr(job, "checkpoint", None) or 0
    for i in range(start, count):
        if shutdown_requested():
            job.save_checkpoint(i)
            raise ShutdownRequested
        with shield():
            time.sleep(per_item)
            conn.hincrby(key, f"item:{i}", 1)
    conn.hincrby(key, "finished", 1)
    return count
