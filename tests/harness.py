"""Real processes for the integration tests: a private redis-server and `rq worker`s.

Nothing here mocks a signal or Redis. Workers run in their own session, so a
test can signal the main pid only (Kubernetes, Docker) or every process of the
worker (Heroku, systemd), and clean up by session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import redis

TESTS_DIR = Path(__file__).resolve().parent
RQ = str(Path(sys.executable).with_name("rq"))
T = TypeVar("T")

NO_REDIS_MESSAGE = (
    "redis-server was not found on PATH. The integration tests start their own private "
    "redis-server (any version >= 6.2). Install it (Debian/Ubuntu: apt install redis-server; "
    "macOS: brew install redis), or run only the unit tests: pytest -m 'not integration'."
)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.005) -> T:
    """Return predicate()'s first truthy value, or fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server on a free port, with its files in ``directory``."""

    def __init__(self, directory: Path, persistent: bool = False) -> None:
        self.persistent = persistent
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(NO_REDIS_MESSAGE)
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_for(lambda: _pings(client), 10, f"redis-server on port {self.port}")
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (what a cgroup-wide signal reaches)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.append(int(entry))
    return pids


class WorkerProcess:
    """One `rq worker --worker-class rq_graceful.Worker` (or another class) in its own session."""

    def __init__(
        self,
        redis_url: str,
        queues: Iterable[str] = ("default",),
        env: Mapping[str, str] | None = None,
        worker_class: str = "rq_graceful.Worker",
        args: Iterable[str] = (),
        name: str | None = None,
        log_dir: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.name = name or f"w{os.getpid()}-{time.monotonic_ns()}"
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RQ_GRACEFUL_", "RESQUE_"))
            and k not in ("TERM_CHILD", "GRACEFUL_TERM", "DYNO", "KUBERNETES_SERVICE_HOST", "INVOCATION_ID")
        }
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
        full_env.update(env or {})
        self.command = command or [
            RQ,
            "worker",
            "--url",
            redis_url,
            "--worker-class",
            worker_class,
            "--name",
            self.name,
            *args,
            *queues,
        ]
        self.log_path = (log_dir or Path("/tmp")) / f"{self.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the worker writes to it until kill_everything()
        self.process = subprocess.Popen(
            self.command, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.process.pid
        self.redis = redis.Redis.from_url(redis_url)

    # -- observing ---------------------------------------------------------------

    @property
    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def state(self) -> str | None:
        value = self.redis.hget(f"rq:worker:{self.name}", "state")
        return value.decode() if value else None

    def wait_ready(self, timeout: float = 20) -> WorkerProcess:
        """Ready once it waits for jobs: its signal handlers are in place by then."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log}")
            return self.state() in ("idle", "busy", "suspended")

        wait_for(ready, timeout, f"worker {self.name} to be ready", interval=0.01)
        return self

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {self.name} still running after {timeout}s:\n{self.log}") from None

    def alive(self) -> bool:
        return self.process.poll() is None

    def processes(self) -> list[int]:
        return session_pids(self.pid)

    # -- acting ------------------------------------------------------------------

    def send(self, sig: int, to: str = "main") -> float:
        """Send ``sig`` to the main pid ("main") or to every process of the worker ("all").

        Returns the CLOCK_MONOTONIC time just before sending.
        """
        t = time.monotonic()
        if to == "main":
            os.kill(self.pid, sig)
        elif to == "all":
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        else:
            raise ValueError(f"to must be 'main' or 'all', not {to!r}")
        return t

    def kill_everything(self) -> None:
        for _ in range(3):
            pids = self.processes()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log.close()
        self.redis.close()
