"""Errors that reach the edge of the program, each carrying its exit code.

The core raises these; only the CLI turns them into a one-line message and an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_INTERRUPTED = 130


def install_command(extra: str) -> str:
    """The command that installs an optional extra; it works from a checkout (convdiff is not on the package index)."""
    return f"pip install -e '.[{extra}]' (from a convdiff checkout)"


class ConvdiffError(Exception):
    """Base class: a message fit for one line, and the exit code it maps to."""

    exit_code = EXIT_USAGE


class BadInputError(ConvdiffError, ValueError):
    """The user asked for something invalid: a wrong shape, an unknown name, a bad file."""

    exit_code = EXIT_USAGE


class BackendUnavailableError(ConvdiffError):
    """A backend cannot run here, typically a missing optional dependency."""

    exit_code = EXIT_BACKEND


class BackendFailedError(ConvdiffError):
    """A backend's framework raised while running a valid spec."""

    exit_code = EXIT_BACKEND

    def __init__(self, backend: str, message: str):
        super().__init__(f"backend '{backend}' failed: {message}")
        self.backend = backend


class FrameworkError(ConvdiffError):
    """A framework raised in shared code that knows no backend (e.g. drawing a kernel through Keras).

    The backend guard (`convdiff.backends.guard.run_guarded`) relabels it as the failing side's
    BackendFailedError, so the message still names the backend.
    """

    exit_code = EXIT_BACKEND


class InterruptedRun(ConvdiffError):
    """Ctrl-C during a run of several cases: carries the cases completed so far (exit 130)."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, completed: int, total: int, partial: object = None):
        super().__init__(f"interrupted after {completed} of {total} cases")
        self.completed = completed
        self.total = total
        self.partial = partial
        """Whatever the interrupted function had finished (for `execute_run`: (outcomes, skipped))."""
