from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from harness import NO_REDIS_MESSAGE, RedisServer, WorkerProcess
from rq import Queue


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_redis = [i for i in items if i.get_closest_marker("integration")]
    if needs_redis and shutil.which("redis-server") is None:
        pytest.exit(NO_REDIS_MESSAGE, returncode=4)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def conn(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()  # the private server of this test session, never the shared one
    yield client
    client.close()


@pytest.fixture
def queue(conn: redis.Redis) -> Queue:
    return Queue("default", connection=conn)


@pytest.fixture
def start_worker(redis_server: RedisServer, tmp_path: Path, conn: redis.Redis) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None, ready: bool = True, **kwargs: Any) -> WorkerProcess:
        worker = WorkerProcess(redis_server.url, env=env, log_dir=tmp_path, **kwargs)
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.kill_everything()
