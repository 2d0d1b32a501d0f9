"""The graceful worker with real `rq worker` processes, real signals and a private Redis.

Signals go either to the main pid only (as Kubernetes and Docker send them)
or to every process of the worker (as Heroku and systemd do). Bounds on
timing are generous: this machine has two shared cores. Precise figures come
from benchmarks/.
"""

from __future__ import annotations

import signal
import time

import jobs
import pytest
import redis
from harness import wait_for
from rq import Queue, Retry
from rq.job import Job

pytestmark = pytest.mark.integration

BOTH = pytest.mark.parametrize("to", ["main", "all"])
HALFWAY = {"TERM_CHILD": "1"}


def at(conn: redis.Redis, tag: str, what: str) -> float | None:
    value = conn.get(f"t:{tag}:{what}")
    return float(value) if value else None


def reached(conn: redis.Redis, tag: str, what: str, timeout: float = 15) -> float:
    return wait_for(lambda: at(conn, tag, what), timeout, f"job {tag} to be {what}")


def stays(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    """True if predicate() holds for the whole window (the only way to see that nothing happens)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not predicate():
            return False
        time.sleep(0.01)
    return True


def status(job: Job) -> str:
    return str(job.get_status(refresh=True).value)


def interruptions(job: Job) -> int:
    job.refresh()
    return int(job.meta.get("rq_graceful", {}).get("interruptions", 0))


def deregistered(conn: redis.Redis, name: str) -> bool:
    return name.encode() not in {k.split(b":", 2)[-1] for k in conn.smembers("rq:workers")}


# -- idle --------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_idle_worker_exits_at_once(start_worker, conn, to: str, sig: int) -> None:
    worker = start_worker()
    t0 = worker.send(sig, to)
    assert worker.wait_exit(10) == 0
    assert time.monotonic() - t0 < 3.0
    assert deregistered(conn, worker.name)


def test_idle_exit_loses_no_job_racing_the_signal(start_worker, queue, conn) -> None:
    # Given jobs arriving while the idle worker is being stopped
    worker = start_worker()
    enqueued = [queue.enqueue(jobs.fast, "race") for _ in range(20)]
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    # Then each job either ran or is still queued: none vanished in a half-read BLPOP
    ran = int(conn.get("t:race:count") or 0)
    still_queued = len(queue.job_ids)
    assert ran + still_queued == len(enqueued)


# -- entire graceful (default) ------------------------------------------------------


@BOTH
def test_plain_job_survives_term_in_the_default_mode(start_worker, queue, conn, to: str) -> None:
    worker = start_worker()
    job = queue.enqueue(jobs.plain, "p", 1.5)
    waiting = queue.enqueue(jobs.fast, "next")
    reached(conn, "p", "started")
    worker.send(signal.SIGTERM, to)
    assert worker.wait_exit(15) == 0
    assert status(job) == "finished"
    assert queue.job_ids == [waiting.id]  # no new job taken after the TERM
    assert status(waiting) == "queued"


def test_control_rq_worker_loses_the_plain_job_to_a_broadcast_term(start_worker, queue, conn) -> None:
    # The problem rq_graceful solves, shown with RQ's own worker under the same broadcast.
    worker = start_worker(worker_class="rq.Worker")
    job = queue.enqueue(jobs.plain, "ctl", 1.5)
    reached(conn, "ctl", "started")
    worker.send(signal.SIGTERM, "all")
    worker.wait_exit(15)
    assert at(conn, "ctl", "finished") is None
    assert status(job) != "finished"


@BOTH
def test_the_job_is_told_at_once(start_worker, queue, conn, to: str) -> None:
    worker = start_worker()
    job = queue.enqueue(jobs.attentive, "n", 1.0)
    reached(conn, "n", "started")
    t0 = worker.send(signal.SIGTERM, to)
    notified = reached(conn, "n", "notified", 5)
    assert notified - t0 < 1.0
    assert worker.wait_exit(15) == 0
    assert status(job) == "finished"


@BOTH
def test_repeated_term_and_cont_during_shutdown_change_nothing(start_worker, queue, conn, to: str) -> None:
    worker = start_worker()
    job = queue.enqueue(jobs.attentive, "rep", 1.5)
    reached(conn, "rep", "started")
    worker.send(signal.SIGTERM, to)
    reached(conn, "rep", "notified", 5)
    worker.send(signal.SIGTERM, to)
    worker.send(signal.SIGCONT, to)
    assert worker.wait_exit(15) == 0
    assert at(conn, "rep", "raised") is None
    assert status(job) == "finished"


def test_quit_is_entire_graceful_even_in_immediate_mode(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RQ_GRACEFUL_TERM_TIMEOUT": "0"})
    job = queue.enqueue(jobs.attentive, "q", 1.5)
    reached(conn, "q", "started")
    worker.send(signal.SIGQUIT)
    assert worker.wait_exit(15) == 0
    assert status(job) == "finished"


def test_second_int_goes_to_the_next_phase(start_worker, queue, conn) -> None:
    worker = start_worker()
    job = queue.enqueue(jobs.attentive, "int2", 60)
    reached(conn, "int2", "started")
    t0 = worker.send(signal.SIGINT)
    reached(conn, "int2", "notified", 5)
    wait_for(lambda: time.monotonic() > t0 + 1.2, 5, "the duplicate window to pass")
    worker.send(signal.SIGINT)
    reached(conn, "int2", "raised", 5)
    assert worker.wait_exit(15) == 0
    assert status(job) == "queued"
    assert interruptions(job) == 1


def test_a_duplicate_int_within_a_second_is_ignored(start_worker, queue, conn) -> None:
    worker = start_worker()
    job = queue.enqueue(jobs.attentive, "dup", 2.0)
    reached(conn, "dup", "started")
    worker.send(signal.SIGINT)
    worker.send(signal.SIGINT)  # Ctrl+C seen by both a pool and its worker
    assert worker.wait_exit(15) == 0
    assert at(conn, "dup", "raised") is None
    assert status(job) == "finished"


# -- halfway graceful ------------------------------------------------------------------


@BOTH
def test_halfway_raises_at_pre_then_requeues_at_the_front(start_worker, queue, conn, to: str) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "1", "RESQUE_TERM_TIMEOUT": "5"})
    job = queue.enqueue(jobs.attentive, "h", 60)
    behind = queue.enqueue(jobs.fast, "behind")
    reached(conn, "h", "started")
    t0 = worker.send(signal.SIGTERM, to)
    assert reached(conn, "h", "notified", 5) - t0 < 0.9
    raised = reached(conn, "h", "raised", 10)
    assert 0.9 < raised - t0 < 3.0
    assert worker.wait_exit(15) == 0
    assert queue.job_ids == [job.id, behind.id]  # back at the FRONT, same id
    assert status(job) == "queued"
    assert interruptions(job) == 1
    assert not queue.started_job_registry.get_job_ids()
    assert job.id not in queue.failed_job_registry


@BOTH
def test_a_job_that_swallows_shutdown_requested_is_killed_on_time(start_worker, queue, conn, to: str) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.5", "RESQUE_TERM_TIMEOUT": "1.5"})
    job = queue.enqueue(jobs.swallower, "sw", 60)
    reached(conn, "sw", "started")
    t0 = worker.send(signal.SIGTERM, to)
    reached(conn, "sw", "raised", 5)
    assert worker.wait_exit(15) == 0
    assert time.monotonic() - t0 < 6.0
    assert at(conn, "sw", "finished") is None
    assert status(job) == "queued"
    assert interruptions(job) == 1
    assert worker.processes() == []  # the horse is gone too


def test_pre_shutdown_lets_a_short_job_finish_and_the_worker_exits_when_it_ends(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "20", "RESQUE_TERM_TIMEOUT": "5"})
    job = queue.enqueue(jobs.attentive, "short", 1.5)
    reached(conn, "short", "started")
    worker.send(signal.SIGTERM, "all")
    assert worker.wait_exit(15) == 0
    exited = time.monotonic()
    finished = at(conn, "short", "finished")
    assert finished is not None and exited - finished < 3.0  # not waiting out the 20 s
    assert at(conn, "short", "raised") is None
    assert status(job) == "finished"


def test_shield_defers_shutdown_requested_to_the_end_of_the_block(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0", "RESQUE_TERM_TIMEOUT": "10"})
    job = queue.enqueue(jobs.shielded, "sh", 1.0)
    reached(conn, "sh", "started")
    worker.send(signal.SIGTERM)
    raised = reached(conn, "sh", "raised", 10)
    shield_end = at(conn, "sh", "shield_end")
    assert shield_end is not None and raised >= shield_end
    assert worker.wait_exit(15) == 0
    assert status(job) == "queued"


@BOTH
def test_immediate_kills_the_horse_at_once_and_requeues(start_worker, queue, conn, to: str) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0", "RESQUE_TERM_TIMEOUT": "0"})
    job = queue.enqueue(jobs.plain, "imm", 60)
    reached(conn, "imm", "started")
    t0 = worker.send(signal.SIGTERM, to)
    assert worker.wait_exit(10) == 0
    assert time.monotonic() - t0 < 3.0
    assert status(job) == "queued"
    assert interruptions(job) == 1


# -- kill deadline ----------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("job_func", [jobs.attentive, jobs.swallower, jobs.plain])
def test_the_platform_sigkill_never_ends_a_job(start_worker, queue, conn, to: str, job_func) -> None:
    # Given a platform that SIGKILLs everything 4 s after its TERM, and the default (entire) mode
    deadline = 4.0
    worker = start_worker(
        env={
            "RQ_GRACEFUL_KILL_DEADLINE": str(deadline),
            "RQ_GRACEFUL_SAFETY_MARGIN": "0.5",
            "RQ_GRACEFUL_TERM_TIMEOUT": "1",
        }
    )
    job = queue.enqueue(job_func, "dl", 60)
    reached(conn, "dl", "started")
    t0 = worker.send(signal.SIGTERM, to)
    # When the platform's SIGKILL comes at the deadline
    try:
        code = worker.wait_exit(deadline)
    finally:
        worker.send(signal.SIGKILL, "all")
    # Then the worker was done before it, and the job is back in its queue
    assert code == 0, worker.log
    assert time.monotonic() - t0 < deadline + 1
    assert status(job) == "queued"
    assert interruptions(job) == 1
    assert deregistered(conn, worker.name)


# -- USR1, USR2, CONT ------------------------------------------------------------------------


@pytest.mark.parametrize("job_func", [jobs.attentive, jobs.swallower])
def test_usr1_stops_the_current_job_and_the_worker_keeps_working(start_worker, queue, conn, job_func) -> None:
    worker = start_worker(env={"RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT": "0.2", "RQ_GRACEFUL_TERM_TIMEOUT": "1"})
    job = queue.enqueue(job_func, "u1", 60)
    queue.enqueue(jobs.fast, "after")
    reached(conn, "u1", "started")
    worker.send(signal.SIGUSR1)
    reached(conn, "u1", "notified", 5)
    wait_for(lambda: conn.get("t:after:count"), 10, "the next job to run")
    assert status(job) == "stopped"
    assert job.id in queue.failed_job_registry  # where RQ keeps stopped jobs
    assert worker.alive()
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0


def test_usr2_pauses_and_cont_resumes(start_worker, queue, conn) -> None:
    worker = start_worker()
    running = queue.enqueue(jobs.plain, "pz", 1.0)
    reached(conn, "pz", "started")
    worker.send(signal.SIGUSR2)
    waiting = queue.enqueue(jobs.fast, "pz2")
    wait_for(lambda: worker.state() == "suspended", 10, "the worker to pause")
    assert status(running) == "finished"  # the current job finished
    assert stays(lambda: status(waiting) == "queued", 1.0)  # and no new one is taken
    worker.send(signal.SIGCONT)
    wait_for(lambda: status(waiting) == "finished", 10, "the job to run after CONT")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0


def test_term_while_paused_exits(start_worker) -> None:
    worker = start_worker()
    worker.send(signal.SIGUSR2)
    wait_for(lambda: worker.state() == "suspended", 10, "the worker to pause")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0


# -- outcomes ------------------------------------------------------------------------------


def test_requeue_off_fails_the_job_with_the_reason(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2", "RQ_GRACEFUL_REQUEUE": "off"})
    job = queue.enqueue(jobs.attentive, "rqoff", 60)
    reached(conn, "rqoff", "started")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    assert status(job) == "failed"
    assert "interrupted by shutdown" in (job.latest_result().exc_string or "")
    assert queue.job_ids == []


def test_too_many_interruptions_fail_the_job_with_the_reason(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RQ_GRACEFUL_MAX_INTERRUPTIONS": "2"})
    job = queue.enqueue(jobs.plain, "max", 60, meta={"rq_graceful": {"interruptions": 2}})
    reached(conn, "max", "started")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    assert status(job) == "failed"
    assert "interrupted by shutdown" in (job.latest_result().exc_string or "")
    assert interruptions(job) == 3


def test_interruptions_do_not_use_up_rq_retries(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"})
    job = queue.enqueue(jobs.attentive, "retry", 60, retry=Retry(max=2))
    reached(conn, "retry", "started")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    job.refresh()
    assert status(job) == "queued" and job.retries_left == 2


def test_rq_job_timeouts_keep_working(start_worker, queue, conn) -> None:
    worker = start_worker(env=HALFWAY)
    job = queue.enqueue(jobs.plain, "to", 30, job_timeout=1)
    wait_for(lambda: status(job) == "failed", 15, "the job to time out")
    assert "JobTimeoutException" in (job.latest_result().exc_string or "")
    assert worker.alive()


def test_the_horse_stops_when_its_worker_dies(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "1"})
    job = queue.enqueue(jobs.attentive, "orphan", 60)
    reached(conn, "orphan", "started")
    killed = worker.send(signal.SIGKILL)  # the OOM killer takes the worker only
    worker.wait_exit(5)
    wait_for(lambda: worker.processes() == [], 15, "the orphaned horse to exit")
    assert time.monotonic() - killed < 15
    assert status(job) == "queued"  # the horse put it back itself
    assert interruptions(job) == 1


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TERM_CHILD": "maybe"}, "TERM_CHILD='maybe'"),
        ({"RQ_GRACEFUL_TERM_TIMEOUT": "-3"}, "RQ_GRACEFUL_TERM_TIMEOUT='-3'"),
        ({"RQ_GRACEFUL_PLATFORM": "mars"}, "RQ_GRACEFUL_PLATFORM='mars'"),
    ],
)
def test_a_bad_setting_refuses_to_start_and_leaves_the_queue_untouched(
    start_worker, queue, conn, env: dict[str, str], named: str
) -> None:
    job = queue.enqueue(jobs.fast, "bad")
    worker = start_worker(env=env, ready=False)
    assert worker.wait_exit(20) != 0
    assert named in worker.log and "expected" in worker.log
    assert queue.job_ids == [job.id]
    assert status(job) == "queued"
    assert conn.get("t:bad:count") is None


def test_a_clamped_setting_is_reported_at_start(start_worker) -> None:
    worker = start_worker(
        env={"DYNO": "worker.1", **HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "25", "RESQUE_TERM_TIMEOUT": "10"}
    )
    assert "clamped" in worker.log
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0


def test_other_queues_and_json_serializer(start_worker, conn) -> None:
    from rq.serializers import JSONSerializer

    high = Queue("high", connection=conn, serializer=JSONSerializer)
    low = Queue("low", connection=conn, serializer=JSONSerializer)
    worker = start_worker(
        queues=["high", "low"],
        env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"},
        args=["--serializer", "rq.serializers.JSONSerializer"],
    )
    job = low.enqueue(jobs.attentive, "json", 60)
    reached(conn, "json", "started")
    worker.send(signal.SIGTERM, "all")
    assert worker.wait_exit(10) == 0
    assert low.job_ids == [job.id] and high.job_ids == []
    fetched = Job.fetch(job.id, connection=conn, serializer=JSONSerializer)
    assert fetched.get_status() == "queued"
    assert fetched.meta["rq_graceful"]["interruptions"] == 1
