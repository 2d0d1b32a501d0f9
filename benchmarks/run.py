"""Run every benchmark and write its JSON to benchmarks/results/; then print the Markdown report.

    python benchmarks/run.py [--quick]

Install the benchmark extra first: pip install -e ".[bench]" (matplotlib draws the docs' chart).
--quick runs fewer trials and restarts, to try the scripts out; the published figures come from a full run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = {
    "throughput.py": ["--rounds", "5"],
    "reaction.py": ["--trials", "50"],
    "recovery.py": ["--trials", "5"],
    "memory.py": ["--jobs", "10000"],
    "chaos.py": ["--restarts", "100"],
}
QUICK = {
    "throughput.py": ["--rounds", "1", "--jobs", "200"],
    "reaction.py": ["--trials", "3"],
    "recovery.py": ["--trials", "1"],
    "memory.py": ["--jobs", "1000"],
    "chaos.py": ["--restarts", "5"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated script names, e.g. reaction.py,chaos.py")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    for script, script_args in plan.items():
        if args.only and script not in args.only.split(","):
            continue
        print(f"== {script} {' '.join(script_args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *script_args], check=True)
    subprocess.run([sys.executable, str(HERE / "report.py"), "--chart"], check=True)


if __name__ == "__main__":
    main()
