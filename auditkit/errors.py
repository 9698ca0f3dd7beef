"""The one exception tree of auditkit.

Every error auditkit raises on purpose derives from :class:`AuditkitError`, so a script can
catch them all with one ``except`` and let real bugs through::

    AuditkitError
    ├── ConfigError            bad audit.yaml, unknown preset, bad parameter value
    ├── InputError             a client file cannot be used
    │   ├── UnknownFormatError     no loader recognises the file
    │   ├── NothingParsedError     a loader recognised it but produced no events
    │   ├── MappingError           an audit.yaml map: does not fit the file (a column is missing)
    │   ├── SchemaError            a frame does not match its canonical schema
    │   └── NothingReadableError   a client folder holds no file any loader could read
    ├── ParseReportError       a parse report does not add up (read ≠ parsed + skipped): a loader bug
    ├── CollectorError         a live collector could not read a server (read-only, never writes)
    └── RunError               a notebook or batch run failed
        └── NotebookError          one notebook raised; the executed notebook was still written

Exceptions carry context as attributes (``path``, ``line``, ``expected``, ``hint``) rather than
only in the message, so callers never parse strings. ``str(exc)`` is one line a user can act on.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuditkitError",
    "CollectorError",
    "ConfigError",
    "InputError",
    "MappingError",
    "NotebookError",
    "NothingParsedError",
    "NothingReadableError",
    "ParseReportError",
    "RunError",
    "SchemaError",
    "UnknownFormatError",
]


class AuditkitError(Exception):
    """Root of every error auditkit raises on purpose.

    ``hint`` says what to do next; it is appended to the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(AuditkitError):
    """A setting, preset, parameter or ``audit.yaml`` entry is invalid."""


class InputError(AuditkitError):
    """A client file cannot be used. ``path`` names it; ``line`` points into it when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path:
            where = f"{self.path}:{line}: " if line else f"{self.path}: "
        super().__init__(f"{where}{message}", hint=hint)


class UnknownFormatError(InputError):
    """No loader recognises the file. ``candidates`` lists the formats that were tried."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        candidates: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        self.candidates = candidates
        super().__init__(message, path=path, hint=hint)


class NothingParsedError(InputError):
    """A loader read the file but produced nothing.

    ``expected`` says what the loader looked for, ``report`` is the parse report (so the caller
    can still show what was skipped and why), and ``hint`` names the likely cause.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        expected: str = "",
        report: object | None = None,
        hint: str | None = None,
    ) -> None:
        self.expected = expected
        self.report = report
        text = f"{message}; expected {expected}" if expected else message
        super().__init__(text, path=path, hint=hint)


class MappingError(InputError):
    """An audit.yaml ``map:`` entry does not fit the file it matched.

    ``missing`` lists the columns the target needs and the file lacks, ``have`` the columns the
    file has, and ``suggestion`` the ``map:`` line to add (with guessed file columns).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        missing: list[str] | None = None,
        have: list[str] | None = None,
        suggestion: str = "",
    ) -> None:
        self.missing = list(missing or [])
        self.have = list(have or [])
        self.suggestion = suggestion
        text = message + (f"; the file has: {', '.join(self.have)}" if self.have else "")
        hint = f"add to audit.yaml: {suggestion}" if suggestion else None
        super().__init__(text, path=path, hint=hint)


class SchemaError(InputError):
    """A frame does not match its canonical schema (missing column, wrong type)."""


class NothingReadableError(InputError):
    """No file of a client folder could be read, so there is nothing to audit.

    ``path`` is the folder; ``found`` maps what became of its files ('unrecognised', 'error',
    'documentation', 'ignored') to how many there were, so the message says what was there.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        found: dict[str, int] | None = None,
        hint: str | None = None,
    ) -> None:
        self.found = dict(found or {})
        super().__init__(message, path=path, hint=hint)


class ParseReportError(AuditkitError):
    """A loader's parse report does not add up: read ≠ parsed + skipped.

    Raised by :meth:`auditkit.loaders.result.ParseReport.check` (a real check, kept under
    ``python -O``); it is a bug in the loader, never a property of the file, so it names the
    counts for the bug report. ``path`` is the file.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class CollectorError(AuditkitError):
    """A live, read-only collector could not read a server."""


class RunError(AuditkitError):
    """A notebook run or a batch failed."""


class NotebookError(RunError):
    """One notebook raised. ``output_path`` is the executed notebook, written before raising."""

    def __init__(
        self,
        message: str,
        *,
        notebook: str,
        output_path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.notebook = notebook
        self.output_path = output_path
        super().__init__(f"{notebook}: {message}", hint=hint)
