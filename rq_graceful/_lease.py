"""Leases: how rq_graceful workers tell a running job from a killed worker's job.

Before it forks a horse, the worker takes a lease on the job: a key with a
short TTL, and the job's id in an index set. The worker renews it every
``RENEW`` seconds while the horse lives. If it cannot renew it for ``FENCE``
seconds (Redis unreachable), it kills the horse before the lease can expire;
a horse whose worker died stops within ``FENCE`` seconds. So a job whose
lease has expired has no horse running anywhere.
Workers look for expired leases every ``SCAN_INTERVAL`` seconds and at start,
and settle those jobs as interrupted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

TTL = 10  # seconds a lease lives without renewal
RENEW = 2.0  # the worker renews it this often while the horse runs
FENCE = TTL - 2 * RENEW  # a horse unrenewed for this long is killed (or, orphaned, stops itself)
SCAN_INTERVAL = 10.0  # workers look for expired leases this often
INDEX = "rq_graceful:leases"


def key(job_id: str) -> str:
    return f"rq_graceful:lease:{job_id}"


def take(connection: redis.Redis, job_id: str, owner: str) -> None:
    # No MULTI/EXEC needed: if this raises, half done or not, no horse is forked, and a job marked started
    # with no horse is exactly what recovery is for.
    with connection.pipeline(transaction=False) as pipe:
        pipe.set(key(job_id), owner, ex=TTL)
        pipe.sadd(INDEX, job_id)
        pipe.execute()


def renew(connection: redis.Redis, job_id: str, owner: str) -> None:
    connection.set(key(job_id), owner, ex=TTL)


def release(connection: redis.Redis, job_id: str) -> None:
    with connection.pipeline(transaction=False) as pipe:
        pipe.delete(key(job_id))
        pipe.srem(INDEX, job_id)
        pipe.execute()


def forget(connection: redis.Redis, job_id: str) -> None:
    connection.srem(INDEX, job_id)


def expired(connection: redis.Redis) -> list[str]:
    """Ids of jobs in the index whose lease has expired."""
    members = [m.decode() if isinstance(m, bytes) else str(m) for m in connection.smembers(INDEX)]
    if not members:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for job_id in members:
            pipe.exists(key(job_id))
        alive = pipe.execute()
    return [job_id for job_id, exists in zip(members, alive, strict=True) if not exists]
