"""The error tree: every failure a user can act on is a RadarError with one clear line."""

from __future__ import annotations

from pathlib import Path

from cycles.secrets import redact


class RadarError(Exception):
    """Base of every error radar reports to a user; `str()` is the one line printed.

    `str()` never shows a secret: errors end up in history rows, Prefect states and logs.
    """

    exit_code = 1

    def __str__(self) -> str:
        return redact(super().__str__())


def error_text(exc: BaseException) -> str:
    """What to record or show of `exc`: a RadarError's line, else the type and message."""
    return str(exc) if isinstance(exc, RadarError) else f"{type(exc).__name__}: {exc}"


def shown_path(path: Path) -> str:
    """A file as errors name it: always absolute, whichever way it was given or found, so the
    line can be pasted into an editor from anywhere."""
    return str(Path(path).absolute())


class DeclarationError(RadarError):
    """A declaration (or a command-line argument) is wrong: nothing runs, exit code 2."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = Path(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file is not None:
            where = shown_path(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class UsageError(DeclarationError):
    """A bad command-line argument (exit code 2, like a bad declaration)."""


class ConnectorError(RadarError):
    """A metric source or action sink failed; names the connector involved."""


class DataError(ConnectorError):
    """The source answered, but its rows cannot be read as the declaration says (bad values)."""


class SchemaError(ConnectorError):
    """The source lacks a column the declaration names; `key` is the metric key that names it."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class ActionError(RadarError):
    """A Deployment action failed."""


class CheckError(RadarError):
    """A data check could not be evaluated (not: a check that failed, which is a result)."""


class StoreError(RadarError):
    """The history database could not be read or written."""


class AlreadyRunning(RadarError):
    """Another run holds the same outcome and period."""
