"""GracefulJob: the job's view of interruptions and checkpoints, kept in its meta."""

from __future__ import annotations

from typing import Any

from rq.job import Job

from . import _horse

__all__ = ["META_KEY", "GracefulJob", "GracefulJobMixin", "GracefulTask", "interruptions_of"]

#: The key of rq_graceful's record in ``job.meta``; dashboards show it as is.
META_KEY = "rq_graceful"


def interruptions_of(meta: dict[str, Any]) -> int:
    record = meta.get(META_KEY)
    if isinstance(record, dict):
        value = record.get("interruptions", 0)
        if isinstance(value, int):
            return value
    return 0


class GracefulJobMixin:
    """Gives a Job subclass the shutdown flag, the hook, checkpoints and the interruption count."""

    meta: dict[str, Any]

    def _graceful_record(self) -> dict[str, Any]:
        record = self.meta.get(META_KEY)
        if not isinstance(record, dict):
            record = {}
            self.meta[META_KEY] = record
        return record

    @property
    def interruptions(self) -> int:
        """How many times a shutdown interrupted this job so far."""
        return interruptions_of(self.meta)

    @property
    def checkpoint(self) -> Any:
        """The value the job last saved with save_checkpoint(), or None."""
        record = self.meta.get(META_KEY)
        return record.get("checkpoint") if isinstance(record, dict) else None

    def save_checkpoint(self, value: Any) -> None:
        """Store ``value`` in the job's meta in Redis now; the next run reads it as ``checkpoint``."""
        self._graceful_record()["checkpoint"] = value
        self.save_meta()  # type: ignore[attr-defined]

    @property
    def shutdown_requested(self) -> bool:
        """True once the worker running this job was asked to shut down or to stop it."""
        return _horse.shutdown_requested()

    def on_shutdown_requested(self) -> None:
        """Called on a helper thread of the work horse at the soft notice; does nothing by default."""


class GracefulJob(GracefulJobMixin, Job):
    """The job class rq_graceful.Worker uses unless told otherwise."""


class GracefulTask:
    """For class-based jobs (an enqueued callable instance, or an instance method).

    Override ``on_shutdown_requested`` to be called on a helper thread of the
    work horse at the soft notice, as with GracefulJob.
    """

    @property
    def shutdown_requested(self) -> bool:
        """True once the worker running this job was asked to shut down or to stop it."""
        return _horse.shutdown_requested()

    def on_shutdown_requested(self) -> None:
        """Called on a helper thread of the work horse at the soft notice; does nothing by default."""
