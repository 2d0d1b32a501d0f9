"""MkDocs hooks: generated content, so that the docs never drift from the code.

- ``<!-- settings-table -->`` becomes the table generated from rq_graceful's settings declarations;
- ``<!-- include examples/PATH lang -->`` becomes a fenced block with that example file, as tested.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rq_graceful._settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r"<!-- include (examples/\S+) (\w+) -->")


def benchmark_tables() -> str:
    """Tables from benchmarks/results/*.json, rendered by benchmarks/report.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.markdown(ROOT / "benchmarks" / "results"))


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    markdown = markdown.replace("<!-- settings-table -->", settings_table())
    if "<!-- benchmark-tables -->" in markdown:
        markdown = markdown.replace("<!-- benchmark-tables -->", benchmark_tables())

    def include(match: re.Match[str]) -> str:
        text = (ROOT / match.group(1)).read_text().rstrip("\n")
        return f"```{match.group(2)}\n{text}\n```"

    return INCLUDE.sub(include, markdown)
