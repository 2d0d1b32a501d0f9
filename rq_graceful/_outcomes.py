"""What becomes of a job that a shutdown interrupted: requeued at the front, or failed."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import redis.exceptions
from rq.job import JobStatus

from . import _compat
from ._job import META_KEY, interruptions_of

if TYPE_CHECKING:
    from rq.job import Job
    from rq.queue import Queue

    from ._worker import Worker

logger = logging.getLogger("rq.worker.graceful")

REASON = "interrupted by shutdown"


def settle_interrupted(worker: Worker, job: Job, queue: Queue, execution: Any | None) -> str:
    """Requeue ``job`` at the front of its queue, or fail it, by the worker's settings.

    Only a job still marked as started by this worker is touched, in one
    transaction, so that the horse and the worker never both settle it and a
    job another worker has since taken is left alone. Returns "requeued",
    "failed" or "untouched".
    """
    settings = worker.graceful_settings
    key = job.key
    with worker.connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                status, worker_name, raw_meta = pipe.hmget(key, ["status", "worker_name", "meta"])
                if _text(status) != JobStatus.STARTED.value or _text(worker_name) != worker.name:
                    pipe.unwatch()
                    return "untouched"
                meta: dict[str, Any] = job.serializer.loads(_bytes(raw_meta)) if raw_meta else {}
                count = interruptions_of(meta) + 1
                record = meta.get(META_KEY)
                record = dict(record) if isinstance(record, dict) else {}
                record["interruptions"] = count
                record["last_interrupted_at"] = datetime.now(timezone.utc).isoformat()
                meta[META_KEY] = record
                job.meta = meta
                limit = settings.max_interruptions
                if not settings.requeue or (limit is not None and count > limit):
                    pipe.unwatch()
                    break
                pipe.multi()
                pipe.hset(key, "meta", job.serializer.dumps(meta))
                _compat.cleanup_execution(worker, job, pipe, execution)
                job.set_status(JobStatus.QUEUED, pipeline=pipe)
                if job.ttl is not None and job.ttl > 0:
                    pipe.expire(key, job.ttl)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()
                logger.info(
                    "rq_graceful: job %s requeued at the front of %s (interruption %d)",
                    job.id,
                    queue.name,
                    count,
                )
                return "requeued"
            except redis.exceptions.WatchError:
                continue

    if not settings.requeue:
        why = f"{REASON} (RQ_GRACEFUL_REQUEUE is off)"
    else:
        why = f"{REASON} ({count} interruptions, RQ_GRACEFUL_MAX_INTERRUPTIONS={settings.max_interruptions})"
    job.save_meta()
    # An interruption is not a failure of the job's code: do not spend its RQ Retry.
    job.retries_left = None
    job.ended_at = job.ended_at or _now()
    _compat.handle_job_failure(worker, job, queue, exc_string=why, execution=execution)
    logger.warning("rq_graceful: job %s failed: %s", job.id, why)
    return "failed"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _now() -> datetime:
    return datetime.now(timezone.utc)
