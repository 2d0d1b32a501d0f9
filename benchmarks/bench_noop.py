"""The no-op job of the throughput and memory benchmarks, in a module that imports nothing.

(A job module that imported rq_graceful would cost RQ's own workers that import in every work horse,
and flatter rq_graceful.Worker, which has it loaded already.)
"""


def noop() -> None:
    return None
