"""Faults: Redis going away mid-shutdown, signal storms, hostile jobs, fuzzed settings. Outcomes, not timings."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import jobs
import pytest
import redis
from harness import RedisServer, WorkerProcess, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from rq import Queue
from test_worker import HALFWAY, at, interruptions, reached, status

from rq_graceful import ConfigurationError, Settings
from rq_graceful._settings import SETTINGS, TEARDOWN_RESERVE

# -- Redis stopped during a shutdown ------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A private Redis of this test alone, persisted on every write, that the test may stop."""
    server = RedisServer(tmp_path, persistent=True)
    yield server
    server.stop()


def _worker(server: RedisServer, tmp_path: Path, env: dict[str, str]) -> WorkerProcess:
    return WorkerProcess(server.url, env=env, log_dir=tmp_path).wait_ready()


@pytest.mark.integration
@pytest.mark.parametrize("back_after", [2.0, None], ids=["back-in-time", "back-after-the-worker-left"])
def test_redis_stopped_during_a_shutdown_loses_nothing(
    own_redis: RedisServer, tmp_path: Path, back_after: float | None
) -> None:
    conn = redis.Redis.from_url(own_redis.url)
    queue = Queue("default", connection=conn)
    env = {**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.5", "RESQUE_TERM_TIMEOUT": "6"}
    worker = _worker(own_redis, tmp_path, env)
    job = queue.enqueue(jobs.quiet_after_notice, "down", 60)
    reached(conn, "down", "started")
    worker.send(signal.SIGTERM, "all")
    reached(conn, "down", "notified", 5)
    own_redis.stop()  # Redis goes away before ShutdownRequested comes (at 0.5 s)
    try:
        if back_after is not None:
            time.sleep(back_after)  # the outage itself, during the shutdown
            own_redis.start()
            assert worker.wait_exit(20) == 0
        else:
            worker.wait_exit(30)  # the worker gives up within its budget and leaves
            own_redis.start()
            conn = redis.Redis.from_url(own_redis.url)
            queue = Queue("default", connection=conn)
            second = _worker(own_redis, tmp_path, {})  # the next worker recovers the job, then runs it
            try:
                wait_for(lambda: interruptions(job.__class__.fetch(job.id, connection=conn)) >= 1, 40, "recovery")
            finally:
                second.kill_everything()
        fetched = job.__class__.fetch(job.id, connection=conn)
        assert fetched.get_status() in ("queued", "started", "finished")
        # one interruption by the shutdown; the test's own SIGKILL of the second worker may add one
        assert interruptions(fetched) >= 1
        assert job.id not in Queue("default", connection=conn).failed_job_registry
    finally:
        worker.kill_everything()
        conn.close()


# -- a storm of signals ----------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("to", ["main", "all"])
def test_a_storm_of_mixed_signals_gives_one_clean_shutdown(start_worker, queue, conn, to: str) -> None:
    worker = start_worker(env={"RQ_GRACEFUL_TERM_TIMEOUT": "2"})
    job = queue.enqueue(jobs.attentive, "storm", 3)
    queue.enqueue(jobs.fast, "storm-next")
    reached(conn, "storm", "started")
    rng = random.Random(1)
    storm = [signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGCONT, signal.SIGQUIT]
    end = time.monotonic() + 1.0
    for _ in range(100):
        if not worker.alive():
            break
        worker.send(rng.choice(storm), to)
        time.sleep(max(0.0, (end - time.monotonic()) / 100))
    assert worker.wait_exit(15) == 0
    log = worker.log
    assert log.count("shutdown finished") == 1
    assert "Traceback" not in log
    assert status(job) in ("finished", "queued")  # told, maybe escalated by a late INT: either is clean
    assert queue.job_ids.count(job.id) == (1 if status(job) == "queued" else 0)
    assert conn.get("t:storm-next:count") is None  # no new job after the first signal


# -- hostile jobs ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_job_that_ignores_sigterm_and_sigusr1_itself_is_still_stopped(start_worker, queue, conn) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.3", "RESQUE_TERM_TIMEOUT": "1"})
    job = queue.enqueue(jobs.ignores_signals, "ign", 60)
    reached(conn, "ign", "started")
    t0 = worker.send(signal.SIGTERM, "all")
    assert worker.wait_exit(10) == 0
    assert time.monotonic() - t0 < 5
    assert status(job) == "queued" and at(conn, "ign", "finished") is None
    assert worker.processes() == []


@pytest.mark.integration
@pytest.mark.parametrize("swallow", [False, True], ids=["returns", "swallows"])
def test_a_child_the_job_forked_does_not_outlive_it(start_worker, queue, conn, swallow: bool) -> None:
    worker = start_worker(env={**HALFWAY, "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.3", "RESQUE_TERM_TIMEOUT": "1"})
    job = queue.enqueue(jobs.leaves_a_child, "kid", 60 if swallow else 0.5, swallow)
    child = int(wait_for(lambda: conn.get("t:kid:child"), 15, "the child to be forked"))
    if swallow:
        worker.send(signal.SIGTERM)
        assert worker.wait_exit(10) == 0
        assert status(job) == "queued"
    else:
        wait_for(lambda: status(job) == "finished", 15, "the job to finish")
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or _zombie(child), 5, "the child to be gone")
    if not swallow:
        worker.send(signal.SIGTERM)
        assert worker.wait_exit(10) == 0
    assert worker.processes() == []


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


# -- settings, fuzzed ---------------------------------------------------------------------------------

NAMES = [s.variable for s in SETTINGS] + [s.alias for s in SETTINGS if s.alias] + ["DYNO", "KUBERNETES_SERVICE_HOST"]
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["1", "0", "true", "off", "none", "heroku", "-1", "nan", "inf", "1e308", "30", "0.5", " 4 "]),
    st.floats(allow_nan=True).map(repr),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6))
def test_any_environment_gives_settings_or_a_configuration_error(env: dict[str, str]) -> None:
    try:
        s = Settings.from_env(env, dockerenv="/nonexistent")
    except ConfigurationError as exc:
        assert "expected" in str(exc) and "=" in str(exc)
        return
    b = s.budget()
    if b.deadline is not None:
        # a deadline shorter than margin + reserve leaves nothing to wait for: SIGKILL at once
        assert b.kill_at is not None and b.kill_at <= max(0.0, b.deadline - s.safety_margin - TEARDOWN_RESERVE) + 1e-6
    if b.raise_at is not None and b.kill_at is not None:
        assert 0 <= b.raise_at <= b.kill_at
