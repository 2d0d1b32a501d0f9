"""The platform files in examples/: each parses, and passes `rq-graceful check --strict` with its environment."""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from test_cli import rq_graceful

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def check_strict(env: dict[str, str], command: str) -> None:
    result = rq_graceful("check", "--strict", "--command", command, env=env)
    assert result.returncode == 0, result.stdout
    assert "warning" not in result.stdout


def test_heroku_procfile() -> None:
    (line,) = (EXAMPLES / "heroku" / "Procfile").read_text().splitlines()
    kind, command = line.split(":", 1)
    assert kind == "worker"
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=\S*", w))
    assert "--worker-class" in words and "rq_graceful.Worker" in words
    check_strict({**env, "DYNO": "worker.1"}, f"bash -c {shlex.quote(command.strip())}")


def test_kubernetes_deployment() -> None:
    doc = yaml.safe_load((EXAMPLES / "kubernetes" / "deployment.yaml").read_text())
    pod = doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert float(env["RQ_GRACEFUL_KILL_DEADLINE"]) == pod["terminationGracePeriodSeconds"]
    assert isinstance(container["command"], list) and container["command"][0] == "rq"  # exec form
    assert "lifecycle" not in container  # no preStop sleep
    check_strict({**env, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, shlex.join(container["command"]))


def test_dockerfile_and_compose() -> None:
    lines = (EXAMPLES / "docker" / "Dockerfile").read_text().splitlines()
    cmd = next(line for line in lines if line.startswith("CMD "))
    argv = json.loads(cmd[4:])  # exec form: a JSON array, rq is PID 1
    assert argv[0] == "rq" and "rq_graceful.Worker" in argv
    assert "STOPSIGNAL SIGTERM" in lines
    env = dict(
        shlex.split(line[4:])[i].split("=", 1)
        for line in lines
        if line.startswith("ENV ")
        for i in range(len(shlex.split(line[4:])))
    )
    compose = yaml.safe_load((EXAMPLES / "docker" / "compose.yaml").read_text())
    worker = compose["services"]["worker"]
    assert worker["stop_grace_period"] == f"{env['RQ_GRACEFUL_KILL_DEADLINE']}s"
    assert worker["environment"] == {k: v for k, v in env.items()}
    check_strict(env, shlex.join(argv))
    check_strict(worker["environment"], shlex.join(worker["command"]))


def _unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: [Section] and Key=Value lines; keys may repeat."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), raw
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"not a unit file line: {raw!r}"
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Za-z]+", key), raw
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit() -> None:
    unit = _unit((EXAMPLES / "systemd" / "rq-worker.service").read_text())
    service = unit["Service"]
    env = dict(e.split("=", 1) for e in service["Environment"])
    assert service["KillMode"] == ["control-group"]
    assert float(service["TimeoutStopSec"][0]) == float(env["RQ_GRACEFUL_KILL_DEADLINE"])
    assert set(unit) == {"Unit", "Service", "Install"}
    command = service["ExecStart"][0].replace("${REDIS_URL}", env["REDIS_URL"])
    check_strict({**env, "INVOCATION_ID": "0123"}, command)


def test_supervisord_program() -> None:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read(EXAMPLES / "supervisord" / "rq-worker.conf")
    program = parser["program:rq-worker"]
    env = dict((k, v.strip('"')) for k, v in (kv.split("=", 1) for kv in program["environment"].split(",")))
    assert program.getint("stopwaitsecs") == int(env["RQ_GRACEFUL_KILL_DEADLINE"])
    assert program["stopsignal"] == "TERM" and program.getboolean("killasgroup")
    check_strict(env, program["command"])


def test_ecs_task_definition() -> None:
    task = json.loads((EXAMPLES / "ecs" / "task-definition.json").read_text())
    (container,) = task["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert container["stopTimeout"] == int(env["RQ_GRACEFUL_KILL_DEADLINE"])
    check_strict(env, shlex.join(container["command"]))


def test_a_shell_form_command_is_caught() -> None:
    result = rq_graceful(
        "check", "--strict", "--command", "/bin/sh -c 'cd /app && rq worker --worker-class rq_graceful.Worker'"
    )
    assert result.returncode == 1


@pytest.mark.parametrize("path", sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*") if p.is_file()))
def test_every_example_is_checked(path: str) -> None:
    checked = {
        "heroku/Procfile",
        "kubernetes/deployment.yaml",
        "docker/Dockerfile",
        "docker/compose.yaml",
        "systemd/rq-worker.service",
        "supervisord/rq-worker.conf",
        "ecs/task-definition.json",
    }
    assert path in checked, f"examples/{path} has no test"
