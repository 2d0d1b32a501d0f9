"""Events of a shutdown, as blinker signals.

Connect a receiver to log, count or report them::

    from rq_graceful import signals

    @signals.job_requeued.connect
    def count(worker, job, interruptions, **kw):
        metrics.increment("rq.job.requeued", tags={"queue": job.origin})

Every signal is sent with the worker (or, in the work horse, the job) as
sender and its facts as keyword arguments; ``at`` is the time it happened on
the monotonic clock (``time.monotonic()``), ``t`` the seconds since the
shutdown started. Receivers run on a helper thread, in the order the
events were sent: a receiver that raises is logged, one that hangs delays
nothing, and neither breaks a shutdown; the other receivers still run.

The job-settling signals are sent by the process that settled the job: the
work horse when ShutdownRequested escaped the job, the worker after it
SIGKILLed the horse, or the worker that recovered a killed worker's job.
Receivers connected before the worker starts are present in both.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

from blinker import NamedSignal, Namespace

from ._threads import start_quiet_thread

__all__ = [
    "graceful",
    "horse_killed",
    "job_failed",
    "job_notified",
    "job_recovered",
    "job_requeued",
    "shutdown_finished",
    "shutdown_noticed",
    "shutdown_requested_sent",
    "shutdown_started",
]

logger = logging.getLogger("rq.worker.graceful")

#: The namespace holding every rq_graceful signal.
graceful = Namespace()

shutdown_started = graceful.signal(
    "shutdown-started",
    doc="The worker began a shutdown. Keyword arguments: signal (its name), mode (Mode), at, "
    "raise_at, kill_at (seconds after the start, or None), deadline (seconds, or None), busy (bool).",
)
job_notified = graceful.signal(
    "job-notified",
    doc="The worker told the running job (soft notice). Keyword arguments: job_id, reason "
    "('shutdown' or 'stop'), at, t.",
)
shutdown_requested_sent = graceful.signal(
    "shutdown-requested-sent",
    doc="The worker asked the horse to raise ShutdownRequested in the job. Keyword arguments: job_id, at, t.",
)
horse_killed = graceful.signal(
    "horse-killed",
    doc="The worker SIGKILLed the work horse at the end of the term timeout. Keyword arguments: job_id, pid, at, t.",
)
job_requeued = graceful.signal(
    "job-requeued",
    doc="An interrupted job went back to the front of its queue. Keyword arguments: job (the Job), interruptions, at.",
)
job_failed = graceful.signal(
    "job-failed-by-interruption",
    doc="An interrupted job failed instead of being requeued (requeue off, or too many interruptions). "
    "Keyword arguments: job, interruptions, reason, at.",
)
job_recovered = graceful.signal(
    "job-recovered",
    doc="A worker found the job of a worker that was SIGKILLed and settled it. Keyword arguments: job, "
    "dead_worker (its name), outcome ('requeued' or 'failed'), at.",
)
shutdown_finished = graceful.signal(
    "shutdown-finished",
    doc="The worker is done and about to exit. Keyword arguments: duration (seconds since the shutdown "
    "started), outcome ('idle', 'finished', 'requeued', 'failed', 'stopped' or 'unknown'), at.",
)
shutdown_noticed = graceful.signal(
    "shutdown-noticed",
    doc="Sent in the work horse, with the job as sender, when the notice reaches it. Keyword arguments: "
    "reason ('shutdown' or 'stop'), at.",
)


# Receivers run on a dispatcher thread, one event after another in the order sent, so that a receiver
# that raises or hangs never delays a shutdown. The process flushes it, within a bound, before it exits.

_dispatch: queue.SimpleQueue[tuple[NamedSignal, Any, dict[str, Any]] | threading.Event] | None = None
_dispatch_pid = 0


def send(event: NamedSignal, sender: Any, /, **kwargs: Any) -> None:
    """Send ``event`` to its receivers on the dispatcher thread (nothing to do without receivers)."""
    if not event.receivers:
        return
    _dispatcher().put((event, sender, kwargs))


def flush(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the events sent so far to be delivered; True if they were."""
    if _dispatch is None or _dispatch_pid != os.getpid():
        return True
    done = threading.Event()
    _dispatch.put(done)
    return done.wait(timeout)


def _dispatcher() -> queue.SimpleQueue[tuple[NamedSignal, Any, dict[str, Any]] | threading.Event]:
    global _dispatch, _dispatch_pid
    if _dispatch is None or _dispatch_pid != os.getpid():  # new, or inherited through fork without its thread
        _dispatch, _dispatch_pid = queue.SimpleQueue(), os.getpid()
        start_quiet_thread(_deliver, "rq_graceful-events", _dispatch)
    return _dispatch


def _deliver(items: queue.SimpleQueue[tuple[NamedSignal, Any, dict[str, Any]] | threading.Event]) -> None:
    while True:
        item = items.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        event, sender, kwargs = item
        for receiver in list(event.receivers_for(sender)):
            try:
                receiver(sender, **kwargs)
            except Exception:
                logger.exception("rq_graceful: a receiver of %r raised; carrying on", event.name)
