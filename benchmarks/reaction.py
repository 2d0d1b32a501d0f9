"""Reaction times of rq_graceful.Worker, measured from outside with real processes.

    python benchmarks/reaction.py [--runs 20] [--json results/reaction.json]

Each run starts a real `rq worker` against a private redis-server, enqueues a
job that reports (in Redis, on CLOCK_MONOTONIC) when it is told and when
ShutdownRequested reaches it, sends SIGTERM to the worker's main pid, and
watches the work horse and the worker exit through pidfds. Reported:

- TERM -> notice: flag (job polls every 0.2 ms) and callback (on_shutdown);
- TERM -> ShutdownRequested in the job, with a pre-shutdown timeout of 0;
- last deadline -> worker exit: the SIGKILL at pre + term for a job that
  swallows ShutdownRequested, to the worker's exit;
- horse exit -> worker exit, for a job that lets ShutdownRequested escape;
- idle worker: TERM -> exit.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import bench_jobs  # noqa: E402
import redis  # noqa: E402
from harness import RedisServer, WorkerProcess, wait_for  # noqa: E402
from rq import Queue  # noqa: E402


def exit_time(pid: int, timeout: float) -> float:
    """CLOCK_MONOTONIC time at which ``pid`` exits (pidfd: no polling)."""
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
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def one_run(
    url: str,
    conn: redis.Redis,
    log_dir: Path,
    env: dict[str, str],
    swallow: bool,
    worker_class: str = "rq_graceful.Worker",
) -> dict[str, float]:
    conn.flushall()
    queue = Queue("default", connection=conn)
    key = f"bench:{time.monotonic_ns()}"
    worker = WorkerProcess(url, env={"PYTHONPATH": str(HERE), **env}, log_dir=log_dir, worker_class=worker_class)
    try:
        worker.wait_ready()
        queue.enqueue(bench_jobs.reporter, key, 60, swallow)
        wait_for(lambda: conn.hget(key, "started"), 20, "the job to start")
        horse = int(conn.hget(key, "pid"))
        horse_fd = os.pidfd_open(horse)
        t0 = worker.send(signal.SIGTERM)
        worker_exit = exit_time(worker.pid, 60)
        ready, _, _ = select.select([horse_fd], [], [], 0)
        os.close(horse_fd)
        assert ready, "horse outlived its worker"
        worker.process.wait()
        got = {k.decode(): float(v) for k, v in conn.hgetall(key).items() if k != b"pid"}
        got.update(t0=t0, worker_exit=worker_exit)
        return got
    finally:
        worker.kill_everything()


def horse_exit_run(url: str, conn: redis.Redis, log_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """(horse exit, worker exit) for a job that lets ShutdownRequested escape."""
    conn.flushall()
    queue = Queue("default", connection=conn)
    key = f"bench:{time.monotonic_ns()}"
    worker = WorkerProcess(url, env={"PYTHONPATH": str(HERE), **env}, log_dir=log_dir)
    try:
        worker.wait_ready()
        queue.enqueue(bench_jobs.reporter, key, 60, False)
        wait_for(lambda: conn.hget(key, "started"), 20, "the job to start")
        horse = int(conn.hget(key, "pid"))
        horse_fd, worker_fd = os.pidfd_open(horse), os.pidfd_open(worker.pid)
        worker.send(signal.SIGTERM)
        ready, _, _ = select.select([horse_fd], [], [], 30)
        horse_exit = time.monotonic()
        ready2, _, _ = select.select([worker_fd], [], [], 30)
        worker_exit = time.monotonic()
        os.close(horse_fd)
        os.close(worker_fd)
        assert ready and ready2
        return horse_exit, worker_exit
    finally:
        worker.kill_everything()


def idle_run(url: str, log_dir: Path, worker_class: str = "rq_graceful.Worker") -> float:
    worker = WorkerProcess(url, log_dir=log_dir, worker_class=worker_class)
    try:
        worker.wait_ready()
        time.sleep(0.2)  # let it settle into its blocking pop
        t0 = worker.send(signal.SIGTERM)
        return exit_time(worker.pid, 60) - t0
    finally:
        worker.kill_everything()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "reaction.json")
    args = parser.parse_args()
    halfway = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0", "RESQUE_TERM_TIMEOUT": "0.5"}
    series: dict[str, list[float]] = {
        k: []
        for k in (
            "TERM -> notice (flag)",
            "TERM -> notice (callback)",
            "TERM -> ShutdownRequested (pre=0)",
            "last deadline -> worker exit",
            "horse exit -> worker exit",
            "idle: TERM -> worker exit",
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        conn = redis.Redis.from_url(server.url)
        try:
            for i in range(args.runs):
                r = one_run(server.url, conn, Path(tmp), halfway, swallow=True)
                series["TERM -> notice (flag)"].append(r["flag"] - r["t0"])
                series["TERM -> notice (callback)"].append(r["callback"] - r["t0"])
                series["TERM -> ShutdownRequested (pre=0)"].append(r["raised"] - r["t0"])
                series["last deadline -> worker exit"].append(r["worker_exit"] - (r["t0"] + 0.5))
                h, w = horse_exit_run(server.url, conn, Path(tmp), halfway)
                series["horse exit -> worker exit"].append(w - h)
                series["idle: TERM -> worker exit"].append(idle_run(server.url, Path(tmp)))
                print(f"run {i + 1}/{args.runs}", file=sys.stderr)
        finally:
            conn.close()
            server.stop()
    table = {name: summary(values) for name, values in series.items()}
    print(f"{'measure':40} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, s in table.items():
        print(f"{name:40} {s['n']:3d} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['max_ms']:8.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "results": table, "raw": series}, indent=2))


if __name__ == "__main__":
    main()
