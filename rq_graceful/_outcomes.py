"""What becomes of a job that a shutdown interrupted: requeued at the front, or failed."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import redis.exceptions
from rq.job import JobStatus
from rq.utils import now

from . import _compat, signals
from ._job import META_KEY, interruptions_of

if TYPE_CHECKING:
    from redis.client import Pipeline
    from rq.job import Job
    from rq.queue import Queue

    from ._worker import Worker

logger = logging.getLogger("rq.worker.graceful")

REASON = "interrupted by shutdown"
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def settle_interrupted(
    worker: Worker,
    job: Job,
    queue: Queue,
    execution: Any | None,
    *,
    owner: str | None = None,
    budget: float = 0.0,
) -> str:
    """Requeue ``job`` at the front of its queue, or fail it, by the worker's settings.

    Only a job still marked as started by ``owner`` (default: this worker) is
    touched, in one transaction, so that the horse and the worker never both
    settle it and a job another worker has taken since is left alone. While
    Redis is unreachable it retries for ``budget`` seconds, then raises: the
    job then stays started, under a lease that will expire, for recovery.
    Returns "requeued", "failed" or "untouched".
    """
    give_up = time.monotonic() + budget
    while True:
        try:
            return _settle(worker, job, queue, execution, owner or worker.name)
        except _UNREACHABLE:
            left = give_up - time.monotonic()
            if left <= 0:
                raise
            logger.warning("rq_graceful: Redis unreachable while settling job %s; retrying", job.id)
            time.sleep(min(0.2, left))


def _settle(worker: Worker, job: Job, queue: Queue, execution: Any | None, owner: str) -> str:
    settings = worker.graceful_settings
    key = job.key
    with worker.connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                status, worker_name, raw_meta = pipe.hmget(key, ["status", "worker_name", "meta"])
                if _text(status) != JobStatus.STARTED.value or _text(worker_name) != owner:
                    pipe.unwatch()
                    return "untouched"
                meta: dict[str, Any] = job.serializer.loads(_bytes(raw_meta)) if raw_meta else {}
                count = interruptions_of(meta) + 1
                record = meta.get(META_KEY)
                record = dict(record) if isinstance(record, dict) else {}
                record["interruptions"] = count
                record["last_interrupted_at"] = now().isoformat()
                meta[META_KEY] = record
                job.meta = meta
                limit = settings.max_interruptions
                if not settings.requeue or (limit is not None and count > limit):
                    pipe.unwatch()
                    break
                executions = [] if owner == worker.name and execution is not None else job.get_executions()
                pipe.multi()
                pipe.hset(key, "meta", job.serializer.dumps(meta))
                _cleanup(worker, job, pipe, execution, executions)
                job.set_status(JobStatus.QUEUED, pipeline=pipe)
                if job.ttl is not None and job.ttl > 0:
                    pipe.expire(key, job.ttl)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()
            except redis.exceptions.WatchError:
                continue
            logger.info("rq_graceful: job %s requeued at the front of %s (interruption %d)", job.id, queue.name, count)
            signals.send(signals.job_requeued, worker, job=job, interruptions=count, at=time.monotonic())
            return "requeued"

    if not settings.requeue:
        why = f"{REASON} (RQ_GRACEFUL_REQUEUE is off)"
    else:
        why = f"{REASON} ({count} interruptions, RQ_GRACEFUL_MAX_INTERRUPTIONS={settings.max_interruptions})"
    job.save_meta()
    # An interruption is not a failure of the job's code: do not spend its RQ Retry.
    job.retries_left = None
    job.ended_at = job.ended_at or now()
    if owner == worker.name and execution is not None:
        _compat.handle_job_failure(worker, job, queue, why, execution)
    else:  # a dead worker's job: fail it in that worker's name, its executions removed here
        with worker.connection.pipeline() as pipe:
            _cleanup(worker, job, pipe, None, job.get_executions())
            pipe.execute()
        _compat.handle_job_failure(worker.stand_in(owner), job, queue, why, None)
    logger.warning("rq_graceful: job %s failed: %s", job.id, why)
    signals.send(signals.job_failed, worker, job=job, interruptions=count, reason=why, at=time.monotonic())
    return "failed"


def _cleanup(worker: Worker, job: Job, pipe: Pipeline, execution: Any | None, executions: list[Any]) -> None:
    """Take the job out of the started registry: through the worker for its own
    execution, directly for a dead worker's."""
    if executions:
        for ex in executions:
            ex.delete(job=job, pipeline=pipe)
    elif execution is not None:
        _compat.cleanup_execution(worker, job, pipe, execution)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
