"""`rq-graceful check` and `rq-graceful demo`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("RQ_GRACEFUL_", "RESQUE_"))
    and k not in ("TERM_CHILD", "GRACEFUL_TERM", "DYNO", "KUBERNETES_SERVICE_HOST", "INVOCATION_ID", "REDIS_URL")
}


def rq_graceful(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rq_graceful.cli", *args],
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_defaults() -> None:
    result = rq_graceful("check")
    assert result.returncode == 0, result.stderr
    assert "RQ_GRACEFUL_TERM_CHILD" in result.stdout and "default" in result.stdout
    assert "On TERM: entire graceful shutdown" in result.stdout
    assert "the job runs to its end" in result.stdout


def test_check_names_where_each_value_came_from() -> None:
    result = rq_graceful("check", env={"TERM_CHILD": "1", "RQ_GRACEFUL_TERM_TIMEOUT": "6", "DYNO": "worker.1"})
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  RQ_GRACEFUL_")}
    assert "TERM_CHILD (Resque alias)" in lines["RQ_GRACEFUL_TERM_CHILD"]
    assert lines["RQ_GRACEFUL_TERM_TIMEOUT"].split()[1:] == ["6s", "RQ_GRACEFUL_TERM_TIMEOUT"]
    assert "platform (heroku, fixed)" in lines["RQ_GRACEFUL_KILL_DEADLINE"]
    bar = next(line for line in result.stdout.splitlines() if line.startswith("  |"))
    assert bar.startswith("  |R") and bar.endswith("X|")  # raised at 0 (pre 0), ends at Heroku's SIGKILL
    assert "X t=30" in result.stdout


def test_check_exits_1_on_a_bad_value() -> None:
    result = rq_graceful("check", env={"RESQUE_TERM_TIMEOUT": "soon"})
    assert result.returncode == 1
    assert "RESQUE_TERM_TIMEOUT='soon'" in result.stdout and "expected" in result.stdout


@pytest.mark.parametrize(
    ("env", "warning"),
    [
        (
            {"DYNO": "w.1", "TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "25", "RESQUE_TERM_TIMEOUT": "10"},
            "clamped",
        ),
        ({"TERM_CHILD": "1", "GRACEFUL_TERM": "1"}, "TERM_CHILD wins"),
        ({"RQ_GRACEFUL_TERM_TIMEOUT": "2", "RESQUE_TERM_TIMEOUT": "3"}, "differ"),
        (
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "40"},
            "usual 30s grace period",
        ),
    ],
)
def test_check_warnings_fail_only_with_strict(env: dict[str, str], warning: str) -> None:
    relaxed = rq_graceful("check", env=env)
    assert relaxed.returncode == 0
    assert warning in relaxed.stdout
    assert rq_graceful("check", "--strict", env=env).returncode == 1


@pytest.mark.parametrize(
    ("command", "warns"),
    [
        ("sh -c 'cd /app && rq worker --worker-class rq_graceful.Worker'", True),
        ("/bin/bash -c 'source .env; rq worker --worker-class rq_graceful.Worker default'", True),
        ("sh -c 'cd /app && exec rq worker --worker-class rq_graceful.Worker'", False),
        ("sh -c 'rq worker --worker-class rq_graceful.Worker'", False),
        ("rq worker --worker-class rq_graceful.Worker default", False),
    ],
)
def test_check_spots_a_shell_that_will_not_forward_term(command: str, warns: bool) -> None:
    result = rq_graceful("check", "--strict", "--command", command)
    assert ("does not forward SIGTERM" in result.stdout) is warns
    assert result.returncode == (1 if warns else 0)


def test_check_json() -> None:
    result = rq_graceful("check", "--json", env={"TERM_CHILD": "1", "RQ_GRACEFUL_KILL_DEADLINE": "30"})
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["mode"] == "halfway graceful"
    assert report["settings"]["term_child"] == {"value": True, "source": "alias", "name": "TERM_CHILD"}
    assert report["timeline"] == {
        "notice": 0.0,
        "shutdown_requested": 0.0,
        "sigkill": 4.0,
        "done_by": 29.0,
        "platform_sigkill": 30.0,
    }


def test_check_json_on_error() -> None:
    result = rq_graceful("check", "--json", env={"RQ_GRACEFUL_PLATFORM": "mars"})
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and "RQ_GRACEFUL_PLATFORM='mars'" in report["problems"][0]["message"]


@pytest.mark.integration
def test_demo_tells_the_whole_story_and_loses_nothing(redis_url: str) -> None:
    result = rq_graceful("demo", env={"REDIS_URL": redis_url}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in (
        "Redis: REDIS_URL",
        "worker A started",
        "SIGTERM sent to every process of worker A",
        "job told",
        "saved its checkpoint",
        "back at the front of its queue",
        "worker A exited with status 0",
        "job resumed on worker B",
        "job finished on worker B",
        "redone: 0; missing: 0",
        "Nothing was lost.",
    ):
        assert step in out, f"{step!r} missing from:\n{out}"
    assert "\x1b[" not in out  # no colours when not on a terminal
