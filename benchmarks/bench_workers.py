"""Worker classes for comparisons."""

from rq.worker import HerokuWorker


class HerokuNoDelay(HerokuWorker):
    """RQ's HerokuWorker raising ShutDownImminentException at once, to compare with ShutdownRequested at pre=0."""

    imminent_shutdown_delay = 0
