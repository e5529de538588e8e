"""Exceptions raised by pipnb.

Every error a user can cause is a :class:`PipnbError`; the CLI prints its message
as one line and exits non-zero without a traceback::

    PipnbError
    ├── DataError          a source table is missing, malformed or inconsistent
    ├── SourceError        a source YAML / URL cannot be used
    ├── PlanError          a plan or policy YAML is invalid
    ├── UnknownRepError    a rep id is not in the data
    ├── JobError           a batch's jobs cannot run as given (e.g. two write the same file)
    └── RunError           a batch run finished with failed jobs
"""

from __future__ import annotations


class PipnbError(Exception):
    """Root of every error a user can cause; ``str(err)`` is one line that says how to fix it."""

    exit_code = 2
    #: The longest message shown: whatever value a message quotes (a 100 KB cell, a pasted file), the line a user
    #: sees stays readable and bounded; the rest is counted, never printed.
    MAX_CHARS = 2000

    def __init__(self, message: str):
        text = " ".join(str(message).split())
        if len(text) > self.MAX_CHARS:
            text = f"{text[:self.MAX_CHARS]}… ({len(text) - self.MAX_CHARS:,} more characters not shown)"
        super().__init__(text)


class DataError(PipnbError):
    """A table of a source is missing, malformed or inconsistent.

    Parameters
    ----------
    message
        What failed and how to fix it.
    file, column, row
        Where it failed, when known (``row`` is the spreadsheet row: the header is row 1).
    """

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 row: int | None = None):
        self.file, self.column, self.row = file, column, row
        where = file or ""
        if row is not None:
            where += f" row {row}"
        super().__init__(f"{where}: {message}" if where else message)


class SourceError(PipnbError):
    """A source (folder, mapping YAML, database URL) cannot be opened or is misconfigured."""


class PlanError(PipnbError):
    """A plan or policy YAML is invalid; ``key`` names the offending key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file, self.key = file, key
        prefix = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnknownRepError(PipnbError):
    """A rep id is not present in the data."""


class JobError(PipnbError):
    """The jobs handed to :func:`pipnb.runner.run_jobs` cannot run as given (e.g. two write the same file)."""


class RunError(PipnbError):
    """A batch finished with one or more failed jobs."""

    exit_code = 1
