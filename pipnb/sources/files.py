"""Reading CSV and Parquet files as exports really are: BOMs, `;` separators, text everywhere."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipnb.errors import DataError
from pipnb.ledger import row_column
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


def _read_csv(path: Path) -> pd.DataFrame:
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
