"""rq_graceful.Worker: RQ's forking worker with Resque's shutdown semantics.

Signal handlers only record the signal and its time. The main loop, while a
job runs, waits on one file descriptor (Python's signal wakeup fd, which
SIGCHLD also writes to) with the next phase deadline as its timeout, so it
reacts to the horse's exit and to each deadline at once, without polling.
While idle, the worker blocks in Redis (BLPOP/BLMOVE); a relay thread ends
that wait with CLIENT UNBLOCK when a signal asks for it, which loses no job.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gc
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

import redis
import redis.exceptions
import rq.worker
from rq.command import PUBSUB_CHANNEL_TEMPLATE
from rq.exceptions import DequeueTimeout, StopRequested
from rq.job import Job, JobStatus
from rq.timeouts import UnixSignalDeathPenalty
from rq.utils import now
from rq.worker import WorkerStatus

from . import _compat, _horse, _lease, signals
from ._job import GracefulJob, GracefulJobMixin
from ._outcomes import settle_interrupted
from ._phases import Action, Controller, Reason, Sequence
from ._settings import SETTINGS, Mode, Settings

if TYPE_CHECKING:
    from rq.queue import Queue

__all__ = ["GracefulDeathPenalty", "Worker"]

logger = logging.getLogger("rq.worker.graceful")

#: Signals the worker's main process handles (all recorded, then acted upon by the loop).
HANDLED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
    signal.SIGCHLD,
)
_SETTING_FIELDS = frozenset(s.field for s in SETTINGS)
#: How long a process about to exit waits for event receivers to finish.
EVENT_FLUSH_TIMEOUT = 0.2


class GracefulDeathPenalty(UnixSignalDeathPenalty):
    """RQ's SIGALRM job timeout that puts back the handler and alarm it found."""

    def setup_death_penalty(self) -> None:
        self._previous_handler = signal.getsignal(signal.SIGALRM)
        self._previous_alarm = signal.alarm(0)
        super().setup_death_penalty()

    def cancel_death_penalty(self) -> None:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._previous_handler)
        if self._previous_alarm:
            signal.alarm(self._previous_alarm)


class Worker(rq.worker.Worker):
    """An RQ worker whose shutdown is planned, not suffered.

    Use it as ``rq worker --worker-class rq_graceful.Worker``. Settings come
    from the environment (see ``rq-graceful check``); the same settings may be
    given as keyword arguments (``term_child=True``, ``pre_shutdown_timeout=20``,
    ...), which win over the environment, or as a ready ``settings=Settings(...)``.
    """

    death_penalty_class = GracefulDeathPenalty
    job_class = GracefulJob

    def __init__(self, queues: Any, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in _SETTING_FIELDS}
        if settings is not None and overrides:
            raise TypeError("pass either settings= or individual setting arguments, not both")
        if settings is None:
            # A worker hydrated from Redis (Worker.all(), rq info) runs nothing: no need to read the env.
            hydrated = kwargs.get("prepare_for_work", True) is False
            settings = Settings(**overrides) if hydrated and not overrides else Settings.from_env(**overrides)
        self.graceful_settings = settings
        job_class = kwargs.get("job_class")
        if job_class is None or job_class in (Job, "rq.job.Job"):
            kwargs["job_class"] = GracefulJob
        super().__init__(queues, *args, **kwargs)
        self._reduced_job_class = not issubclass(self.job_class, GracefulJobMixin)
        self._controller = Controller(self.graceful_settings)
        self._pending: collections.deque[tuple[int, float]] = collections.deque()
        self._wake_r = self._wake_w = -1
        self._relay_r = self._relay_w = -1
        self._idle_blocked = False
        self._closing = False
        self._horse_w = -1
        self._dequeue_connection: redis.Redis | None = None
        self._relay_thread: threading.Thread | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._previous_wakeup_fd = -1
        self._settle_lock = threading.Lock()
        self._keeper_stop = threading.Event()
        self._stop_job_requests: collections.deque[str] = collections.deque()
        self._to_report: collections.deque[tuple[int, bool, bool]] = collections.deque()
        self._outcome = "idle"
        self._horse_job: tuple[Job, Queue, Any] | None = None
        self._lease_renewed = 0.0

    # -- start ---------------------------------------------------------------

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        s = self.graceful_settings
        budget = s.budget()
        logger.info(
            "rq_graceful: %s on TERM; ShutdownRequested at %s, SIGKILL at %s; kill deadline %s",
            s.mode.value,
            _seconds(budget.raise_at),
            _seconds(budget.kill_at),
            _seconds(budget.deadline),
        )
        for note in s.warnings:
            logger.warning("rq_graceful: %s", note)
        if self._reduced_job_class:
            logger.warning(
                "rq_graceful: job class %s does not inherit GracefulJobMixin: shutdowns, requeues and "
                "shutdown_requested()/shield() work, but jobs have no .checkpoint, .save_checkpoint() or "
                ".interruptions",
                self.job_class.__qualname__,
            )

    def _install_signal_handlers(self) -> None:
        self._wake_r, self._wake_w = _nonblocking_pipe()
        self._relay_r, self._relay_w = _nonblocking_pipe(read_blocking=True)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in HANDLED_SIGNALS:
            self._previous_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, self._record_signal)
        self._relay_thread = threading.Thread(target=self._relay, name="rq_graceful-relay", daemon=True)
        self._relay_thread.start()
        threading.Thread(target=self._keep, name="rq_graceful-recovery", daemon=True).start()

    def _record_signal(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: record, and wake the idle wait; nothing more."""
        self._pending.append((signum, time.monotonic()))
        if self._idle_blocked and signum != signal.SIGCHLD:
            try:  # noqa: SIM105 - a signal handler: plain and cheap
                os.write(self._relay_w, b"!")
            except OSError:
                pass

    # -- acting on signals -----------------------------------------------------

    def _drain_signals(self) -> list[Action]:
        actions: list[Action] = []
        while self._stop_job_requests:
            job_id = self._stop_job_requests.popleft()
            if self.get_current_job_id() == job_id:
                logger.info("rq_graceful: graceful stop requested for job %s", job_id)
                actions += self._controller.on_signal(signal.SIGUSR1, time.monotonic())
            else:
                logger.warning("rq_graceful: not running job %s; graceful stop ignored", job_id)
        while self._pending:
            signum, at = self._pending.popleft()
            if signum == signal.SIGCHLD:
                continue
            was_stopping = self._controller.shutting_down
            was_paused = self._controller.paused
            actions += self._controller.on_signal(signum, at)
            self._to_report.append((signum, was_stopping, was_paused))
        return actions

    def _report_signals(self) -> None:
        """Log the signals acted upon, send their events, record the shutdown in Redis: after the
        actions they called for, so that telling the job never waits on a log line or a Redis write."""
        while self._to_report:
            self._log_signal(*self._to_report.popleft())

    def _log_signal(self, signum: int, was_stopping: bool, was_paused: bool) -> None:
        c = self._controller
        name = signal.Signals(signum).name
        if c.shutting_down and not was_stopping:
            assert c.shutdown_mode is not None
            self._shutdown_requested_date = now()
            logger.warning(
                "rq_graceful: %s received: %s shutdown%s",
                name,
                c.shutdown_mode.value,
                "" if c.busy else " (idle: exiting now)",
            )
            budget = self.graceful_settings.budget(c.shutdown_mode)
            signals.send(
                signals.shutdown_started,
                self,
                signal=name,
                mode=c.shutdown_mode,
                at=c.shutdown_started,
                raise_at=budget.raise_at,
                kill_at=budget.kill_at,
                deadline=budget.deadline,
                busy=c.busy,
            )
            try:
                self.set_shutdown_requested_date()
            except redis.exceptions.RedisError:
                logger.warning("rq_graceful: could not record the shutdown request in Redis", exc_info=True)
        elif c.paused != was_paused:
            logger.info("rq_graceful: %s received: %s", name, "paused" if c.paused else "resumed")
        else:
            logger.info("rq_graceful: %s received", name)

    def _wait(self, timeout: float | None) -> None:
        """Sleep until a signal arrives (SIGCHLD included) or ``timeout`` passes."""
        if timeout is not None and timeout <= 0:
            return
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            return
        if ready:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass

    # -- idle: dequeue, pause ---------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's dequeue loop, made interruptible by signals without losing a job."""
        result = None
        qnames = ",".join(self.queue_names())
        self.set_state(WorkerStatus.IDLE)
        self.procline("Listening on " + qnames)
        connection_wait_time = 1.0
        idle_since = now()
        idle_time_left = max_idle_time
        while True:
            self._idle_checkpoint()
            try:
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                if timeout is not None and idle_time_left is not None:
                    timeout = min(timeout, idle_time_left)
                self._idle_blocked = True
                try:
                    if self._pending:  # a signal came since the checkpoint: look at it first
                        continue
                    result = self.queue_class.dequeue_any(
                        self._ordered_queues,
                        timeout,
                        connection=self._get_dequeue_connection(),
                        job_class=self.job_class,
                        serializer=self.serializer,
                        death_penalty_class=self.death_penalty_class,
                    )
                finally:
                    self._idle_blocked = False
                if result is not None:
                    job, queue = result
                    # The dequeue client exists only to be unblocked; from here on, the worker's own
                    # connection serves the job, so that its horse opens one connection, not two.
                    job.connection = queue.connection = self.connection
                    self.reorder_queues(reference_queue=queue)
                    job.redis_server_version = self.get_redis_server_version()
                    if self.log_job_description:
                        self.log.info("Worker %s: %s: %s (%s)", self.name, queue.name, job.description, job.id)
                    else:
                        self.log.info("Worker %s: %s: %s", self.name, queue.name, job.id)
                break
            except DequeueTimeout:
                if self._pending:
                    continue  # unblocked by a signal, not a real timeout
                if max_idle_time is not None:
                    idle_for = (now() - idle_since).total_seconds()
                    idle_time_left = int(max_idle_time - idle_for + 0.999)
                    if idle_time_left <= 0:
                        break
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as conn_err:
                self.log.error(
                    "Worker %s: could not connect to Redis instance: %s retrying in %d seconds...",
                    self.name,
                    conn_err,
                    connection_wait_time,
                )
                self._wait(connection_wait_time)
                connection_wait_time = min(
                    connection_wait_time * self.exponential_backoff_factor, self.max_connection_wait_time
                )
        self.heartbeat()
        return result

    def _idle_checkpoint(self) -> None:
        """Act on signals while idle: stop now, or wait out a pause."""
        self._drain_signals()
        self._report_signals()
        if self._controller.shutting_down:
            self._stop_requested = True
            raise StopRequested()
        if not self._controller.paused:
            return
        self.set_state(WorkerStatus.SUSPENDED)
        self.procline("Paused (USR2); CONT resumes")
        while True:
            self._wait(self.job_monitoring_interval)
            self._drain_signals()
            self._report_signals()
            if self._controller.shutting_down:
                self._stop_requested = True
                raise StopRequested()
            if not self._controller.paused:
                self.set_state(WorkerStatus.IDLE)
                return
            self.heartbeat()

    def _get_dequeue_connection(self) -> redis.Redis:
        """A client of its own for the blocking pop, named so that the relay can unblock it."""
        if self._dequeue_connection is None:
            pool = self.connection.connection_pool
            kwargs = dict(pool.connection_kwargs)
            kwargs["client_name"] = self._dequeue_client_name
            self._dequeue_connection = redis.Redis(
                connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs)
            )
        return self._dequeue_connection

    @property
    def _dequeue_client_name(self) -> str:
        return f"rq_graceful:{self.name}:dequeue"

    def _relay(self) -> None:
        """Thread: end a blocking pop when a signal asks for it (CLIENT UNBLOCK loses no job)."""
        while True:
            try:
                if not os.read(self._relay_r, 64) or self._closing:
                    return
            except OSError:
                return
            give_up = time.monotonic() + 5.0
            while self._idle_blocked and not self._closing and time.monotonic() < give_up:
                try:
                    if self._unblock_dequeue():
                        break
                except redis.exceptions.RedisError:
                    logger.warning("rq_graceful: could not unblock the idle worker", exc_info=True)
                    break
                time.sleep(0.005)  # our UNBLOCK overtook the BLPOP: try again once it is there

    def _unblock_dequeue(self) -> int:
        unblocked = 0
        for client in self.connection.client_list(_type="normal"):
            if client.get("name") == self._dequeue_client_name:
                unblocked += int(self.connection.client_unblock(int(client["id"])))
        return unblocked

    # -- running a job -----------------------------------------------------------

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Fork the horse with the handled signals blocked, and a pipe to talk to it."""
        _lease.take(self.connection, job.id, self.name)
        read_end, write_end = os.pipe()
        os.environ["RQ_WORKER_ID"] = self.name
        os.environ["RQ_JOB_ID"] = job.id
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(HANDLED_SIGNALS))
        try:
            child_pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            _close_quietly(read_end)
            _close_quietly(write_end)
            raise
        if child_pid == 0:  # pragma: no cover - runs in the horse
            try:
                os.close(write_end)
                os.setpgrp()
                signal.set_wakeup_fd(-1)
                for fd in (self._wake_r, self._wake_w, self._relay_r, self._relay_w):
                    _close_quietly(fd)
                _horse.start(read_end, self._orphaned)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                self.main_work_horse(job, queue)
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(read_end)
        self._horse_w = write_end
        self._horse_pid = child_pid
        self.procline(f"Forked {child_pid} at {time.time()}")

    def setup_work_horse_signals(self) -> None:
        """Done by _horse.start() before the horse unblocks signals."""

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        """In the horse: run RQ's perform_job with the job's code inside the interruption window."""
        if not _horse._state.active:  # SimpleWorker-style use, no horse: plain RQ
            return bool(super().perform_job(job, queue, *args, **kwargs))
        execution = _compat.current_execution(self, args[0] if args else kwargs.get("execution"))
        self._horse_job = (job, queue, execution)
        _horse.set_job(job)
        for hook in _shutdown_hooks(job):
            _horse.on_shutdown(hook)
        perform = job.perform

        def perform_in_window() -> Any:
            try:
                with _horse.job_code():
                    return perform()
            except _horse.ShutdownRequested as exc:
                self._finish_interrupted(job, queue, execution, exc.reason)
                raise  # not reached: _finish_interrupted exits the horse

        job.perform = perform_in_window  # type: ignore[method-assign]
        try:
            return bool(super().perform_job(job, queue, *args, **kwargs))
        finally:
            signals.flush(EVENT_FLUSH_TIMEOUT)  # RQ's horse exits right after

    def _finish_interrupted(self, job: Job, queue: Queue, execution: Any, reason: str) -> None:
        """In the horse: the job let ShutdownRequested escape. Settle it and exit."""
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # RQ's job timeout no longer applies
        code = _horse.EXIT_STOPPED
        if reason != Reason.STOP.value:
            with self._settle_lock:
                code = self._settle_in_horse(job, queue, execution)
        signals.flush(EVENT_FLUSH_TIMEOUT)
        logging.shutdown()
        os._exit(code)

    def _settle_in_horse(self, job: Job, queue: Queue, execution: Any) -> int:
        try:
            settle_interrupted(self, job, queue, execution)
        except Exception:
            logger.exception("rq_graceful: could not settle interrupted job %s; leaving it to the worker", job.id)
            return _horse.EXIT_UNSETTLED
        return _horse.EXIT_REQUEUED

    def _orphaned(self) -> None:
        """In the horse, on the listener thread: the worker died. Stop on our own."""
        # Nobody renews the job's lease now: be gone well before it can expire and the job be recovered.
        grace = min(self.graceful_settings.term_timeout, _lease.FENCE)

        def finish() -> None:
            target = self._horse_job
            code = _horse.EXIT_UNSETTLED
            if target is not None and self._settle_lock.acquire(blocking=False):
                code = self._settle_in_horse(*target)
            os._exit(code)

        timer = threading.Timer(grace, finish)
        timer.daemon = True
        timer.start()

    def _renew_lease(self, job: Job, now_: float) -> bool:
        """In the worker, while its horse runs: renew the job's lease. False once the horse must be fenced
        off: Redis has been unreachable for so long that the lease may expire and another worker recover
        the job while this horse still runs it."""
        try:
            _lease.renew(self.connection, job.id, self.name)
        except redis.exceptions.RedisError:
            if now_ - self._lease_renewed > _lease.FENCE:
                logger.error(
                    "rq_graceful: could not renew the lease on job %s for %.0fs; killing its horse before "
                    "another worker may recover the job",
                    job.id,
                    _lease.FENCE,
                )
                return False
            return True
        self._lease_renewed = now_
        return True

    def stand_in(self, name: str) -> Worker:
        """A Worker object in the name of another (dead) worker, to record its job's failure."""
        proxy = type(self)(
            [],
            name=name,
            connection=self.connection,
            prepare_for_work=False,
            job_class=self.job_class,
            serializer=self.serializer,
        )
        proxy.graceful_settings = self.graceful_settings
        return proxy

    def _keep(self) -> None:
        """Thread: find the jobs of killed workers (expired leases) and settle them."""
        while not self._keeper_stop.is_set():
            try:
                self.recover_jobs()
            except redis.exceptions.RedisError:
                logger.warning("rq_graceful: could not look for killed workers' jobs", exc_info=True)
            except Exception:
                logger.exception("rq_graceful: recovery of killed workers' jobs failed")
            self._keeper_stop.wait(_lease.SCAN_INTERVAL)

    def recover_jobs(self) -> list[tuple[str, str]]:
        """Settle every job whose lease expired: its worker and horse are dead. Returns (job id, outcome)."""
        settled = []
        for job_id in _lease.expired(self.connection):
            try:
                job = self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
            except Exception:  # gone, or unreadable: nothing this worker can requeue
                _lease.forget(self.connection, job_id)
                continue
            owner = job.worker_name
            outcome = "untouched"
            if job.get_status() == JobStatus.STARTED and owner:
                queue = self.queue_class(
                    job.origin,
                    connection=self.connection,
                    job_class=self.job_class,
                    serializer=self.serializer,
                )
                outcome = settle_interrupted(self, job, queue, None, owner=owner)
                if outcome != "untouched":
                    logger.warning("rq_graceful: recovered job %s of killed worker %s: %s", job.id, owner, outcome)
                    signals.send(
                        signals.job_recovered,
                        self,
                        job=job,
                        dead_worker=owner,
                        outcome=outcome,
                        at=time.monotonic(),
                    )
            _lease.forget(self.connection, job_id)
            settled.append((job_id, outcome))
        return settled

    def handle_payload(self, message: dict[str, Any]) -> None:
        """Commands from Redis pubsub (pubsub thread): ours is recorded for the main loop, RQ's go to RQ."""
        from rq.command import parse_payload

        payload = parse_payload(message)
        if payload.get("command") == GRACEFUL_STOP_COMMAND:
            self._stop_job_requests.append(str(payload.get("job_id", "")))
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"s")
            return
        super().handle_payload(message)

    def monitor_work_horse(self, job: Job, queue: Queue, execution: Any = None) -> None:
        """Wait for the horse while carrying out the shutdown phases as they fall due."""
        execution = _compat.current_execution(self, execution)
        job.started_at = now()
        c = self._controller
        actions = c.job_started(time.monotonic())
        self._sequence_started = time.monotonic()
        interval = max(1.0, float(self.job_monitoring_interval))
        next_beat = time.monotonic() + interval
        self._lease_renewed = time.monotonic()  # taken just before the fork
        next_renew = self._lease_renewed + _lease.RENEW
        killed = False
        status = 0
        rusage = None
        while True:
            had_sequence = c.sequence is not None
            actions += self._drain_signals()
            if not had_sequence and c.sequence is not None:
                self._sequence_started = time.monotonic()
            actions += c.tick(time.monotonic())
            killed = self._carry_out(actions, job) or killed
            self._report_signals()
            actions = []
            try:
                pid, status, rusage = os.wait4(self._horse_pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self._horse_pid, 0
            if pid:
                break
            t = time.monotonic()
            if t >= next_renew:
                next_renew = t + _lease.RENEW
                if not self._renew_lease(job, t):
                    self.kill_horse(signal.SIGKILL)
                    killed = True
                    continue
            if t >= next_beat:
                next_beat = t + interval
                working = (now() - job.started_at).total_seconds()
                if job.timeout != -1 and job.timeout is not None and working > job.timeout + 60:
                    self.heartbeat(self.job_monitoring_interval + 60)
                    self.kill_horse()
                    killed = True
                    continue
                try:
                    _compat.maintain_heartbeats(self, job, execution)
                except redis.exceptions.RedisError:
                    logger.warning("rq_graceful: heartbeat failed; Redis unreachable?", exc_info=True)
            deadline = c.next_deadline()
            wake = min(next_beat, next_renew, deadline if deadline is not None else next_beat)
            self._wait(wake - time.monotonic())
        self._after_horse(job, queue, execution, status, rusage, killed)

    def _carry_out(self, actions: Iterable[Action], job: Job) -> bool:
        killed = False
        seq = self._controller.sequence
        for action in actions:
            at = time.monotonic()
            t = self._since_start(seq, at)
            if action is Action.NOTICE:
                reason = Reason.STOP if seq is not None and seq.reason is Reason.STOP else Reason.SHUTDOWN
                self._tell_horse(_horse.MSG_STOP if reason is Reason.STOP else _horse.MSG_NOTICE)
                logger.info("rq_graceful: job %s told (%s)", job.id, reason.value)
                signals.send(signals.job_notified, self, job_id=job.id, reason=reason.value, at=at, t=t)
            elif action is Action.RAISE:
                self._tell_horse(_horse.MSG_RAISE)
                logger.info("rq_graceful: ShutdownRequested sent to job %s", job.id)
                signals.send(signals.shutdown_requested_sent, self, job_id=job.id, at=at, t=t)
            elif action is Action.KILL:
                pid = self._horse_pid
                logger.warning("rq_graceful: job %s still running at its deadline: SIGKILL", job.id)
                self.kill_horse(signal.SIGKILL)
                killed = True
                signals.send(signals.horse_killed, self, job_id=job.id, pid=pid, at=at, t=t)
        return killed

    def _since_start(self, seq: Sequence | None, at: float) -> float:
        started = self._controller.shutdown_started
        if (seq is not None and seq.reason is Reason.STOP) or started is None:
            started = self._sequence_started
        return at - started

    def _tell_horse(self, message: bytes) -> None:
        try:
            os.write(self._horse_w, message)
        except OSError as exc:  # the horse is gone: its exit is being reaped
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                raise

    def _after_horse(self, job: Job, queue: Queue, execution: Any, status: int, rusage: Any, killed: bool) -> None:
        """RQ's tail of monitor_work_horse, with interruptions settled instead of failed."""
        _close_quietly(self._horse_w)
        self._horse_w = -1
        horse_pid, self._horse_pid = self._horse_pid, 0
        _compat.forget_execution(self, execution)
        seq = self._controller.sequence
        self._controller.job_ended()
        if self._controller.shutting_down:
            self._stop_requested = True
        code = os.waitstatus_to_exitcode(status) if status else 0
        self._outcome = self._settle_after_horse(job, queue, execution, code, seq, killed, horse_pid, status, rusage)
        try:
            _lease.release(self.connection, job.id)
        except redis.exceptions.RedisError:  # it expires; recovery finds the job settled and forgets it
            logger.warning("rq_graceful: could not release the lease on job %s", job.id)

    def _settle_after_horse(
        self,
        job: Job,
        queue: Queue,
        execution: Any,
        code: int,
        seq: Sequence | None,
        killed: bool,
        horse_pid: int,
        status: int,
        rusage: Any,
    ) -> str:
        if code == 0:
            self._kill_leftovers(horse_pid)
            return "finished"
        self._kill_leftovers(horse_pid)
        try:
            job_status = job.get_status()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            job_status = None  # settle below, retrying within the time left
        except Exception:
            return "finished"  # finished, and its result expired at once
        if code == _horse.EXIT_STOPPED or (seq is not None and seq.reason is Reason.STOP and code < 0):
            self._stopped_job_id = job.id
            if hasattr(self, "_handle_stopped_job"):
                self._handle_stopped_job(job, queue, execution)
            else:
                _compat.handle_job_failure(self, job, queue, "Job stopped by user, work-horse terminated.", execution)
            return "stopped"
        if code == _horse.EXIT_REQUEUED:
            return self._outcome_of(job)
        # During a shutdown, a horse that did not exit cleanly was interrupted (a signal), or could not
        # record the outcome (Redis unreachable): settle it, if it is still marked as started.
        if code == _horse.EXIT_UNSETTLED or (seq is not None and code != 0) or (killed and seq is not None):
            budget = self._time_left()
            try:
                return settle_interrupted(self, job, queue, execution, budget=budget)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                logger.error(
                    "rq_graceful: Redis unreachable; job %s left started under an expiring lease: "
                    "a worker will recover it",
                    job.id,
                )
                return "unknown"
        if job_status is None:
            logger.error("rq_graceful: Redis unreachable; job %s left under an expiring lease for recovery", job.id)
            return "unknown"
        if job_status not in (JobStatus.FINISHED, JobStatus.FAILED):
            job.ended_at = now()
            signal_msg = f" (signal {-code})" if code < 0 else ""
            exc_string = f"Work-horse terminated unexpectedly; waitpid returned {status}{signal_msg}; "
            self.log.warning("Worker %s: job %s failed (%s)", self.name, job.id, exc_string)
            self.handle_work_horse_killed(job, horse_pid, status, rusage)
            _compat.handle_job_failure(self, job, queue, exc_string, execution)
        return "failed"

    def _kill_leftovers(self, horse_pid: int) -> None:
        """SIGKILL what the job left running in the horse's process group (children it forked)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(horse_pid, signal.SIGKILL)
            logger.warning("rq_graceful: killed processes the job left behind (process group %d)", horse_pid)

    def _outcome_of(self, job: Job) -> str:
        """After the horse settled an interrupted job itself: requeued, or failed."""
        try:
            return "failed" if job.get_status(refresh=True) == JobStatus.FAILED else "requeued"
        except Exception:
            return "unknown"

    def _time_left(self) -> float:
        """Seconds left before the worker must be done, for retries against an unreachable Redis."""
        c = self._controller
        budget = self.graceful_settings.budget(c.shutdown_mode or Mode.ENTIRE)
        if budget.done_by is None or c.shutdown_started is None:
            return float(self.graceful_settings.term_timeout)
        return max(0.0, c.shutdown_started + budget.done_by - time.monotonic())

    # -- end -----------------------------------------------------------------------

    def teardown(self) -> None:
        if self.is_horse:
            return
        self._closing = True
        self._keeper_stop.set()
        if self.scheduler:
            self.stop_scheduler()
        try:
            self.register_death()
        except redis.exceptions.RedisError:  # the worker's key expires on its own
            logger.warning("rq_graceful: could not deregister from Redis", exc_info=True)
        self.unsubscribe()
        self._restore_signals()
        if self._dequeue_connection is not None:
            self._dequeue_connection.close()
        if self._controller.shutting_down and self._controller.shutdown_started is not None:
            at = time.monotonic()
            duration = at - self._controller.shutdown_started
            logger.info("rq_graceful: shutdown finished in %.3fs (%s)", duration, self._outcome)
            signals.send(signals.shutdown_finished, self, duration=duration, outcome=self._outcome, at=at)
            signals.flush(EVENT_FLUSH_TIMEOUT)
            # The process is about to end: spare it the final garbage collection over
            # everything RQ and redis-py imported (30-60 ms here), which would otherwise
            # eat into the platform's deadline. atexit handlers still run.
            gc.freeze()

    def unsubscribe(self) -> None:
        """Stop listening for commands without waiting for the pubsub thread.

        RQ unsubscribes, then joins the thread, which may sit in a 60 s read
        after it has handled the UNSUBSCRIBE reply (redis-py 8.2): a restart
        would then hang for a minute. The thread is a daemon; its connection,
        and with it the subscription, ends with the process.
        """
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop(timeout=0)

    def _restore_signals(self) -> None:
        if self._wake_w < 0:
            return
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        with contextlib.suppress(OSError):
            os.write(self._relay_w, b"x")  # let the relay thread see _closing
        for fd in (self._wake_r, self._wake_w):
            _close_quietly(fd)
        self._wake_r = self._wake_w = -1


GRACEFUL_STOP_COMMAND = "rq-graceful-stop"


def send_graceful_stop(connection: redis.Redis, job_id: str, serializer: Any = None) -> None:
    """Stop job ``job_id`` gracefully, wherever it runs, in the style of RQ's send_stop_job_command.

    Its worker runs the halfway sequence on it (notice, ShutdownRequested after
    the pre-shutdown timeout, SIGKILL after the term timeout) and the job ends
    stopped. The worker must be an rq_graceful.Worker.
    """
    import json

    from rq.exceptions import InvalidJobOperation

    job = Job.fetch(job_id, connection=connection, serializer=serializer)
    if job.get_status() != JobStatus.STARTED or not job.worker_name:
        raise InvalidJobOperation(f"job {job_id} is not running")
    payload = {"command": GRACEFUL_STOP_COMMAND, "job_id": job_id}
    connection.publish(PUBSUB_CHANNEL_TEMPLATE % job.worker_name, json.dumps(payload))


def _shutdown_hooks(job: Job) -> list[Any]:
    """The overridable hooks of the job and of a class-based job's instance."""
    hooks = []
    if isinstance(job, GracefulJobMixin):
        hooks.append(job.on_shutdown_requested)
    try:
        instance = job.instance  # deserialized on first use, as job.perform() would
    except Exception:  # let perform() report an unreadable job as RQ does
        instance = None
    hook = getattr(instance, "on_shutdown_requested", None)
    if callable(hook):
        hooks.append(hook)
    return hooks


def _nonblocking_pipe(read_blocking: bool = False) -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(w, False)
    os.set_blocking(r, read_blocking)
    return r, w


def _close_quietly(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:g}s"
