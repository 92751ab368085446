"""The command layer."""

from convdiff.cli.commands import cli, main

__all__ = ["cli", "main"]
