"""The thin command layer: one module per command; each parses its options into typed values, calls the
pipeline (or a suite), renders, and exits with the documented code. Nothing here imports a framework at
module level."""

from convdiff.cli import compare, diff, explain, layers, probe, run, studies, sweep  # noqa: F401 - registers the commands
from convdiff.cli.group import cli


def main() -> None:
    cli(prog_name="convdiff")


__all__ = ["cli", "main"]
