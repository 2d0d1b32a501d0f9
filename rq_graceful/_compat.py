"""The few places where RQ 2.x and 3.x differ in what rq_graceful calls."""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING, Any

import redis.exceptions
import rq

if TYPE_CHECKING:
    from redis.client import Pipeline
    from rq.job import Job
    from rq.queue import Queue
    from rq.worker import Worker

RQ_VERSION = tuple(int(p) for p in rq.__version__.split(".")[:2] if p.isdigit())

#: RQ 3 passes the Execution around; RQ 2 keeps it on the worker.
_EXECUTION_ARG = "execution" in inspect.signature(rq.worker.Worker.handle_job_failure).parameters


def current_execution(worker: Worker, execution: Any | None) -> Any | None:
    if execution is not None:
        return execution
    return getattr(worker, "execution", None)


# The worker is typed Any below: its signatures are those of whichever RQ is installed.


def cleanup_execution(worker: Any, job: Job, pipeline: Pipeline, execution: Any | None) -> None:
    if _EXECUTION_ARG:
        worker.cleanup_execution(job, pipeline=pipeline, execution=execution)
    else:
        worker.cleanup_execution(job, pipeline=pipeline)


def handle_job_failure(worker: Any, job: Job, queue: Queue, exc_string: str, execution: Any | None) -> None:
    if _EXECUTION_ARG:
        worker.handle_job_failure(job, queue=queue, exc_string=exc_string, execution=execution)
    else:
        worker.handle_job_failure(job, queue=queue, exc_string=exc_string)


def maintain_heartbeats(worker: Any, job: Job, execution: Any | None) -> None:
    if _EXECUTION_ARG:
        worker.maintain_heartbeats(job, execution)
    else:
        worker.maintain_heartbeats(job)


def forget_execution(worker: Worker, execution: Any | None) -> None:
    """What RQ's monitor_work_horse does in the parent once the horse is gone."""
    executions = getattr(worker, "executions", None)
    if isinstance(executions, dict) and execution is not None:
        executions.pop(execution.id, None)
    if not _EXECUTION_ARG and hasattr(worker, "set_current_job_working_time"):
        # RQ 2 writes this to Redis: a statistic, not worth failing a shutdown over
        with contextlib.suppress(redis.exceptions.RedisError):
            worker.set_current_job_working_time(0)
