"""The job's side: hooks, callbacks, checkpoints, requeue rules, recovery, stop command, events."""

from __future__ import annotations

import os
import signal
import time

import jobs
import pytest
import redis
from harness import wait_for
from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from test_worker import HALFWAY, at, interruptions, reached, status

from rq_graceful import GracefulJob, Worker, send_graceful_stop, signals
from rq_graceful import _lease as lease

pytestmark = pytest.mark.integration

PG_DSN = os.environ.get("RQ_GRACEFUL_TEST_PG", "host=127.0.0.1 dbname=test user=postgres connect_timeout=3")


def postgres_or_skip() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_DSN).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise  # CI machines run PostgreSQL: its absence is a failure there, not a skip
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN!r}: {exc}")


# -- telling the job ----------------------------------------------------------------------


def test_a_callback_cancels_a_query_blocked_in_postgres(start_worker, queue, conn) -> None:
    postgres_or_skip()
    # Given a halfway worker that would wait 30 s before raising in the job
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "30", "RESQUE_TERM_TIMEOUT": "10"})
    job = queue.enqueue(jobs.pg_sleeper, "pg", PG_DSN)
    reached(conn, "pg", "started")
    wait_for(lambda: conn.get("t:pg:started"), 5, "the query to start")
    t0 = worker.send(signal.SIGTERM, "all")
    # When the notice comes, the callback cancels pg_sleep(60) from its helper thread
    cancelled = reached(conn, "pg", "cancelled", 10)
    assert worker.wait_exit(10) == 0
    # Then the job ended at once (well under a second here) and went back to its queue
    assert cancelled - t0 < 1.0
    assert status(job) == "queued" and interruptions(job) == 1


def test_raising_and_hanging_callbacks_do_not_delay_the_phases(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.5", "RESQUE_TERM_TIMEOUT": "3"})
    job = queue.enqueue(jobs.bad_callbacks, "cb", 60)
    reached(conn, "cb", "started")
    t0 = worker.send(signal.SIGTERM)
    reached(conn, "cb", "callback", 5)
    raised = reached(conn, "cb", "raised", 5)
    assert raised - t0 < 2.0
    assert worker.wait_exit(10) == 0
    assert status(job) == "queued"
    assert "callback boom" in worker.log


def test_job_class_hook_runs_at_the_notice(start_worker, conn) -> None:
    queue = Queue("default", connection=conn, job_class=jobs.HookedJob)
    worker = start_worker(args=["--job-class", "jobs.HookedJob"])
    job = queue.enqueue(jobs.attentive, "hk", 1.0)
    reached(conn, "hk", "started")
    t0 = worker.send(signal.SIGTERM)
    assert reached(conn, "hk", "hook", 5) - t0 < 1.0
    assert worker.wait_exit(10) == 0
    assert status(job) == "finished"


def test_class_based_job_hook_runs_at_the_notice(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "3"})
    job = queue.enqueue(jobs.Importer("task"), 60)
    reached(conn, "task", "started")
    worker.send(signal.SIGTERM)
    reached(conn, "task", "task_hook", 5)
    assert worker.wait_exit(10) == 0
    assert status(job) == "queued"


def test_a_job_class_without_the_mixin_still_requeues(start_worker, conn) -> None:
    queue = Queue("default", connection=conn)
    worker = start_worker(args=["--job-class", "rq.job.Job"], env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"})
    job = queue.enqueue(jobs.attentive, "nomix", 60)
    reached(conn, "nomix", "started")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    assert status(job) == "queued" and interruptions(job) == 1


# -- checkpoints ---------------------------------------------------------------------------


def _interrupt_once(start_worker, conn, tag: str, env: dict[str, str], args: list[str], items_before: int) -> None:
    worker = start_worker(env=env, args=args)
    wait_for(lambda: conn.llen(f"t:{tag}:done") >= items_before, 30, f"{items_before} items done")
    worker.send(signal.SIGTERM, "all")
    assert worker.wait_exit(15) == 0


@pytest.mark.parametrize("serializer", [None, JSONSerializer], ids=["pickle", "json"])
def test_checkpointing_job_interrupted_twice_runs_every_item_exactly_once(start_worker, conn, serializer) -> None:
    queue = Queue("default", connection=conn, serializer=serializer)
    args = ["--serializer", "rq.serializers.JSONSerializer"] if serializer else []
    env = {**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "5", "RESQUE_TERM_TIMEOUT": "5"}
    items = 30
    job = queue.enqueue(jobs.checkpointing, "ck", items, 0.05)
    _interrupt_once(start_worker, conn, "ck", env, args, 5)  # worker 1
    _interrupt_once(start_worker, conn, "ck", env, args, 12)  # worker 2
    start_worker(env=env, args=args)  # worker 3 finishes it
    fetched = GracefulJob.fetch(job.id, connection=conn, serializer=serializer)
    wait_for(lambda: fetched.get_status(refresh=True) == "finished", 30, "the job to finish")
    done = [int(i) for i in conn.lrange("t:ck:done", 0, -1)]
    assert sorted(done) == list(range(items))  # every item ...
    assert len(done) == len(set(done))  # ... exactly once: 0 redone
    fetched.refresh()
    assert fetched.interruptions == 2
    assert fetched.checkpoint is not None  # kept after the finish, for dashboards (documented)
    assert at(conn, "ck", "run0") and at(conn, "ck", "run1") and at(conn, "ck", "run2")


# -- requeue rules ---------------------------------------------------------------------------


def test_requeued_job_is_in_exactly_one_place_with_its_ttl(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"})
    job = queue.enqueue(jobs.attentive, "one", 2, ttl=500, result_ttl=77)
    reached(conn, "one", "started")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    assert queue.job_ids.count(job.id) == 1
    for registry in (
        queue.started_job_registry,
        queue.failed_job_registry,
        queue.finished_job_registry,
        queue.deferred_job_registry,
        queue.scheduled_job_registry,
        queue.canceled_job_registry,
    ):
        assert job.id not in registry, registry
    assert 0 < conn.ttl(job.key) <= 500
    # and once run to its end, RQ's result TTL applies as usual
    start_worker()
    wait_for(lambda: status(job) == "finished", 20, "the job to finish")
    assert 0 < conn.ttl(job.key) <= 77


def test_dependents_keep_waiting_for_an_interrupted_job(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "2"})
    parent = queue.enqueue(jobs.attentive, "parent", 1.5)
    child = queue.enqueue(jobs.dependent, "child", depends_on=parent)
    reached(conn, "parent", "started")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    assert status(parent) == "queued" and status(child) == "deferred"
    start_worker()
    wait_for(lambda: status(child) == "finished", 20, "the dependent to run after its parent")
    assert at(conn, "child", "ran") > at(conn, "parent", "finished")


# -- recovery of a killed worker's job -----------------------------------------------------------


@pytest.mark.parametrize("during", ["job", "shutdown"])
def test_job_of_a_sigkilled_worker_is_recovered_by_another(start_worker, queue, conn, during: str) -> None:
    # Given a job running on a worker that the platform SIGKILLs with its whole process group
    first = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "30"})
    job = queue.enqueue(jobs.attentive, "rec", 3)
    reached(conn, "rec", "started")
    if during == "shutdown":
        first.send(signal.SIGTERM, "all")
        reached(conn, "rec", "notified", 5)
    killed = first.send(signal.SIGKILL, "all")
    first.wait_exit(5)
    # When another rq_graceful worker runs
    start_worker()
    # Then within 60 s the job is back in its queue, and that worker finishes it
    wait_for(lambda: interruptions(job) == 1, 60, "the job to be recovered")
    recovered = time.monotonic()
    wait_for(lambda: status(job) == "finished", 30, "the recovered job to finish")
    assert recovered - killed < 60
    assert job.id not in queue.failed_job_registry


def test_an_orphaned_horse_settles_its_job_before_anyone_may_recover_it(start_worker, queue, conn) -> None:
    # Given a worker killed alone (the OOM killer), whose horse runs a job that ignores ShutdownRequested
    first = start_worker(env={**HALFWAY, "RESQUE_TERM_TIMEOUT": "30"})
    job = queue.enqueue(jobs.swallower, "live", 60)
    reached(conn, "live", "started")
    killed = first.send(signal.SIGKILL)
    first.wait_exit(5)
    assert first.processes(), "the horse should outlive its worker for a while"
    # Then while the horse lives, its job's lease holds, and recovery leaves the job alone
    other = Worker([Queue(connection=conn)], connection=conn)
    assert conn.ttl(lease.key(job.id)) > 0
    assert job.id not in [job_id for job_id, _ in other.recover_jobs()]
    # and the horse stops within the fence (not its 30 s term timeout), settling the job itself
    wait_for(lambda: first.processes() == [], lease.FENCE + 3, "the orphaned horse to stop")
    assert time.monotonic() - killed < lease.TTL  # before the lease could expire
    assert status(job) == "queued" and interruptions(job) == 1


# -- graceful stop from anywhere ---------------------------------------------------------------


def test_send_graceful_stop_runs_the_halfway_sequence_and_leaves_the_job_stopped(start_worker, queue, conn) -> None:
    worker = start_worker(env={"RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT": "0.3", "RQ_GRACEFUL_TERM_TIMEOUT": "2"})
    job = queue.enqueue(jobs.attentive, "stopme", 60)
    queue.enqueue(jobs.fast, "afterstop")
    reached(conn, "stopme", "started")
    send_graceful_stop(conn, job.id)
    reached(conn, "stopme", "notified", 5)
    reached(conn, "stopme", "raised", 5)
    wait_for(lambda: conn.get("t:afterstop:count"), 10, "the worker to go on working")
    assert status(job) == JobStatus.STOPPED.value
    assert worker.alive()


def test_send_graceful_stop_of_a_job_not_running_is_an_error(queue) -> None:
    from rq.exceptions import InvalidJobOperation

    job = queue.enqueue(jobs.fast, "notrunning")
    with pytest.raises(InvalidJobOperation, match="not running"):
        send_graceful_stop(queue.connection, job.id)


# -- events ---------------------------------------------------------------------------------------


def test_events_arrive_in_order_with_their_times(start_worker, queue, conn, redis_url) -> None:
    worker = start_worker(
        worker_class="event_recorder.RecordingWorker",
        env={
            **HALFWAY,
            "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.3",
            "RESQUE_TERM_TIMEOUT": "1",
            "RECORDER_URL": redis_url,
        },
    )
    job = queue.enqueue(jobs.swallower, "ev", 60)
    reached(conn, "ev", "started")
    t0 = worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0
    # each process delivers its events in order; across the worker and its horse, order by time
    events = sorted((e.decode().split("|") for e in conn.lrange("events", 0, -1)), key=lambda e: float(e[1]))
    names = [name for name, _, _ in events]
    assert names == [
        "shutdown-started",
        "job-notified",
        "shutdown-noticed",
        "shutdown-requested-sent",
        "horse-killed",
        "job-requeued",
        "shutdown-finished",
    ]
    times = [float(t) for _, t, _ in events]
    assert t0 <= times[0]
    assert times[3] - times[0] == pytest.approx(0.3, abs=0.25)  # ShutdownRequested at pre
    assert times[4] - times[0] == pytest.approx(1.3, abs=0.3)  # SIGKILL at pre + term
    horse_pid = {pid for name, _, pid in events if name == "shutdown-noticed"}
    assert horse_pid and horse_pid != {str(worker.pid)}  # sent in the work horse
    assert "receiver boom" in worker.log  # the raising receiver was logged ...
    assert status(job) == "queued"  # ... and broke nothing


def test_send_logs_a_raising_receiver_and_still_calls_the_others(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def boom(sender: object, **kw: object) -> None:
        raise RuntimeError("boom")

    def good(sender: object, **kw: object) -> None:
        calls.append(kw)

    with signals.job_requeued.connected_to(boom), signals.job_requeued.connected_to(good):
        signals.send(signals.job_requeued, "worker", interruptions=1)
        assert signals.flush(5)
    assert calls == [{"interruptions": 1}]
    assert "boom" in caplog.text


def test_a_hanging_receiver_delays_nothing() -> None:
    import threading

    release = threading.Event()
    calls = []

    def hang(sender: object, **kw: object) -> None:
        release.wait(30)

    def after(sender: object, **kw: object) -> None:
        calls.append(kw)

    with signals.job_notified.connected_to(hang), signals.job_notified.connected_to(after):
        started = time.monotonic()
        signals.send(signals.job_notified, "worker", job_id="x")
        assert time.monotonic() - started < 0.1  # the sender goes on at once
        assert not signals.flush(0.2)  # and a bounded flush gives up
        release.set()
        assert signals.flush(5)
    assert calls == [{"job_id": "x"}]


def test_every_signal_has_a_doc() -> None:
    for name in signals.__all__:
        if name != "graceful":
            assert getattr(signals, name).__doc__


def test_redis_connection_is_not_needed_for_events(conn: redis.Redis) -> None:
    assert signals.graceful["job-requeued"] is signals.job_requeued
