"""Cheap whole-column tests on text columns, so that loading millions of rows does only the work they need.

Loading checks every id column for repeats and strips every text value. On pandas' Arrow-backed ``str``
columns both are costly (a hash table of millions of distinct strings; a new copy of every string) and almost
always find nothing. These tests read Arrow's buffers directly and answer in one vectorized pass:

- :func:`maybe_padded`: whether any value could start or end with white space (or is empty), so that
  stripping can be skipped when none can;
- :func:`maybe_upper`: whether any value could hold a capital letter, so that lower-casing can be skipped;
- :func:`has_duplicates`: whether any non-missing value occurs twice, from one 64-bit hash per value and a
  sort (values whose hashes repeat are then compared exactly).

Both are exact in what they promise (``maybe_padded`` False means stripping changes nothing and no value is
empty; ``has_duplicates`` is pandas' ``duplicated().any()``), and fall back to pandas for other dtypes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc  # pandas has imported both already: free here

__all__ = ["has_duplicates", "maybe_padded", "maybe_upper"]

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)   # 2^64 / golden ratio, odd: a common multiplicative hash constant
_SHIFT = np.uint64(29)


def _arrow_chunks(values: pd.Series):
    """The non-empty Arrow string chunks behind ``values`` (zero-copy), or None when it is not Arrow-backed text."""

    dtype = values.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    array = pa.array(values)
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    if not all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks):
        return None
    return [chunk for chunk in chunks if len(chunk)]


def _offsets(chunk) -> np.ndarray:
    """The ``len(chunk) + 1`` value offsets of an Arrow (large) string array, as int64."""

    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    buffer = chunk.buffers()[1]
    return np.frombuffer(buffer, dtype=width, count=len(chunk) + 1,
                         offset=chunk.offset * np.dtype(width).itemsize).astype(np.int64, copy=False)


def _valid(chunk) -> np.ndarray:
    """Whether each value of an Arrow array is present, from its validity bitmap (bits, least significant first)."""
    bitmap = chunk.buffers()[0]
    if bitmap is None:
        return np.ones(len(chunk), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[chunk.offset:chunk.offset + len(chunk)].view(bool)


def _bytes(chunk) -> np.ndarray:
    data = chunk.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else np.zeros(0, np.uint8)


def maybe_padded(values: pd.Series) -> bool:
    """Whether any non-missing value of ``values`` may start or end with white space, or is empty.

    False guarantees that ``values.str.strip()`` changes nothing and that no value equals ``""``. The test
    reads each value's first and last byte: white space is either an ASCII byte up to 0x20 or a non-ASCII
    character (its UTF-8 bytes are all >= 0x80), so a value whose end bytes are printable ASCII cannot carry
    any. True for anything that is not an Arrow-backed string column (the caller strips, as before).
    """
    chunks = _arrow_chunks(values)
    if chunks is None:
        return True
    for chunk in chunks:
        offsets, data = _offsets(chunk), _bytes(chunk)
        starts, ends = offsets[:-1], offsets[1:]
        if chunk.null_count:
            if chunk.null_count == len(chunk):
                continue
            if (_valid(chunk) & (np.diff(offsets) == 0)).any():    # an empty value (not a missing one)
                return True
            # A missing value's slot is read too: its edge bytes are a neighbour's edge bytes (or, clipped, the
            # buffer's last), so it can only make the answer a needless True, never a wrong False.
            starts = np.minimum(starts, data.size - 1)
        elif not np.diff(offsets).all():                           # an empty value
            return True
        for edge in (data[starts], data[ends - 1]):
            # b - 0x21 (wrapping): bytes up to 0x20 and from 0x80 land at 0x5F and above, printable ASCII below
            if ((edge - np.uint8(0x21)) >= np.uint8(0x5F)).any():
                return True
    return False


def maybe_upper(values: pd.Series) -> bool:
    """Whether any value of ``values`` may hold an upper-case letter.

    False guarantees that ``values.str.lower()`` changes nothing: no byte of the values is an ASCII capital,
    and none is non-ASCII (a character that could have a lower case takes bytes from 0x80 up in UTF-8). True
    for anything that is not an Arrow-backed string column.
    """
    chunks = _arrow_chunks(values)
    if chunks is None:
        return True
    for chunk in chunks:
        offsets = _offsets(chunk)
        data = _bytes(chunk)[offsets[0]:offsets[-1]]        # this chunk's values (a missing one has none)
        if ((data - np.uint8(0x41)) < np.uint8(26)).any() or (data >= np.uint8(0x80)).any():
            return True
    return False


def has_duplicates(values: pd.Series) -> bool:
    """Whether any non-missing value of ``values`` occurs more than once (``values.dropna().duplicated().any()``).

    Each value is hashed to 64 bits from its length and its bytes, padded with spaces to the longest value's
    width (at least 8 bytes) and read as 8-byte words (in place when a chunk's values all have that width;
    the last word may overlap the one before); the hashes are sorted, and only when two are equal are the
    values compared exactly by pandas. Not Arrow-backed text, or values whose characters take several bytes
    (padding counts characters, so their widths differ): pandas directly.
    """
    present = values.dropna() if values.hasnans else values     # (dropna copies every string, even with no NA)
    chunks = _arrow_chunks(present)
    if chunks is None or len(present) < 2:
        return bool(present.duplicated().any())
    width = max(8, *(int(np.diff(_offsets(chunk)).max()) for chunk in chunks))
    hashes = [_hashes(chunk, width) for chunk in chunks]
    if any(h is None for h in hashes):
        return bool(present.duplicated().any())
    hashes = np.concatenate(hashes)
    hashes.sort()                             # in place: no second column of millions of hashes
    if not (hashes[1:] == hashes[:-1]).any():
        return False
    return bool(present.duplicated().any())   # a repeated hash: a true repeat, or (rarely) a collision


def _hashes(chunk, width: int) -> np.ndarray | None:
    """One 64-bit hash per value of a string chunk without missing values (equal values, equal hashes), the
    values padded to ``width`` bytes; None when padding cannot give every value that width (non-ASCII)."""

    offsets = _offsets(chunk)
    lengths = np.diff(offsets)
    fixed = chunk
    if not (lengths == width).all():
        fixed = pc.utf8_rpad(chunk, width=width, padding=" ")
        offsets = _offsets(fixed)
        if not (np.diff(offsets) == width).all():
            return None
    data, first = _bytes(fixed), int(offsets[0])
    hashes = lengths.astype(np.uint64) * _MULTIPLIER    # the length keeps "a" apart from "a" + padding
    starts = list(range(0, width - 7, 8)) + ([width - 8] if width % 8 else [])
    for start in starts:           # 8-byte words read in place, one every ``width`` bytes
        word = np.ndarray((len(lengths),), dtype=np.uint64, buffer=data, offset=first + start, strides=(width,))
        hashes ^= word
        hashes *= _MULTIPLIER
        hashes ^= hashes >> _SHIFT
    return hashes


def codes_in(values: pd.Series, universe, *, dtype=np.int64) -> np.ndarray:
    """Position of each value in ``universe`` (-1 when absent or missing), by Arrow's C++ hash lookup.

    ``dtype=np.int32`` (Arrow's own) skips widening the positions: the array is then a read-only view of the
    Arrow result (its chunks combined in Arrow's memory pool, which reuses freed memory), not a fresh copy.
    """
    found = pc.index_in(_arrow_strings(values), value_set=_arrow_strings(universe)).fill_null(-1)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks()
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=dtype)


def _arrow_strings(values):
    """An Arrow string array (zero-copy for pandas' Arrow-backed ``str`` columns)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        return pa.array(values)
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)
