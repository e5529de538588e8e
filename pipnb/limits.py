"""Bounded resources: how long a line of an input file may be, how long one value, and whether a load fits.

A CRM export is read whole into memory, so one hostile or broken file could take every byte of the machine
(a 100 MB line, a table of millions of rows) and end in the out-of-memory killer, with no message. These limits turn
that into one line naming the file and the line, said before the memory is taken:

* :data:`MAX_LINE_BYTES`: no line of a CSV is longer (a CRM row is a few hundred bytes);
* :data:`MAX_FIELD_CHARS`: no value is longer (the longest text field Salesforce keeps, 131,072 characters,
  which is also the default limit of Python's ``csv`` module);
* :func:`check_fits`: the memory a load is estimated to need against the memory this process can still use
  (:func:`available_memory`: the smallest of the machine's available memory, the container's limit and the
  process's address-space limit), stopping with one line that says how to cut the data when it cannot fit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipnb.errors import DataError

try:
    import resource
except ImportError:      # Windows: no address-space limit to read
    resource = None  # type: ignore[assignment]

#: The longest line a CSV may have, in bytes.
MAX_LINE_BYTES = 1 << 20
#: The longest value a table may hold, in characters.
MAX_FIELD_CHARS = 131_072
#: Bytes a load takes per cell of a CSV, on top of :data:`FILE_COPIES` times the file's size: measured through
#: :func:`pipnb.load` on a 1,019,525-row ``activities.csv`` of 6 columns (57 MB; a peak of 341 MB, 47 bytes a cell
#: beyond two copies of the file), rounded up.
CELL_BYTES = 50
#: How many times a file's bytes a load holds at its peak (the text read, and its parsed copy).
FILE_COPIES = 2
#: Bytes the weekly panel (:func:`pipnb.metrics.weekly_panel`) takes at its peak per rep and week: 3,750 measured
#: with ``tracemalloc`` for 5,024 reps over 56 weeks (18 metric rows per rep-week), rounded up.
PANEL_CELL_BYTES = 4000
#: Below this, no estimate is made: any machine has it.
SMALL = 64 << 20
_BLOCK = 1 << 22


def scan_csv(path: Path, *, max_line: int = MAX_LINE_BYTES) -> tuple[int, int]:
    """The number of lines of the CSV at ``path`` and the bytes of its longest, read in blocks without holding it.

    Raises
    ------
    DataError
        Naming the file and the first line longer than ``max_line`` bytes.
    """
    lines = current = longest = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            if not len(ends):
                current += len(block)
                if current > max_line:
                    raise _too_long(path, lines + 1, max_line)
                continue
            lengths = np.diff(ends, prepend=-1) - 1      # each line's length without its "\n"
            lengths[0] += current
            over = np.flatnonzero(lengths > max_line)
            if len(over):
                raise _too_long(path, lines + int(over[0]) + 1, max_line)
            longest = max(longest, int(lengths.max()))
            lines += len(ends)
            current = len(block) - int(ends[-1]) - 1
            if current > max_line:
                raise _too_long(path, lines + 1, max_line)
    return lines + (current > 0), max(longest, current)


def _too_long(path: Path, line: int, limit: int) -> DataError:
    return DataError(f"line {line} is longer than {limit // 1024:,} KB, the limit for one row of an export; "
                     "a CRM row is a few hundred bytes: remove that line or export the table again",
                     file=path.name)


def check_fields(frame, file: str) -> None:
    """Raise :class:`DataError` naming ``file``, the row and the column of the first value longer than
    :data:`MAX_FIELD_CHARS` characters (``frame``: text columns and a ``_row`` column, as read)."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind in "biufcmM":                  # numbers and times: no long value to find
            continue
        lengths = values.str.len()
        if lengths.max() > MAX_FIELD_CHARS:
            at = int(np.argmax(lengths.to_numpy() > MAX_FIELD_CHARS))
            row = int(frame["_row"].iloc[at]) if "_row" in frame.columns else at + 2
            raise DataError(f"the value of column '{str(column)[:40]}' is {int(lengths.iloc[at]):,} characters "
                            f"long, over the limit of {MAX_FIELD_CHARS:,}; shorten it or leave that column out of "
                            "the export", file=file, row=row)


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the machine's available memory, its container's
    (cgroup) room and its address-space limit; None when none of them can be read (not Linux)."""
    room = [_meminfo_available(), _cgroup_room(), _address_space_room()]
    known = [r for r in room if r is not None]
    return min(known) if known else None


def check_fits(need: int, *, what: str, cut: str, file: str | None = None) -> None:
    """Stop with one line when ``need`` bytes (an estimate) cannot fit in :func:`available_memory`.

    Parameters
    ----------
    need
        The estimated bytes.
    what
        What needs them (``"reading activities.csv (2,000,000 rows)"``).
    cut
        How to cut the data so that it fits.
    """
    if need < SMALL:
        return
    room = available_memory()
    if room is not None and need > room:
        raise DataError(f"{what} needs about {_size(need)} of memory and {_size(room)} is available: {cut}",
                        file=file)


def _size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def _address_space_room() -> int | None:
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as handle:
            size = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmSize:"))
    except (OSError, ValueError, StopIteration):
        return None
    return max(0, soft - size)
