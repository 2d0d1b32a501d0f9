"""`rq-graceful check`: the effective settings, the timeline, and what would break a shutdown."""

from __future__ import annotations

import enum
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._settings import (
    PLATFORM_DEADLINES,
    SETTINGS,
    ConfigurationError,
    Mode,
    Settings,
    Source,
)

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh"})


class Level(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Problem:
    level: Level
    message: str


@dataclass
class Report:
    settings: Settings | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level is Level.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level is Level.WARNING]

    def exit_code(self, strict: bool) -> int:
        return 1 if self.errors or (strict and self.warnings) else 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": not self.errors,
            "problems": [{"level": p.level.value, "message": p.message} for p in self.problems],
        }
        s = self.settings
        if s is not None:
            b = s.budget()
            out.update(
                settings=s.describe(),
                mode=s.mode.value,
                platform=s.effective_platform.value,
                deadline={"seconds": s.reported_deadline, "enforced": s.enforced_deadline is not None},
                timeline={
                    "notice": 0.0,
                    "shutdown_requested": b.raise_at,
                    "sigkill": b.kill_at,
                    "done_by": b.done_by,
                    "platform_sigkill": b.deadline,
                },
            )
        return out


def check(
    environ: Mapping[str, str],
    command: str | None = None,
    dockerenv: str = "/.dockerenv",
    proc: Path = Path("/proc"),
) -> Report:
    """Build the report for ``environ`` (and a worker command line, if given)."""
    try:
        settings = Settings.from_env(environ, dockerenv=dockerenv)
    except ConfigurationError as exc:
        return Report(None, [Problem(Level.ERROR, str(exc))])
    report = Report(settings, [Problem(Level.WARNING, w) for w in settings.warnings])
    report.problems.extend(_deadline_problems(settings))
    if command is not None:
        report.problems.extend(command_problems(command))
    report.problems.extend(shell_parent_problems(proc))
    return report


def _deadline_problems(s: Settings) -> list[Problem]:
    platform = s.effective_platform
    facts = PLATFORM_DEADLINES.get(platform)
    if s.enforced_deadline is not None or facts is None:
        return []
    usual = facts[0]
    problems = [
        Problem(
            Level.NOTE,
            f"{platform.value}: the usual grace period is {usual:g}s, but it is configurable there, so rq_graceful "
            f"enforces none until RQ_GRACEFUL_KILL_DEADLINE is set to yours",
        )
    ]
    if s.mode is not Mode.ENTIRE and s.pre_shutdown_timeout + s.term_timeout > usual - s.safety_margin:
        problems.append(
            Problem(
                Level.WARNING,
                f"pre-shutdown {s.pre_shutdown_timeout:g}s + term {s.term_timeout:g}s overrun {platform.value}'s "
                f"usual {usual:g}s grace period (margin {s.safety_margin:g}s): raise the platform's grace period, "
                "or set RQ_GRACEFUL_KILL_DEADLINE to it so that rq_graceful fits the phases inside",
            )
        )
    return problems


def command_problems(command: str) -> list[Problem]:
    """Warn when a worker's command line runs it under a shell that will not forward SIGTERM."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return [Problem(Level.ERROR, f"cannot parse the command {command!r}: {exc}")]
    if len(argv) >= 3 and os.path.basename(argv[0]) in SHELLS and argv[1] == "-c":
        script = argv[2]
        if _runs_worker(script) and not _execs_worker(script):
            return [
                Problem(
                    Level.WARNING,
                    f"{os.path.basename(argv[0])} -c runs the worker as a child and does not forward SIGTERM to it: "
                    f"write 'exec rq worker ...' in the script, or use the exec form (a JSON array in Docker)",
                )
            ]
    return []


def _runs_worker(script: str) -> bool:
    return "rq worker" in script or "rq worker-pool" in script or "rq_graceful" in script


def _execs_worker(script: str) -> bool:
    for part in script.replace("&&", ";").replace("||", ";").replace("\n", ";").split(";"):
        words = part.split()
        if words and words[0] == "exec" and _runs_worker(part):
            return True
        if _runs_worker(part) and part.strip() == script.strip():
            return True  # a single command: sh -c execs it directly
    return False


def shell_parent_problems(proc: Path = Path("/proc")) -> list[Problem]:
    """Warn when this process's parent is a shell running as PID 1 (a container's shell-form command)."""
    if os.getppid() != 1:
        return []
    try:
        comm = (proc / "1" / "comm").read_text().strip()
    except OSError:
        return []
    if comm in SHELLS:
        return [
            Problem(
                Level.WARNING,
                f"PID 1 is {comm}: a shell running as PID 1 does not forward SIGTERM to the worker, which then "
                'dies at the platform\'s SIGKILL. Use the exec form (CMD ["rq", "worker", ...]) or \'exec rq worker\'',
            )
        ]
    return []


# -- rendering -------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}s"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "none" if value is None else str(value)


def render(report: Report) -> str:
    lines: list[str] = []
    s = report.settings
    if s is not None:
        lines.append("Effective settings")
        width = max(len(d.variable) for d in SETTINGS)
        for d in SETTINGS:
            source, name = s.sources.get(d.field, (Source.DEFAULT, ""))
            where = {
                Source.DEFAULT: "default",
                Source.VARIABLE: name,
                Source.ALIAS: f"{name} (Resque alias)",
                Source.ARGUMENT: f"argument {name}",
                Source.PLATFORM: "platform",
            }[source]
            value = getattr(s, d.field)
            if d.field == "kill_deadline" and value is None and s.enforced_deadline is not None:
                value, where = s.enforced_deadline, f"platform ({s.effective_platform.value}, fixed)"
            lines.append(f"  {d.variable:<{width}}  {_show(value):<10} {where}")
        platform = s.effective_platform.value
        detected = " (detected)" if s.platform.value == "auto" else ""
        deadline = s.reported_deadline
        enforced = "enforced" if s.enforced_deadline is not None else "not enforced"
        lines.append("")
        lines.append(
            f"Platform: {platform}{detected}; kill deadline: "
            + (f"{deadline:g}s, {enforced}" if deadline is not None else "none known")
        )
        lines.append(f"On TERM: {s.mode.value} shutdown")
        lines.append("")
        lines.extend(timeline(s))
    if report.problems:
        lines.append("")
        lines.append("Problems" if report.errors or report.warnings else "Notes")
        for p in report.problems:
            lines.append(f"  {p.level.value}: {p.message}")
    elif s is not None:
        lines.append("")
        lines.append("No problems found.")
    return "\n".join(lines)


def timeline(s: Settings, width: int = 60) -> list[str]:
    """An ASCII timeline of a shutdown's phases, t = 0 at the first SIGTERM."""
    b = s.budget()
    events: list[tuple[float, str, str]] = [(0.0, "N", "notice: the job is told, the worker takes no new job")]
    if b.raise_at is not None:
        events.append((b.raise_at, "R", "ShutdownRequested raised in the job (if still running)"))
    if b.kill_at is not None:
        events.append((b.kill_at, "K", "work horse SIGKILLed (if still running); job requeued; worker exits"))
    if b.done_by is not None:
        events.append((b.done_by, "D", "worker done at the latest (deadline - margin)"))
    if b.deadline is not None:
        events.append((b.deadline, "X", "the platform's SIGKILL"))
    end = max(t for t, _, _ in events) or 1.0
    bar = ["-"] * (width + 1)
    for t, mark, _ in events:
        bar[round(t / end * width)] = mark
    lines = ["Timeline (t = 0 at the first SIGTERM)", "  |" + "".join(bar) + "|"]
    if b.raise_at is None:
        lines.append("  the job runs to its end, however long; the worker exits when it does")
    lines.extend(f"  {mark} t={t:<7g} {what}" for t, mark, what in events)
    return lines
