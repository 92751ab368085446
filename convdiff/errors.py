"""Errors that reach the edge of the program, each carrying its exit code.

The core raises these; only the CLI turns them into a one-line message and an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
"""128 + SIGTERM, as a shell reports a process a signal ended: what `kill` and CI runners send to stop a job."""


class ConvdiffError(Exception):
    """Base class: a message fit for one line, and the exit code it maps to."""

    exit_code = EXIT_USAGE


class BadInputError(ConvdiffError, ValueError):
    """The user asked for something invalid: a wrong shape, an unknown name, a bad file."""

    exit_code = EXIT_USAGE


class SpecConflictError(BadInputError):
    """Fields valid one by one that do not make a convolution together (a kernel larger than the padded
    input, a stride longer than it, a weights file for other channels): a sweep skips such a config
    with the reason, where any other bad value stops it before it starts."""


class BadFileError(BadInputError):
    """A file the user named cannot be used: missing, not a regular file, too large, or malformed.

    A sweep refuses these before its first config runs (exit 2) instead of skipping every config.
    """


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the CLI's signal handler where Ctrl-C raises KeyboardInterrupt.

    A subclass of KeyboardInterrupt, so every place that stops cleanly on Ctrl-C stops the same way
    on SIGTERM; only the exit code (143) and the word ("terminated") differ.
    """


def stop_word(exc: BaseException) -> str:
    return "terminated" if isinstance(exc, Terminated) else "interrupted"


def stop_code(exc: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


class InterruptedRun(ConvdiffError):
    """Ctrl-C (or SIGTERM) during a run of several cases: carries the cases completed so far (exit 130 or 143)."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, completed: int, total: int, partial: object = None, terminated: bool = False,
                 what: str = "cases"):
        self.word = "terminated" if terminated else "interrupted"
        super().__init__(f"{self.word} after {completed} of {total} {what}")
        self.completed = completed
        self.total = total
        self.partial = partial
        """Whatever the interrupted function had finished (for `run_targets`: its RunOutcome)."""
        self.terminated = terminated
        self.exit_code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
