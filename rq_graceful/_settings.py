"""Settings: every variable declared once, parsed by one function each.

A :class:`Settings` is built from an environment mapping (``Settings.from_env``)
and optional keyword overrides; it is frozen, and remembers where each value
came from so ``rq-graceful check`` and the docs can show it.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "PLATFORM_DEADLINES",
    "SETTINGS",
    "ConfigurationError",
    "Mode",
    "Platform",
    "Setting",
    "Settings",
    "Source",
]

#: Time kept after the work horse is SIGKILLed for requeueing the job and
#: deregistering the worker, inside the budget that ends at deadline - margin.
TEARDOWN_RESERVE = 0.5


class ConfigurationError(ValueError):
    """A setting has a value rq_graceful cannot use; the message names it."""


class Mode(str, enum.Enum):
    """What a TERM does to the running job."""

    ENTIRE = "entire graceful"
    HALFWAY = "halfway graceful"
    IMMEDIATE = "immediate"


class Platform(str, enum.Enum):
    """A platform whose kill deadline rq_graceful knows (auto: detect it)."""

    AUTO = "auto"
    HEROKU = "heroku"
    KUBERNETES = "kubernetes"
    DOCKER = "docker"
    SYSTEMD = "systemd"
    NONE = "none"


#: Seconds from the platform's SIGTERM to its SIGKILL, and whether the
#: platform fixes it (Heroku) or it is merely the usual default.
PLATFORM_DEADLINES: dict[Platform, tuple[float, bool]] = {
    Platform.HEROKU: (30.0, True),
    Platform.KUBERNETES: (30.0, False),
    Platform.DOCKER: (10.0, False),
    Platform.SYSTEMD: (90.0, False),
}


class Source(str, enum.Enum):
    """Where an effective value came from."""

    DEFAULT = "default"
    VARIABLE = "variable"
    ALIAS = "alias"
    ARGUMENT = "argument"
    PLATFORM = "platform"


# -- parsers ---------------------------------------------------------------
# Each takes the raw text and returns the value or raises ValueError with the
# expected form; the caller adds the variable's name and the bad value.

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("a boolean: 1/true/yes/on or 0/false/no/off (any case), or empty")


def _number(text: str) -> float:
    try:
        value = float(text)  # float() allows surrounding whitespace, and only that
    except ValueError:
        raise ValueError("a number of seconds") from None
    if not math.isfinite(value):
        raise ValueError("a finite number of seconds")
    return value


def parse_seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise ValueError("a number of seconds >= 0")
    return value


def parse_positive_seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise ValueError("a number of seconds > 0")
    return value


def parse_max_interruptions(text: str) -> int | None:
    word = text.strip().lower()
    if word == "none":
        return None
    try:
        value = int(word)
    except ValueError:
        raise ValueError("an integer >= 1, or none") from None
    if value < 1:
        raise ValueError("an integer >= 1, or none")
    return value


def parse_platform(text: str) -> Platform:
    word = text.strip().lower() or "auto"
    try:
        return Platform(word)
    except ValueError:
        names = ", ".join(p.value for p in Platform)
        raise ValueError(f"one of {names}") from None


@dataclass(frozen=True)
class Setting:
    """One declared setting: its field, variable, Resque alias, parser, default and doc."""

    field: str
    variable: str
    alias: str | None
    parse: Callable[[str], Any]
    default: Any
    expected: str
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "term_child",
        "RQ_GRACEFUL_TERM_CHILD",
        "TERM_CHILD",
        parse_bool,
        False,
        "boolean",
        "Halfway graceful on TERM: the job is told, then interrupted, then killed.",
    ),
    Setting(
        "pre_shutdown_timeout",
        "RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT",
        "RESQUE_PRE_SHUTDOWN_TIMEOUT",
        parse_seconds,
        0.0,
        "seconds >= 0",
        "With TERM_CHILD: how long the job keeps running before ShutdownRequested is raised in it.",
    ),
    Setting(
        "term_timeout",
        "RQ_GRACEFUL_TERM_TIMEOUT",
        "RESQUE_TERM_TIMEOUT",
        parse_seconds,
        4.0,
        "seconds >= 0",
        "With TERM_CHILD: how long after ShutdownRequested the work horse is SIGKILLed.",
    ),
    Setting(
        "graceful_term",
        "RQ_GRACEFUL_GRACEFUL_TERM",
        "GRACEFUL_TERM",
        parse_bool,
        False,
        "boolean",
        "Entire graceful on TERM (the default mode anyway; kept for Resque users).",
    ),
    Setting(
        "requeue",
        "RQ_GRACEFUL_REQUEUE",
        None,
        parse_bool,
        True,
        "boolean",
        "An interrupted job goes back to the front of its queue instead of failing.",
    ),
    Setting(
        "max_interruptions",
        "RQ_GRACEFUL_MAX_INTERRUPTIONS",
        None,
        parse_max_interruptions,
        10,
        "integer >= 1, or none",
        "After this many interruptions the job fails instead, with that reason.",
    ),
    Setting(
        "kill_deadline",
        "RQ_GRACEFUL_KILL_DEADLINE",
        None,
        parse_positive_seconds,
        None,
        "seconds > 0",
        "When the platform's SIGKILL comes, counted from its SIGTERM.",
    ),
    Setting(
        "safety_margin",
        "RQ_GRACEFUL_SAFETY_MARGIN",
        None,
        parse_seconds,
        1.0,
        "seconds >= 0",
        "How long before that deadline the worker must be done.",
    ),
    Setting(
        "platform",
        "RQ_GRACEFUL_PLATFORM",
        None,
        parse_platform,
        Platform.AUTO,
        "auto, heroku, kubernetes, docker, systemd or none",
        "Which platform's facts to apply.",
    ),
)

_BY_FIELD = {s.field: s for s in SETTINGS}


def _default_text(setting: Setting) -> str:
    if setting.field == "kill_deadline":
        return "platform's"
    value = setting.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_table() -> str:
    """The Markdown table of every setting, generated from SETTINGS (README and docs)."""
    rows = [
        "| variable | Resque alias | value | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        alias = f"`{s.alias}`" if s.alias else ""
        rows.append(f"| `{s.variable}` | {alias} | {s.expected} | {_default_text(s)} | {s.doc} |")
    return "\n".join(rows)


def _check_argument(setting: Setting, value: Any) -> Any:
    """Validate a keyword argument given to Worker(...) as a Python value."""
    if isinstance(value, str):
        try:
            return setting.parse(value)
        except ValueError as exc:
            raise ConfigurationError(f"{setting.field}={value!r} is not valid: expected {exc}") from None
    if setting.parse is parse_bool:
        if isinstance(value, bool):
            return value
    elif setting.parse is parse_platform:
        if isinstance(value, Platform):
            return value
    elif setting.parse is parse_max_interruptions:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if setting.default is None and value is None:
            return None
        try:
            return setting.parse(repr(float(value)))
        except ValueError as exc:
            raise ConfigurationError(f"{setting.field}={value!r} is not valid: expected {exc}") from None
    elif value is None and setting.default is None:
        return None
    raise ConfigurationError(f"{setting.field}={value!r} is not valid: expected {setting.expected}")


def detect_platform(environ: Mapping[str, str], dockerenv: str = "/.dockerenv") -> Platform:
    """The platform this process runs on, from the marks each leaves."""
    if environ.get("DYNO"):
        return Platform.HEROKU
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return Platform.KUBERNETES
    if os.path.exists(dockerenv):
        return Platform.DOCKER
    if environ.get("INVOCATION_ID"):
        return Platform.SYSTEMD
    return Platform.NONE


@dataclass(frozen=True)
class Budget:
    """The effective timeline of a shutdown, relative to the first TERM.

    ``raise_at`` and ``kill_at`` are ``None`` when that phase never comes in
    the given mode (entire graceful with no deadline in force).
    """

    mode: Mode
    raise_at: float | None
    kill_at: float | None
    deadline: float | None
    done_by: float | None


@dataclass(frozen=True)
class Settings:
    """The effective settings of one worker, read once when it starts."""

    term_child: bool = False
    pre_shutdown_timeout: float = 0.0
    term_timeout: float = 4.0
    graceful_term: bool = False
    requeue: bool = True
    max_interruptions: int | None = 10
    kill_deadline: float | None = None
    safety_margin: float = 1.0
    platform: Platform = Platform.AUTO
    detected_platform: Platform = Platform.NONE
    sources: Mapping[str, tuple[Source, str]] = field(default_factory=dict, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    # -- construction ------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        dockerenv: str = "/.dockerenv",
        **arguments: Any,
    ) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``), then
        apply keyword ``arguments`` (named as the fields), which win.

        Raises ConfigurationError naming the variable, its value and the
        expected form. Clamps timeouts that would overrun an enforced kill
        deadline, recording a warning.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, tuple[Source, str]] = {}
        notes: list[str] = []
        unknown = set(arguments) - set(_BY_FIELD)
        if unknown:
            raise ConfigurationError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(_BY_FIELD)}")
        for s in SETTINGS:
            if s.field in arguments:
                values[s.field] = _check_argument(s, arguments[s.field])
                sources[s.field] = (Source.ARGUMENT, s.field)
                continue
            main = env.get(s.variable)
            alias = env.get(s.alias) if s.alias else None
            if main is not None:
                name, raw, source = s.variable, main, Source.VARIABLE
            elif alias is not None and s.alias:
                name, raw, source = s.alias, alias, Source.ALIAS
            else:
                values[s.field] = s.default
                sources[s.field] = (Source.DEFAULT, "")
                continue
            try:
                values[s.field] = s.parse(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{name}={raw!r} is not valid: expected {exc}") from None
            sources[s.field] = (source, name)
            if main is not None and alias is not None and s.alias:
                try:
                    differs = s.parse(alias) != values[s.field]
                except ValueError:
                    differs = True
                if differs:
                    notes.append(f"{s.variable}={main!r} and {s.alias}={alias!r} differ; {s.variable} wins")
        if values["term_child"] and values["graceful_term"]:
            notes.append("TERM_CHILD and GRACEFUL_TERM are both set; TERM_CHILD wins (halfway graceful), as in Resque")
        detected = detect_platform(env, dockerenv)
        settings = cls(detected_platform=detected, sources=sources, **values)
        if settings.enforced_deadline is not None and settings.safety_margin >= settings.enforced_deadline:
            margin_name = sources["safety_margin"][1] or "RQ_GRACEFUL_SAFETY_MARGIN"
            raise ConfigurationError(
                f"{margin_name}={settings.safety_margin:g} leaves no time before the kill deadline of "
                f"{settings.enforced_deadline:g}s ({settings.deadline_origin}): "
                "expected a margin smaller than the deadline"
            )
        notes.extend(settings._clamp_notes())
        return replace(settings, warnings=tuple(notes))

    # -- derived facts -----------------------------------------------------

    @property
    def effective_platform(self) -> Platform:
        return self.detected_platform if self.platform is Platform.AUTO else self.platform

    @property
    def enforced_deadline(self) -> float | None:
        """The kill deadline the worker plans against, if any."""
        if self.kill_deadline is not None:
            return self.kill_deadline
        facts = PLATFORM_DEADLINES.get(self.effective_platform)
        if facts and facts[1]:
            return facts[0]
        return None

    @property
    def deadline_origin(self) -> str:
        if self.kill_deadline is not None:
            return self.sources.get("kill_deadline", (Source.ARGUMENT, "kill_deadline"))[1] or "kill_deadline"
        return f"{self.effective_platform.value} platform"

    @property
    def reported_deadline(self) -> float | None:
        """The deadline ``rq-graceful check`` reports: enforced, or the platform's usual one."""
        if self.enforced_deadline is not None:
            return self.enforced_deadline
        facts = PLATFORM_DEADLINES.get(self.effective_platform)
        return facts[0] if facts else None

    @property
    def mode(self) -> Mode:
        if not self.term_child:
            return Mode.ENTIRE
        if self.pre_shutdown_timeout == 0 and self.term_timeout == 0:
            return Mode.IMMEDIATE
        return Mode.HALFWAY

    def budget(self, mode: Mode | None = None) -> Budget:
        """The phase times for a shutdown in ``mode`` (default: the configured one)."""
        mode = self.mode if mode is None else mode
        deadline = self.enforced_deadline
        term = self.term_timeout
        if mode is Mode.ENTIRE:
            raise_at: float | None = None
            kill_at: float | None = None
        else:
            raise_at = self.pre_shutdown_timeout
            kill_at = raise_at + term
        done_by = None
        if deadline is not None:
            done_by = deadline - self.safety_margin
            last_kill = max(0.0, done_by - TEARDOWN_RESERVE)
            term = min(term, last_kill)
            last_raise = last_kill - term
            raise_at = last_raise if raise_at is None else min(raise_at, last_raise)
            kill_at = min(raise_at + term, last_kill)
        return Budget(mode, raise_at, kill_at, deadline, done_by)

    def _clamp_notes(self) -> list[str]:
        deadline = self.enforced_deadline
        if deadline is None:
            return []
        b = self.budget()
        assert b.raise_at is not None and b.kill_at is not None
        where = f"the kill deadline ({deadline:g}s from {self.deadline_origin}, margin {self.safety_margin:g}s)"
        if self.mode is Mode.ENTIRE:
            if b.kill_at - b.raise_at < self.term_timeout - 1e-9:
                return [
                    f"term timeout {self.term_timeout:g}s does not fit before {where}; "
                    f"clamped to {b.kill_at - b.raise_at:g}s"
                ]
            return []
        pre, term = self.pre_shutdown_timeout, self.term_timeout
        if b.raise_at < pre - 1e-9 or b.kill_at < pre + term - 1e-9:
            return [
                f"pre-shutdown {pre:g}s + term {term:g}s overrun {where}; "
                f"clamped: ShutdownRequested at {b.raise_at:g}s, SIGKILL at {b.kill_at:g}s"
            ]
        return []

    def describe(self) -> dict[str, Any]:
        """A plain mapping of the effective values, for logs and ``check --json``."""
        out: dict[str, Any] = {}
        for s in SETTINGS:
            value = getattr(self, s.field)
            source, name = self.sources.get(s.field, (Source.DEFAULT, ""))
            out[s.field] = {
                "value": value.value if isinstance(value, enum.Enum) else value,
                "source": source.value,
                "name": name or s.variable,
            }
        return out
