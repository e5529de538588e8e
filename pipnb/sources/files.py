"""Reading CSV and Parquet files as exports really are: BOMs, `;` separators, text everywhere."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipnb.errors import DataError
from pipnb.ledger import row_column
from pipnb.limits import CELL_BYTES, FILE_COPIES, MAX_FIELD_CHARS, check_fields, check_fits, scan_csv
from pipnb.progress import one_line
from pipnb.validate import ROW


def read_table_file(path: Path) -> pd.DataFrame:
    """Read a CSV (UTF-8 with or without BOM, ``,`` or ``;`` separated) or Parquet file.

    CSV values stay text so that validation can cite the original value; a ``_row`` column
    holds each record's spreadsheet row (header = row 1).

    Raises
    ------
    DataError
        One line naming the file (and the line, row and column when it is one of them): not UTF-8, not a CSV, a
        line or a value over :mod:`pipnb.limits`' limits, or more rows than the memory left can hold.
    """
    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises many types
            raise DataError(f"cannot read Parquet file ({type(err).__name__}: {err})", file=path.name) from None
    else:
        frame, bounded = _read_csv(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[ROW] = row_column(frame.index)
    if path.suffix.lower() == ".parquet" or not bounded:
        check_fields(frame, path.name)
    return frame


def mapped_file(base: Path, relative: str, key: str) -> Path:
    """The file a source YAML names at ``key`` (relative to the YAML's folder), or one error naming the key."""
    path = base / relative
    if not path.is_file():
        raise DataError(f"file not found ({key} in the source YAML is relative to the YAML)", file=str(path))
    return path


def columns_shown(names, *, most: int = 20) -> str:
    """The column names a message lists: at most ``most``, each cut to 40 characters, with control characters
    and NUL shown escaped (a header is data: an error shows a bounded prefix of it, never a whole file)."""
    names = [str(n) for n in names]
    shown = [one_line(n.encode("unicode_escape").decode("ascii") if not n.isprintable() else n, 40)
             for n in names[:most]]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return (", ".join(shown) or "none") + more


def _check_text_file(path: Path) -> None:
    """Refuse, naming the file and never echoing it, what is not a table: a file the system says is empty but
    reads as something (``/proc/self/environ``), or one holding NUL bytes (binary, an environment block)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError as err:
        raise DataError(f"cannot be read ({err.strerror or err})", file=path.name) from None
    if size == 0 and head:
        raise DataError("is not a table file (the system reports no size for it: a device or /proc file); "
                        "export the table to a CSV or Parquet file", file=str(path))
    if b"\0" in head:
        raise DataError("is not a CSV table (it holds NUL bytes: a binary file?); export the table as CSV UTF-8",
                        file=str(path))


def _read_csv(path: Path) -> tuple[pd.DataFrame, bool]:
    """The table, and whether no value can be over :data:`~pipnb.limits.MAX_FIELD_CHARS` (each record one line,
    none longer: a value is no longer than its line)."""
    _check_text_file(path)                   # a /proc file or a binary one is named, never echoed
    lines, longest = scan_csv(path)          # no line over the limit, before pandas holds any of them
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            head = handle.readline()
        separator = ";" if head.count(";") > head.count(",") else ","
        _check_fits(path, lines, head.count(separator) + 1)
        frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            quoting=csv.QUOTE_MINIMAL)
        return frame, longest <= MAX_FIELD_CHARS and len(frame) + 1 == lines
    except UnicodeDecodeError:
        raise DataError("is not UTF-8 text; save it as CSV UTF-8", file=path.name) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty; it needs a header row and at least one data row",
                        file=path.name) from None
    except pd.errors.ParserError as err:
        raise DataError(f"is not a well-formed CSV ({str(err).strip()})", file=path.name) from None


def _check_fits(path: Path, lines: int, columns: int) -> None:
    """Stop before reading a table the memory left cannot hold (its text, and its cells once parsed)."""
    need = FILE_COPIES * path.stat().st_size + lines * columns * CELL_BYTES
    check_fits(need, what=f"reading its {max(lines - 1, 0):,} rows of {columns} columns", file=path.name,
               cut="export a shorter period or fewer columns (or one team at a time), or run where there is "
                   "more memory")
