"""Recovery: from the SIGKILL of a busy worker (worker and horse together) to its job back in its queue.

    python benchmarks/recovery.py [--trials 5]

A second rq_graceful worker is running when the first is killed; it finds the expired lease and requeues
the job. Bounded by the lease TTL (10 s) plus the scan interval (10 s).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench_jobs
import redis
from common import CLASSES, RESULTS, RedisServer, machine, wait_for, worker
from rq import Queue


def one(url: str, conn: redis.Redis, tmp: Path) -> float:
    conn.flushall()
    queue = Queue("default", connection=conn)
    key = f"rec:{time.monotonic_ns()}"
    first = worker(url, tmp, CLASSES["rq_graceful.Worker"]).wait_ready()
    job = queue.enqueue(bench_jobs.reporter, key, 3600, False)
    wait_for(lambda: conn.hget(key, "started"), 20, "the job to start")
    second = worker(url, tmp, CLASSES["rq_graceful.Worker"])
    second.wait_ready()
    # the second worker takes the job once it is requeued: pause it so that "queued" can be seen
    second.send(signal.SIGUSR2)
    wait_for(lambda: second.state() == "suspended", 10, "the second worker to pause")
    killed = first.send(signal.SIGKILL, "all")
    try:
        wait_for(lambda: job.get_status(refresh=True) == "queued", 60, "the job to be requeued")
        return time.monotonic() - killed
    finally:
        first.kill_everything()
        second.kill_everything()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS / "recovery.json")
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp_name:
        server = RedisServer(Path(tmp_name))
        conn = redis.Redis.from_url(server.url)
        try:
            for trial in range(args.trials):
                times.append(one(server.url, conn, Path(tmp_name)))
                print(f"trial {trial + 1}: {times[-1]:.2f}s", file=sys.stderr)
        finally:
            conn.close()
            server.stop()
    result = {
        "trials": args.trials,
        "seconds": times,
        "median_s": statistics.median(times),
        "max_s": max(times),
        "min_s": min(times),
        "machine": machine(),
    }
    print(
        f"SIGKILL -> job back in its queue: median {result['median_s']:.1f} s, "
        f"min {result['min_s']:.1f} s, max {result['max_s']:.1f} s over {args.trials} trials"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
