"""The thin command layer: one module per command; each parses its options into typed values, calls the
pipeline (or a suite), renders, and exits with the documented code. Nothing here imports a framework at
module level."""

from convdiff.cli import compare, diff, explain, layers, models, probe, run, studies, sweep  # noqa: F401 - registers the commands
from convdiff.cli.group import cli


def main() -> None:
    try:
        cli(prog_name="convdiff")
    finally:
        import signal

        # The command has written its result and chosen its exit code: a Ctrl-C or SIGTERM during the
        # interpreter's shutdown (frameworks' exit hooks, garbage collection) has nothing left to stop,
        # and would only print a traceback over a finished result.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


__all__ = ["cli", "main"]
