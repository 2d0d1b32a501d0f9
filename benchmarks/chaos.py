"""Restart chaos: workers restarted as a platform restarts them, while jobs keep coming.

    python benchmarks/chaos.py [--restarts 100] [--interval 1.0] [--deadline 3.0]

Two workers run; every ``interval`` seconds the oldest gets SIGTERM (to every process of it, as Heroku and
systemd send it, or to its main pid, as Kubernetes and Docker do), a replacement starts at once, and the
old one is SIGKILLed with its whole session ``deadline`` seconds after its TERM if it is still there. A
feeder keeps the queue stocked with plain jobs (0.3 to 6 s of sleep) and checkpointing jobs (30 items of
0.1 s, each item shielded, the checkpoint saved on notice): many jobs outlast the 3 s grace period.
After the last restart, the last workers drain
the queue and the jobs are counted:

- finished; failed (or stopped); lost (gone, or marked queued but in no queue);
- stuck: still started (abandoned by a killed worker) or queued and never run;
- items redone, for checkpointing jobs, per interruption; platform SIGKILLs that found a worker alive.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import bench_jobs
import redis
from common import CLASSES, RESULTS, RedisServer, WorkerProcess, machine, session_pids, worker
from rq import Queue

GRACEFUL_ENV = {"RQ_GRACEFUL_SAFETY_MARGIN": "0.5", "RQ_GRACEFUL_TERM_TIMEOUT": "1"}
WORKERS = 2
STOCK = 4


def _kill_session(proc: WorkerProcess) -> bool:
    """SIGKILL everything of the worker, as a platform does at its deadline. True if anything was alive."""
    pids = session_pids(proc.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return bool(pids)


def run(
    url: str,
    conn: redis.Redis,
    tmp: Path,
    worker_class: str,
    style: str,
    restarts: int,
    interval: float,
    deadline: float,
    seed: int,
    extra_env: dict[str, str] | None = None,
) -> dict[str, object]:
    conn.flushall()
    rng = random.Random(seed)
    queue = Queue("default", connection=conn)
    env = {**GRACEFUL_ENV, "RQ_GRACEFUL_KILL_DEADLINE": str(deadline)} if "rq_graceful" in worker_class else {}
    env.update(extra_env or {})
    kinds: dict[str, str] = {}

    def feed() -> None:
        while len(queue) < STOCK:
            n = len(kinds)
            if n % 2:
                job = queue.enqueue(bench_jobs.items, f"c:{n}", 30, 0.1, job_timeout=600)
                kinds[job.id] = "checkpointing"
            else:
                job = queue.enqueue(bench_jobs.sleeper, f"c:{n}", rng.uniform(0.3, 6.0), job_timeout=600)
                kinds[job.id] = "plain"
            conn.hset(f"c:{n}", "job", job.id)

    def start() -> WorkerProcess:
        return worker(url, tmp, worker_class, env)

    live: collections.deque[WorkerProcess] = collections.deque(start() for _ in range(WORKERS))
    stopping: list[tuple[WorkerProcess, float]] = []
    all_procs = list(live)
    kills_found_alive = 0

    def reap(now: float) -> None:
        nonlocal kills_found_alive
        for proc, kill_at in list(stopping):
            if now >= kill_at:
                kills_found_alive += _kill_session(proc)
                stopping.remove((proc, kill_at))

    t_start = time.monotonic()
    feed()
    for i in range(restarts):
        t_next = t_start + (i + 1) * interval
        while time.monotonic() < t_next:
            feed()
            reap(time.monotonic())
            time.sleep(0.01)
        victim = live.popleft()
        victim.send(signal.SIGTERM, style)
        stopping.append((victim, time.monotonic() + deadline))
        fresh = start()
        live.append(fresh)
        all_procs.append(fresh)
    # wind down: no more jobs, no more restarts; finish the kills due, let the last workers drain the queue
    end = time.monotonic() + deadline + 0.1
    while stopping and time.monotonic() < end + 1:
        reap(time.monotonic())
        time.sleep(0.01)
    drain_until = time.monotonic() + 120
    started = queue.started_job_registry
    while time.monotonic() < drain_until and (len(queue) or _running(started, conn, kinds)):
        time.sleep(0.1)
    for proc in live:
        proc.send(signal.SIGTERM)
    for proc in live:
        with contextlib.suppress(AssertionError):
            proc.wait_exit(10)
    for proc in all_procs:
        proc.kill_everything()
    return _account(conn, queue, kinds) | {
        "platform_sigkills_found_alive": kills_found_alive,
        "restarts": restarts,
        "style": style,
    }


def _running(registry: object, conn: redis.Redis, kinds: dict[str, str]) -> bool:
    statuses = _statuses(conn, kinds)
    return any(s == "started" for s in statuses.values())


def _statuses(conn: redis.Redis, kinds: dict[str, str]) -> dict[str, str | None]:
    with conn.pipeline(transaction=False) as pipe:
        for job_id in kinds:
            pipe.hget(f"rq:job:{job_id}", "status")
        values = pipe.execute()
    return {job_id: (v.decode() if v else None) for job_id, v in zip(kinds, values, strict=True)}


def _account(conn: redis.Redis, queue: Queue, kinds: dict[str, str]) -> dict[str, object]:
    statuses = _statuses(conn, kinds)
    queued_ids = set(queue.job_ids)
    counts = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    redone = interruptions = 0
    for n, (job_id, kind) in enumerate(kinds.items()):
        status = statuses[job_id]
        if status is None:
            counts["lost"] += 1
        elif status == "finished":
            counts["finished"] += 1
        elif status in ("failed", "stopped", "canceled"):
            counts["failed"] += 1
            reasons[_failure_reason(conn, job_id)] += 1
        elif status == "queued" and job_id not in queued_ids:
            counts["lost"] += 1
        else:
            counts["stuck"] += 1
        record = {k.decode(): int(v) for k, v in conn.hgetall(f"c:{n}").items() if k != b"job"}
        runs = record.get("runs", 0)
        if kind == "checkpointing":
            interruptions += max(0, runs - 1)
            redone += sum(c - 1 for k, c in record.items() if k.startswith("item:") and c > 1)
    return {
        "jobs": len(kinds),
        "finished": counts["finished"],
        "failed": counts["failed"],
        "lost": counts["lost"],
        "stuck": counts["stuck"],
        "checkpointing_interruptions": interruptions,
        "items_redone": redone,
        "redone_per_interruption": (redone / interruptions) if interruptions else 0.0,
        "failure_reasons": dict(reasons),
    }


def _failure_reason(conn: redis.Redis, job_id: str) -> str:
    """The first line of the failure's text, or what RQ's abandoned-job path said."""
    from rq.job import Job

    try:
        result = Job.fetch(job_id, connection=conn).latest_result()
    except Exception:
        return "unknown"
    text = (getattr(result, "exc_string", None) or "").strip().splitlines()
    return text[-1][:80] if text else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=3.0)
    parser.add_argument("--classes", default=",".join(CLASSES))
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the workers, e.g. RQ_GRACEFUL_MAX_INTERRUPTIONS=none",
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "chaos.json")
    args = parser.parse_args()
    results = []
    extra_env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory() as tmp_name:
        server = RedisServer(Path(tmp_name))
        conn = redis.Redis.from_url(server.url)
        try:
            for style in ("all", "main"):
                for name in args.classes.split(","):
                    r = run(
                        server.url,
                        conn,
                        Path(tmp_name),
                        CLASSES[name],
                        style,
                        args.restarts,
                        args.interval,
                        args.deadline,
                        seed=len(results),
                        extra_env=extra_env,
                    )
                    r["worker_class"] = name
                    results.append(r)
                    print(json.dumps(r), file=sys.stderr)
        finally:
            conn.close()
            server.stop()
    header = (
        f"{'worker class':20} {'TERM to':5} {'jobs':>5} {'finished':>8} {'failed':>6} {'lost':>5} "
        f"{'stuck':>5} {'redone/intr':>11} {'kills found alive':>17}"
    )
    print(header)
    for r in results:
        print(
            f"{r['worker_class']:20} {r['style']:5} {r['jobs']:5d} {r['finished']:8d} {r['failed']:6d} "
            f"{r['lost']:5d} {r['stuck']:5d} {r['redone_per_interruption']:11.2f} "
            f"{r['platform_sigkills_found_alive']:17d}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "restarts": args.restarts,
                "interval": args.interval,
                "deadline": args.deadline,
                "env": extra_env,
                "machine": machine(),
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
