"""Graceful shutdown for RQ: Resque's TERM_CHILD semantics, and nothing lost on a restart.

Run ``rq worker --worker-class rq_graceful.Worker``; configure it with
environment variables (``rq-graceful check`` shows the effective settings).
"""

from . import signals
from ._horse import ShutdownRequested, on_shutdown, shield, shutdown_requested
from ._job import GracefulJob, GracefulJobMixin, GracefulTask
from ._settings import ConfigurationError, Mode, Platform, Settings
from ._worker import GracefulDeathPenalty, Worker, send_graceful_stop

__version__ = "0.1.0"

__all__ = [
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
