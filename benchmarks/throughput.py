"""Throughput: 1,000 no-op jobs in burst mode, rq_graceful beside RQ's worker classes, interleaved.

    python benchmarks/throughput.py [--jobs 1000] [--rounds 5]

jobs/s counts from the first job's start to the last job's end (RQ's own timestamps), so worker start-up
is left out; the ratio is to rq.Worker's median over the same rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import bench_noop
import redis
from common import CLASSES, RESULTS, RedisServer, machine, worker
from rq import Queue
from rq.job import Job


def one_round(url: str, conn: redis.Redis, tmp: Path, worker_class: str, jobs: int) -> float:
    conn.flushall()
    queue = Queue("default", connection=conn)
    ids = [job.id for job in queue.enqueue_many([Queue.prepare_data(bench_noop.noop) for _ in range(jobs)])]
    proc = worker(url, tmp, worker_class, args=["--burst", "--quiet"])
    try:
        code = proc.wait_exit(600)
        assert code == 0, proc.log
    finally:
        proc.kill_everything()
    fetched = Job.fetch_many(ids, connection=conn)
    assert all(j is not None and j.get_status() == "finished" for j in fetched), "not every job finished"
    start = min(j.started_at for j in fetched if j is not None and j.started_at)
    end = max(j.ended_at for j in fetched if j is not None and j.ended_at)
    return jobs / (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS / "throughput.json")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in CLASSES}
    with tempfile.TemporaryDirectory() as tmp_name:
        server = RedisServer(Path(tmp_name))
        conn = redis.Redis.from_url(server.url)
        try:
            for r in range(args.rounds):
                order = list(CLASSES.items())
                order = order[r % len(order) :] + order[: r % len(order)]  # rotate who goes first
                for name, cls in order:
                    rates[name].append(one_round(server.url, conn, Path(tmp_name), cls, args.jobs))
                print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        finally:
            conn.close()
            server.stop()
    base = statistics.median(rates["rq.Worker"])
    results = {
        name: {
            "median_jobs_per_s": statistics.median(v),
            "min": min(v),
            "max": max(v),
            "ratio_to_rq_worker": statistics.median(v) / base,
            "rounds": v,
        }
        for name, v in rates.items()
    }
    print(f"{'worker class':24} {'jobs/s (median)':>16} {'min':>8} {'max':>8} {'ratio':>7}")
    for name, s in results.items():
        print(
            f"{name:24} {s['median_jobs_per_s']:16.1f} {s['min']:8.1f} {s['max']:8.1f} {s['ratio_to_rq_worker']:7.3f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"jobs": args.jobs, "rounds": args.rounds, "machine": machine(), "results": results}, indent=1)
    )


if __name__ == "__main__":
    main()
