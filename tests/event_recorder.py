"""A worker class that records every rq_graceful event in Redis, for the events tests.

Each event is RPUSHed to ``events`` as "name|monotonic time|pid". A receiver
that raises is connected too: it must be logged and change nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from rq_graceful import Worker, signals

_conn = redis.Redis.from_url(os.environ["RECORDER_URL"])


def _recorder(name: str) -> Any:
    def record(sender: Any, **kwargs: Any) -> None:
        at = kwargs.get("at", time.monotonic())
        _conn.rpush("events", f"{name}|{at!r}|{os.getpid()}")

    return record


_receivers = []
for _name in signals.__all__:
    _signal = getattr(signals, _name)
    if _name != "graceful":
        _receivers.append(_recorder(_signal.name))
        _signal.connect(_receivers[-1], weak=False)


def _raising(sender: Any, **kwargs: Any) -> None:
    raise RuntimeError("receiver boom")


for _name in ("shutdown_started", "job_notified", "job_requeued", "shutdown_finished"):
    getattr(signals, _name).connect(_raising, weak=False)


class RecordingWorker(Worker):
    pass
