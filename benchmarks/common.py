"""What every benchmark shares: a private redis-server, real workers, pidfd waits, percentiles."""

from __future__ import annotations

import os
import platform
import select
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
for path in (str(HERE), str(HERE.parent / "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

from harness import RedisServer, WorkerProcess, session_pids, wait_for  # noqa: E402

__all__ = [
    "CLASSES",
    "RESULTS",
    "RedisServer",
    "WorkerProcess",
    "exit_time",
    "machine",
    "percentile",
    "session_pids",
    "summary",
    "wait_for",
    "worker",
]

#: The worker classes compared, by the name `rq worker --worker-class` takes.
CLASSES = {
    "rq.Worker": "rq.worker.Worker",
    "rq.HerokuWorker": "rq.worker.HerokuWorker",
    "rq_graceful.Worker": "rq_graceful.Worker",
}


def worker(
    url: str, log_dir: Path, worker_class: str, env: dict[str, str] | None = None, args: list[str] | None = None
) -> WorkerProcess:
    return WorkerProcess(
        url, env={"PYTHONPATH": str(HERE), **(env or {})}, log_dir=log_dir, worker_class=worker_class, args=args or []
    )


def exit_time(pid: int, timeout: float) -> float:
    """CLOCK_MONOTONIC time at which ``pid`` exits, watched through a pidfd (no polling)."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        t = time.monotonic()
        if not ready:
            raise TimeoutError(f"pid {pid} still alive after {timeout}s")
        return t
    finally:
        os.close(fd)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    """p50/p99/max/mean of durations given in seconds, reported in milliseconds."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def machine() -> dict[str, object]:
    import redis
    import rq

    import rq_graceful

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
        "rq_graceful": rq_graceful.__version__,
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
    }
