"""Render benchmarks/results/*.json as Markdown tables (the docs' benchmarks page uses this)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def reaction(data: dict[str, Any]) -> str:
    rows = [
        [name, s["n"], f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['max_ms']:.2f}"]
        for name, s in data["results"].items()
    ]
    meta = data.get("machine", "")
    intro = f"Reaction times of `rq_graceful.Worker`, {data['runs']} runs each{(' on ' + meta) if meta else ''}.\n\n"
    return "## Reaction\n\n" + intro + _table(["measure", "n", "p50 ms", "p99 ms", "max ms"], rows)


RENDERERS = {"reaction.json": reaction}


def markdown(results: Path = RESULTS) -> str:
    parts = []
    for name, render in RENDERERS.items():
        path = results / name
        if path.exists():
            parts.append(render(json.loads(path.read_text())))
        else:
            parts.append(f"*No results yet for `{name}`: run `python benchmarks/run.py`.*")
    return "\n\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
