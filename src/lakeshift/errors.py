"""Expected errors. The CLI prints each as one line and exits non-zero; anything
else is a bug and keeps its traceback (under --debug)."""

from __future__ import annotations


def one_line(text: str) -> str:
    """A driver's multi-line message as one line: libpq, for one, puts its hint
    on a second line and repeats message and hint for every address it tried."""
    lines: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if line and line not in lines:
            lines.append(line)
    joined = ""
    for line in lines:
        joined += line if not joined else (" " if joined[-1] in ".?!:;,(" else "; ") + line
    return joined


class LakeshiftError(Exception):
    """lakeshift failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(LakeshiftError):
    """The configuration is invalid."""


class MissingVariableError(ConfigError):
    """A connection uses an environment variable that is not set."""


class IdentifierError(ConfigError):
    """A table, column or schema name is not allowed."""


class SourceError(LakeshiftError):
    """Reading the source database failed."""


class TransientSourceError(SourceError):
    """A transient source error (connection lost, lock wait): worth a retry."""


class LakeError(LakeshiftError):
    """Reading or writing the lake failed."""


class LoadError(LakeshiftError):
    """Loading into the target failed."""


class SchemaChangeError(LoadError):
    """The source schema changed in a way the target cannot follow."""


class ValidationFailed(LoadError):
    """A batch failed its validation rules and was not loaded."""


class DeletesRefused(LakeshiftError):
    """A delete batch larger than max_delete_fraction of the target was not written."""


class LockBusyError(LakeshiftError):
    """Another lakeshift run holds the lock for this table."""


class ConnectionFailed(LakeshiftError):
    """A connection could not be opened."""
