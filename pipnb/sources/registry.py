"""The source YAML formats: ``format: NAME`` -> the adapter that reads it (each adapter module registers its own)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # pandera (behind pipnb.validate) is imported only when data is validated
    from pipnb.validate import RawTable

Reader = Callable[[dict, Path], "dict[str, RawTable]"]

#: adapters for source YAML ``format:`` values; each adapter module registers its own here
FORMATS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    """Register a source YAML ``format`` adapter (a function ``(config, yaml_dir) -> raw tables``)."""
    def wrap(reader: Reader) -> Reader:
        FORMATS[name] = reader
        return reader
    return wrap
