"""The public surface, pinned; and what it promises outside a work horse."""

from __future__ import annotations

import pytest
import redis
from rq import Queue
from rq.job import Job

import rq_graceful
from rq_graceful import (
    ConfigurationError,
    GracefulJob,
    GracefulJobMixin,
    ShutdownRequested,
    Worker,
    shield,
    shutdown_requested,
)


def test_public_names_are_pinned() -> None:
    assert sorted(rq_graceful.__all__) == [
        "ConfigurationError",
        "GracefulDeathPenalty",
        "GracefulJob",
        "GracefulJobMixin",
        "GracefulTask",
        "Mode",
        "Platform",
        "Settings",
        "ShutdownRequested",
        "Worker",
        "on_shutdown",
        "send_graceful_stop",
        "shield",
        "shutdown_requested",
        "signals",
    ]
    for name in rq_graceful.__all__:
        assert getattr(rq_graceful, name).__doc__, f"{name} has no docstring"


def test_shutdown_requested_is_not_an_exception() -> None:
    assert issubclass(ShutdownRequested, BaseException)
    assert not issubclass(ShutdownRequested, Exception)
    with pytest.raises(ShutdownRequested):
        try:
            raise ShutdownRequested
        except Exception:  # what a job's catch-all would do
            pytest.fail("except Exception: swallowed ShutdownRequested")


def test_outside_a_job_nothing_is_requested_and_shield_is_harmless() -> None:
    assert shutdown_requested() is False
    with shield(), shield():
        assert shutdown_requested() is False


def test_graceful_job_is_an_rq_job() -> None:
    assert issubclass(GracefulJob, Job) and issubclass(GracefulJob, GracefulJobMixin)


@pytest.mark.integration
def test_keyword_arguments_win_over_the_environment(conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM_CHILD", "0")
    monkeypatch.setenv("RESQUE_TERM_TIMEOUT", "9")
    worker = Worker([Queue(connection=conn)], connection=conn, term_child=True, term_timeout=2)
    assert worker.graceful_settings.term_child is True
    assert worker.graceful_settings.term_timeout == 2.0


@pytest.mark.integration
def test_bad_environment_stops_the_constructor(conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RQ_GRACEFUL_MAX_INTERRUPTIONS", "lots")
    with pytest.raises(ConfigurationError, match="RQ_GRACEFUL_MAX_INTERRUPTIONS='lots'"):
        Worker([Queue(connection=conn)], connection=conn)


@pytest.mark.integration
def test_job_class_default_and_rq_default_become_graceful(conn: redis.Redis) -> None:
    q = Queue(connection=conn)
    assert Worker([q], connection=conn).job_class is GracefulJob
    assert Worker([q], connection=conn, job_class=Job).job_class is GracefulJob  # what `rq worker` passes
    assert Worker([q], connection=conn, job_class="rq.job.Job").job_class is GracefulJob


@pytest.mark.integration
def test_a_job_class_without_the_mixin_runs_in_reduced_mode(conn: redis.Redis) -> None:
    class PlainJob(Job):
        pass

    worker = Worker([Queue(connection=conn)], connection=conn, job_class=PlainJob)
    assert worker.job_class is PlainJob
    assert worker._reduced_job_class


@pytest.mark.integration
def test_hydrated_workers_do_not_read_the_environment(conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker([Queue(connection=conn)], connection=conn, name="hydrate-me")
    worker.register_birth()
    monkeypatch.setenv("TERM_CHILD", "maybe")  # rq info --worker-class must still list it
    assert [w.name for w in Worker.all(connection=conn)] == ["hydrate-me"]
    worker.register_death()
