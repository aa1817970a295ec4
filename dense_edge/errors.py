"""Exceptions for mistakes a user can fix.

A :class:`UserError` carries a one-line message that names the file or key and the fix; the CLI
prints it without a traceback and exits non-zero. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input: a file, a recipe key, a flag."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.path = Path(path) if path is not None else None
        self.fix = fix
        text = message
        if path is not None and str(path) not in message:
            text = f"{path}: {message}"
        if fix:
            text = f"{text} ({fix})"
        super().__init__(text)


class RecipeError(UserError):
    """A recipe key is unknown, of the wrong type, or names a missing file."""


class DataError(UserError):
    """A data source is missing, empty, corrupt or inconsistent."""


class WeightsError(UserError):
    """A checkpoint does not exist, cannot be read, or does not fit the architecture."""


class StageError(UserError):
    """A stage cannot run: a missing upstream artifact, an existing output without --force."""


class MissingDependencyError(UserError):
    """An optional runtime (OpenVINO, TensorRT, a provider) is not installed or not present."""


class CheckFailed(Exception):
    """A measured check (parity, accuracy budget, regression) failed. Exit code 1, not 2."""

    exit_code = 1
