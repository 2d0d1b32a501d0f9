"""Memory: the worker's RSS while it runs 10,000 no-op jobs, rq_graceful beside rq.Worker.

    python benchmarks/memory.py [--jobs 10000] [--every 500]

RSS of the worker's main process (VmRSS), sampled every ``every`` finished jobs. Reported: the first and
last samples, the maximum, and the growth over the run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import bench_noop
import redis
from common import CLASSES, RESULTS, RedisServer, machine, worker
from rq import Queue


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one(url: str, conn: redis.Redis, tmp: Path, worker_class: str, jobs: int, every: int) -> list[tuple[int, int]]:
    """Start the worker, wait until it is ready (imports done), then feed it ``jobs`` jobs and sample."""
    conn.flushall()
    queue = Queue("default", connection=conn)
    proc = worker(url, tmp, worker_class, args=["--quiet"]).wait_ready()
    samples: list[tuple[int, int]] = [(0, rss_kib(proc.pid))]
    try:
        for start in range(0, jobs, 1000):
            queue.enqueue_many(
                [Queue.prepare_data(bench_noop.noop, result_ttl=0) for _ in range(min(1000, jobs - start))]
            )
        next_mark = every
        while True:
            done = jobs - len(queue)
            if done >= next_mark:
                samples.append((done, rss_kib(proc.pid)))
                next_mark += every
            if done >= jobs:
                break
            time.sleep(0.01)
        proc.send(signal.SIGTERM)
        assert proc.wait_exit(60) == 0
    finally:
        proc.kill_everything()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--json", type=Path, default=RESULTS / "memory.json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        server = RedisServer(Path(tmp_name))
        conn = redis.Redis.from_url(server.url)
        try:
            for name in ("rq.Worker", "rq_graceful.Worker"):
                samples = one(server.url, conn, Path(tmp_name), CLASSES[name], args.jobs, args.every)
                values = [kib for _, kib in samples]
                settled = values[len(values) // 10 :] or values  # after the first tenth: warm-up done
                results[name] = {
                    "samples": samples,
                    "first_kib": values[0],
                    "last_kib": values[-1],
                    "max_kib": max(values),
                    "growth_after_warmup_kib": settled[-1] - settled[0],
                }
                print(name, results[name]["first_kib"], results[name]["last_kib"], file=sys.stderr)
        finally:
            conn.close()
            server.stop()
    print(f"{'worker class':20} {'first KiB':>10} {'last KiB':>10} {'max KiB':>10} {'growth after warm-up':>21}")
    for name, r in results.items():
        print(
            f"{name:20} {r['first_kib']:10d} {r['last_kib']:10d} {r['max_kib']:10d} {r['growth_after_warmup_kib']:21d}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"jobs": args.jobs, "machine": machine(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
