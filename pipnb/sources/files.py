"""Reading CSV and Parquet files as exports really are: BOMs, `;` separators, text everywhere."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipnb.errors import DataError
from pipnb.ledger import row_column
from pipnb.progress import one_line
from pipnb.validate import ROW


def read_table_file(path: Path) -> pd.DataFrame:
    """Read a CSV (UTF-8 with or without BOM, ``,`` or ``;`` separated) or Parquet file.

    CSV values stay text so that validation can cite the original value; a ``_row`` column
    holds each record's spreadsheet row (header = row 1).
    """
    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises many types
            raise DataError(f"cannot read Parquet file ({type(err).__name__}: {err})", file=path.name) from None
    else:
        frame = _read_csv(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[ROW] = row_column(frame.index)
    return frame


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


def _read_csv(path: Path) -> pd.DataFrame:
    _check_text_file(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            head = handle.readline()
        separator = ";" if head.count(";") > head.count(",") else ","
        return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                           quoting=csv.QUOTE_MINIMAL)
    except UnicodeDecodeError:
        raise DataError("is not UTF-8 text; save it as CSV UTF-8", file=path.name) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty; it needs a header row and at least one data row",
                        file=path.name) from None
    except pd.errors.ParserError as err:
        raise DataError(f"is not a well-formed CSV ({str(err).strip()})", file=path.name) from None
