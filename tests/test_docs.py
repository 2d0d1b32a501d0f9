"""The docs do not drift: every Python sample in README.md and docs/ runs, and generated parts match."""

from __future__ import annotations

import re
import sys
import types
import weakref
from pathlib import Path
from typing import Any

import pytest

from rq_graceful._settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


class _Recorder:
    """Stands in for a metrics client or Sentry in the samples: records calls, sends nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def _pages_with_python() -> list[Path]:
    return [p for p in PAGES if PYTHON_BLOCK.search(p.read_text())]


@pytest.mark.integration
@pytest.mark.parametrize("page", _pages_with_python(), ids=lambda p: str(p.relative_to(ROOT)))
def test_python_samples_run(page: Path, redis_url: str, conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sentry = types.ModuleType("sentry_sdk")
    sentry.add_breadcrumb = _Recorder().add_breadcrumb  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentry_sdk", sentry)
    namespace: dict[str, Any] = {
        "__name__": f"docs_sample_{page.stem}",
        "REDIS_URL": redis_url,  # the samples' Redis: this session's private server
        "write_row": lambda row: None,  # the samples' own work
        "metrics": _Recorder(),
    }
    from rq_graceful import signals

    receivers_before = {name: set(getattr(signals, name).receivers) for name in signals.__all__ if name != "graceful"}
    try:
        for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text()), 1):
            code = compile(block, f"{page.name}, python block {number}", "exec")
            exec(code, namespace)
    finally:  # samples connect receivers: leave the signals as they were
        for name, before in receivers_before.items():
            signal = getattr(signals, name)
            for receiver_id in set(signal.receivers) - before:
                receiver = signal.receivers[receiver_id]
                receiver = receiver() if isinstance(receiver, weakref.ref) else receiver
                if receiver is not None:
                    signal.disconnect(receiver)


def test_readme_table_is_the_generated_one() -> None:
    assert settings_table() in (ROOT / "README.md").read_text()


def test_configuration_page_uses_the_generated_table() -> None:
    assert "<!-- settings-table -->" in (ROOT / "docs" / "configuration.md").read_text()


def test_platform_pages_include_the_tested_examples() -> None:
    included = set()
    for page in (ROOT / "docs" / "platforms").glob("*.md"):
        included |= set(re.findall(r"<!-- include (examples/\S+) \w+ -->", page.read_text()))
    examples = {p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").rglob("*") if p.is_file()}
    assert included == examples


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert page.relative_to(ROOT / "docs").as_posix() in nav, page
