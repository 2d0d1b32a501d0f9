"""Jobs used by the benchmarks. Times are CLOCK_MONOTONIC, shared by all processes."""

from __future__ import annotations

import os
import time

from rq import get_current_job

from rq_graceful import ShutdownRequested, on_shutdown, shutdown_requested


def noop() -> None:
    return None


def reporter(key: str, seconds: float, swallow: bool) -> str:
    """Reports its pid, when it is told (flag polled every 0.2 ms, and callback), and when it is raised in."""
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
        except ShutdownRequested:
            conn.hset(key, "raised", repr(time.monotonic()))
            if not swallow:
                raise
    return "done"
