"""`rq worker` options users combine with a worker class, and `rq worker-pool`."""

from __future__ import annotations

import signal
from pathlib import Path

import jobs
import pytest
from harness import RQ, session_pids, wait_for
from test_worker import HALFWAY, interruptions, reached, status

pytestmark = pytest.mark.integration


def test_burst_runs_the_queue_and_exits(start_worker, queue, conn) -> None:
    enqueued = [queue.enqueue(jobs.fast, "burst") for _ in range(5)]
    worker = start_worker(args=["--burst"], ready=False)
    assert worker.wait_exit(30) == 0
    assert int(conn.get("t:burst:count") or 0) == len(enqueued)


def test_burst_worker_interrupted_requeues(start_worker, queue, conn) -> None:
    job = queue.enqueue(jobs.attentive, "bt", 60)
    worker = start_worker(args=["--burst"], env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"}, ready=False)
    reached(conn, "bt", "started")
    worker.send(signal.SIGTERM, "all")
    assert worker.wait_exit(15) == 0
    assert status(job) == "queued" and interruptions(job) == 1


def test_max_jobs(start_worker, queue, conn) -> None:
    for _ in range(3):
        queue.enqueue(jobs.fast, "mj")
    worker = start_worker(args=["--max-jobs", "2"], ready=False)
    assert worker.wait_exit(30) == 0
    assert int(conn.get("t:mj:count") or 0) == 2
    assert len(queue.job_ids) == 1


def test_with_scheduler_shuts_down_cleanly(start_worker, queue, conn) -> None:
    from datetime import timedelta

    worker = start_worker(args=["--with-scheduler"], env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"})
    scheduled = queue.enqueue_in(timedelta(seconds=1), jobs.fast, "sched")
    wait_for(lambda: status(scheduled) == "finished", 20, "the scheduled job to run")
    job = queue.enqueue(jobs.attentive, "ws", 60)
    reached(conn, "ws", "started")
    worker.send(signal.SIGTERM, "all")
    assert worker.wait_exit(20) == 0
    assert status(job) == "queued"
    wait_for(lambda: worker.processes() == [], 10, "the scheduler process to exit")


@pytest.mark.parametrize("to", ["main", "all"])
def test_worker_pool(redis_url, queue, conn, tmp_path: Path, to: str) -> None:
    import os
    import subprocess

    env = {
        **os.environ,
        "PYTHONPATH": str(Path(jobs.__file__).parent),
        **HALFWAY,
        "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0",
        "RESQUE_TERM_TIMEOUT": "2",
    }
    log = open(tmp_path / "pool.log", "wb")  # noqa: SIM115 - closed in finally
    pool = subprocess.Popen(
        [RQ, "worker-pool", "--url", redis_url, "--worker-class", "rq_graceful.Worker", "-n", "2", "default"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        long_jobs = [queue.enqueue(jobs.attentive, f"pool{i}", 60) for i in range(2)]
        for i in range(2):
            reached(conn, f"pool{i}", "started", 30)
        targets = session_pids(pool.pid) if to == "all" else [pool.pid]
        for pid in targets:
            os.kill(pid, signal.SIGTERM)
        assert pool.wait(30) == 0
        for job in long_jobs:
            assert status(job) == "queued" and interruptions(job) == 1
        assert sorted(queue.job_ids) == sorted(j.id for j in long_jobs)
    finally:
        for pid in session_pids(pool.pid):
            os.kill(pid, signal.SIGKILL)
        pool.wait()
        log.close()
