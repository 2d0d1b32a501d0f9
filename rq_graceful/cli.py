"""The `rq-graceful` command: `check` a worker's settings, or watch the `demo`."""

from __future__ import annotations

import json
import os
import sys

import click

from . import __version__


@click.group()
@click.version_option(__version__, prog_name="rq-graceful")
def main() -> None:
    """Graceful shutdown for RQ workers."""


@main.command()
@click.option("--strict", is_flag=True, help="Exit 1 on a warning too, not only on an error.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, for machines.")
@click.option(
    "--command",
    metavar="CMDLINE",
    help="The worker's command line as the platform runs it (a Procfile line, a Docker CMD in shell form), "
    "to check that SIGTERM reaches the worker.",
)
def check(strict: bool, as_json: bool, command: str | None) -> None:
    """Show the effective settings, the shutdown timeline, and problems.

    Reads the same environment the worker will read. Exits 1 on an error (a
    setting the worker would refuse), and with --strict on a warning too, so
    that a deploy can run it first.
    """
    from ._check import check as build
    from ._check import render

    report = build(os.environ, command=command)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(render(report))
    sys.exit(report.exit_code(strict))


@main.command()
def demo() -> None:
    """Run a worker, restart it as a platform does, and show that nothing is lost (under a minute)."""
    from ._demo import run

    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
