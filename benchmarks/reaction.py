"""Reaction times, measured from outside with real processes, rq_graceful beside RQ's own classes.

    python benchmarks/reaction.py [--trials 50]

Each trial, for each worker class in turn (interleaved), starts a real `rq worker` against a private
redis-server, enqueues a job that reports in Redis (on CLOCK_MONOTONIC) when it is told and when an
interruption reaches it, sends SIGTERM to the worker's main pid, and watches the work horse and the worker
exit through pidfds. Measured:

- TERM -> notice (rq_graceful only: RQ has none): the flag, polled by the job every 0.2 ms, and an
  on_shutdown callback;
- TERM -> exception in the job: ShutdownRequested with TERM_CHILD and a pre-shutdown timeout of 0, beside
  HerokuWorker's ShutDownImminentException with imminent_shutdown_delay = 0;
- horse exit -> worker exit, for a job that returns 0.5 s after the TERM (every class);
- last deadline -> worker exit: the SIGKILL at pre + term of a job that swallows ShutdownRequested;
- idle worker: TERM -> exit (every class).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import tempfile
import time
from pathlib import Path

import bench_jobs
import redis
from common import CLASSES, RESULTS, RedisServer, exit_time, machine, summary, wait_for, worker
from rq import Queue

TERM_TIMEOUT = 0.5
JOB_AFTER_TERM = 0.5  # the job runs on for this long after the TERM, then returns
HANG_LIMIT = 120.0


def busy_trial(
    url: str, conn: redis.Redis, tmp: Path, worker_class: str, env: dict[str, str], seconds: float, swallow: bool
) -> dict[str, float]:
    """One job, one SIGTERM to the main pid; every time the job and the pidfds saw."""
    conn.flushall()
    key = f"bench:{time.monotonic_ns()}"
    proc = worker(url, tmp, worker_class, env)
    try:
        proc.wait_ready()
        Queue("default", connection=conn).enqueue(bench_jobs.reporter, key, seconds, swallow)
        wait_for(lambda: conn.hget(key, "started"), 20, "the job to start")
        horse_fd, worker_fd = os.pidfd_open(int(conn.hget(key, "pid"))), os.pidfd_open(proc.pid)
        t0 = proc.send(signal.SIGTERM)
        times = {"t0": t0}
        for name, fd in (("horse_exit", horse_fd), ("worker_exit", worker_fd)):
            # RQ's own teardown can hang 60 s (its pubsub thread, redis-py 8.2): wait it out, and count it
            ready, _, _ = select.select([fd], [], [], HANG_LIMIT)
            times[name] = time.monotonic()
            os.close(fd)
            assert ready, f"{name} did not come in {HANG_LIMIT}s"
        times.update({k.decode(): float(v) for k, v in conn.hgetall(key).items() if k not in (b"pid", b"raised_type")})
        return times
    finally:
        proc.kill_everything()


def idle_trial(url: str, tmp: Path, worker_class: str) -> float:
    proc = worker(url, tmp, worker_class)
    try:
        proc.wait_ready()
        time.sleep(0.2)  # let it settle into its blocking pop
        t0 = proc.send(signal.SIGTERM)
        return exit_time(proc.pid, HANG_LIMIT) - t0
    finally:
        proc.kill_everything()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--json", type=Path, default=RESULTS / "reaction.json")
    args = parser.parse_args()
    halfway = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0", "RESQUE_TERM_TIMEOUT": str(TERM_TIMEOUT)}
    series: dict[str, dict[str, list[float]]] = {}
    missed: dict[str, int] = {}  # trials whose job could not report the exception

    def add(measure: str, cls: str, value: float) -> None:
        series.setdefault(measure, {}).setdefault(cls, []).append(value)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = RedisServer(tmp)
        conn = redis.Redis.from_url(server.url)
        try:
            for trial in range(args.trials):
                # rq_graceful: told, raised, killed at the deadline
                r = busy_trial(server.url, conn, tmp, CLASSES["rq_graceful.Worker"], halfway, 60, swallow=True)
                add("TERM -> notice (flag)", "rq_graceful.Worker", r["flag"] - r["t0"])
                add("TERM -> notice (callback)", "rq_graceful.Worker", r["callback"] - r["t0"])
                add("TERM -> exception in the job", "rq_graceful.Worker", r["raised"] - r["t0"])
                add("last deadline -> worker exit", "rq_graceful.Worker", r["worker_exit"] - (r["t0"] + TERM_TIMEOUT))
                h = busy_trial(server.url, conn, tmp, "bench_workers.HerokuNoDelay", {}, 60, swallow=False)
                if "raised" in h:  # HerokuWorker's exception can land inside the job's own Redis call
                    add("TERM -> exception in the job", "rq.HerokuWorker (delay 0)", h["raised"] - h["t0"])
                else:
                    missed["rq.HerokuWorker (delay 0)"] = missed.get("rq.HerokuWorker (delay 0)", 0) + 1
                # every class: a job that ends 0.3 s after the TERM, then the horse exits, then the worker
                for name, cls in CLASSES.items():
                    e = busy_trial(server.url, conn, tmp, cls, {}, JOB_AFTER_TERM, swallow=False)
                    add("horse exit -> worker exit", name, e["worker_exit"] - e["horse_exit"])
                    add("idle: TERM -> worker exit", name, idle_trial(server.url, tmp, cls))
                print(f"trial {trial + 1}/{args.trials}", file=sys.stderr)
        finally:
            conn.close()
            server.stop()
    results = {m: {cls: summary(v) for cls, v in per.items()} for m, per in series.items()}
    print(f"{'measure':34} {'worker class':28} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for measure, per in results.items():
        for cls, s in per.items():
            print(f"{measure:34} {cls:28} {s['n']:3d} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['max_ms']:8.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"trials": args.trials, "machine": machine(), "results": results, "raw": series, "missed": missed}, indent=1
        )
    )


if __name__ == "__main__":
    main()
