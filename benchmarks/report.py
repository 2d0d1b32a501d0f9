"""Render benchmarks/results/*.json as Markdown (the docs' benchmarks page), and draw the chart.

    python benchmarks/report.py [--chart]

--chart draws docs/img/benchmarks-memory.svg with matplotlib (a benchmark-only dependency).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CHART = HERE.parent / "docs" / "img" / "benchmarks-memory.svg"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / name
    return json.loads(path.read_text()) if path.exists() else None


def _machine(data: dict[str, Any]) -> str:
    m = data.get("machine") or {}
    if not m:
        return ""
    return (
        f"Measured {m.get('date', '')} on {m.get('cpus')} cores, Python {m.get('python')}, RQ {m.get('rq')}, "
        f"redis-py {m.get('redis_py')}, rq_graceful {m.get('rq_graceful')}."
    )


def throughput(data: dict[str, Any]) -> str:
    rows = [
        [name, f"{s['median_jobs_per_s']:.0f}", f"{s['min']:.0f}-{s['max']:.0f}", f"{s['ratio_to_rq_worker']:.3f}"]
        for name, s in data["results"].items()
    ]
    return (
        f"## Throughput\n\n{data['jobs']} no-op jobs in burst mode, {data['rounds']} interleaved rounds per "
        f"class; jobs/s from the first job's start to the last job's end. {_machine(data)}\n\n"
        + _table(["worker class", "jobs/s (median)", "range", "ratio to rq.Worker"], rows)
    )


def reaction(data: dict[str, Any]) -> str:
    rows = []
    for measure, per in data["results"].items():
        for cls, s in per.items():
            hangs = sum(v > 30 for v in data["raw"][measure][cls])
            rows.append([measure, cls, s["n"], f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['max_ms']:.2f}", hangs])
    return (
        f"## Reaction\n\n{data['trials']} trials per measure, SIGTERM to the worker's main pid. The last column "
        "counts the exits that took more than 30 s: RQ's teardown joins its pubsub thread, which can sit in a 60 s "
        f"read (redis-py 8.2); rq_graceful does not wait for it. {_machine(data)}\n\n"
        + _table(["measure", "worker class", "n", "p50 ms", "p99 ms", "max ms", "exits over 30 s"], rows)
    )


def chaos_unlimited(data: dict[str, Any]) -> str:
    env = " ".join(f"{k}={v}" for k, v in (data.get("env") or {}).items())
    return chaos(data).replace("## Restart chaos", f"## Restart chaos, again, with {env}", 1)


def chaos(data: dict[str, Any]) -> str:
    rows = [
        [
            r["worker_class"],
            "every process" if r["style"] == "all" else "main pid",
            r["jobs"],
            r["finished"],
            r["failed"],
            r["lost"],
            r["stuck"],
            r["checkpointing_interruptions"],
            r["items_redone"],
            f"{r['redone_per_interruption']:.2f}",
            r["platform_sigkills_found_alive"],
        ]
        for r in data["results"]
    ]
    return (
        f"## Restart chaos\n\n{data['restarts']} restarts, one every {data['interval']:g} s, of two workers; "
        f"SIGKILL {data['deadline']:g} s after each SIGTERM. {_machine(data)}\n\n"
        + _table(
            [
                "worker class",
                "SIGTERM to",
                "jobs",
                "finished",
                "failed",
                "lost",
                "stuck",
                "interruptions (checkpointing)",
                "items redone",
                "redone per interruption",
                "SIGKILLs that found the worker alive",
            ],
            rows,
        )
        + _reasons(data)
    )


def _reasons(data: dict[str, Any]) -> str:
    lines = []
    for r in data["results"]:
        for reason, n in (r.get("failure_reasons") or {}).items():
            style = "every process" if r["style"] == "all" else "main pid"
            lines.append(f"- {r['worker_class']}, SIGTERM to {style}: {n} x `{reason}`")
    return ("\n\nWhy the failed jobs failed:\n\n" + "\n".join(lines)) if lines else ""


def memory(data: dict[str, Any]) -> str:
    rows = [
        [name, r["first_kib"], r["last_kib"], r["max_kib"], r["growth_after_warmup_kib"]]
        for name, r in data["results"].items()
    ]
    chart = "\n\n![RSS over jobs](img/benchmarks-memory.svg)" if CHART.exists() else ""
    return (
        f"## Memory\n\nRSS of the worker's main process over {data['jobs']} no-op jobs. {_machine(data)}\n\n"
        + _table(["worker class", "first KiB", "last KiB", "max KiB", "growth after warm-up KiB"], rows)
        + chart
    )


def recovery(data: dict[str, Any]) -> str:
    return (
        f"## Recovery of a SIGKILLed worker's job\n\nFrom the SIGKILL of a busy worker and its horse to the job "
        f"back in its queue, found by another rq_graceful worker, {data['trials']} trials: median "
        f"{data['median_s']:.1f} s, min {data['min_s']:.1f} s, max {data['max_s']:.1f} s (lease TTL 10 s + "
        f"scan interval 10 s bound it at 20 s). {_machine(data)}"
    )


def targets(results: Path) -> str:
    rows: list[list[str]] = []

    def add(target: str, value: str, met: bool | None) -> None:
        rows.append([target, value, "n/a" if met is None else ("met" if met else "**missed**")])

    t = _load(results, "throughput.json")
    if t:
        ratio = t["results"]["rq_graceful.Worker"]["ratio_to_rq_worker"]
        add("throughput >= 0.98 x rq.Worker", f"{ratio:.3f} x", ratio >= 0.98)
    r = _load(results, "reaction.json")
    if r:
        g = {m: per.get("rq_graceful.Worker") for m, per in r["results"].items()}
        for measure, limit, label in (
            ("TERM -> notice (flag)", 5, "notice <= 5 ms p99 (flag)"),
            ("TERM -> notice (callback)", 5, "notice <= 5 ms p99 (callback)"),
            ("horse exit -> worker exit", 20, "worker exit <= 20 ms p99 after the horse exits"),
            ("last deadline -> worker exit", 50, "worker exit <= 50 ms p99 after the last deadline"),
            ("idle: TERM -> worker exit", 200, "idle exit <= 200 ms"),
        ):
            s = g.get(measure)
            if s:
                add(label, f"{s['p99_ms']:.1f} ms p99", s["p99_ms"] <= limit)
    for name in ("chaos.json", "chaos-unlimited.json"):
        c = _load(results, name)
        if not c:
            continue
        suffix = " (" + " ".join(f"{k}={v}" for k, v in c["env"].items()) + ")" if c.get("env") else ""
        for res in c["results"]:
            if res["worker_class"] != "rq_graceful.Worker":
                continue
            clean = res["lost"] == 0 and res["failed"] == 0 and res["stuck"] == 0
            add(
                f"chaos{suffix}, SIGTERM to {'every process' if res['style'] == 'all' else 'main pid'}: "
                "0 lost/failed/stuck",
                f"{res['lost']}/{res['failed']}/{res['stuck']}",
                clean,
            )
            add(
                f"chaos{suffix}, SIGTERM to {'every process' if res['style'] == 'all' else 'main pid'}: "
                "<= 1 item redone per interruption",
                f"{res['redone_per_interruption']:.2f}",
                res["redone_per_interruption"] <= 1,
            )
    m = _load(results, "memory.json")
    if m:
        growth = m["results"]["rq_graceful.Worker"]["growth_after_warmup_kib"]
        base = m["results"]["rq.Worker"]["growth_after_warmup_kib"]
        add(
            "flat RSS over 10,000 jobs",
            f"{growth} KiB growth after warm-up (rq.Worker: {base})",
            growth <= max(1024, base + 512),
        )
    return "## Targets\n\n" + _table(["target", "measured", "status"], rows) if rows else ""


RENDERERS = {
    "throughput.json": throughput,
    "reaction.json": reaction,
    "chaos.json": chaos,
    "chaos-unlimited.json": chaos_unlimited,
    "memory.json": memory,
    "recovery.json": recovery,
}


def markdown(results: Path = RESULTS) -> str:
    parts = [targets(results)]
    for name, render in RENDERERS.items():
        data = _load(results, name)
        parts.append(render(data) if data else f"*No results yet for `{name}`: run `python benchmarks/run.py`.*")
    return "\n\n".join(p for p in parts if p)


def chart(results: Path = RESULTS, out: Path = CHART) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = _load(results, "memory.json")
    if not data:
        return
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, r in data["results"].items():
        xs = [s[0] for s in r["samples"]]
        ys = [s[1] / 1024 for s in r["samples"]]
        ax.plot(xs, ys, label=name, marker=".")
    ax.set_xlabel("jobs done")
    ax.set_ylabel("worker RSS (MiB)")
    top = max(s[1] for r in data["results"].values() for s in r["samples"]) / 1024
    ax.set_ylim(0, top * 1.2)
    ax.set_title("Worker RSS over no-op jobs")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Date": None})
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chart", action="store_true")
    args = parser.parse_args()
    if args.chart:
        chart()
    sys.stdout.write(markdown() + "\n")
