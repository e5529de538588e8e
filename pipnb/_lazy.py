"""Names a package resolves on first use, from the module that owns each (a package's import stays cheap).

The one mechanism for it: ``pipnb``, ``pipnb.stats`` and ``pipnb.batch`` each list their names' homes and
import the same names under ``TYPE_CHECKING``, so editors and type checkers see what the package offers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def lazy_names(package: str, homes: dict[str, tuple[str, ...]], namespace: dict[str, Any], *,
               modules: Iterable[str] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for the names of ``homes`` (module -> names it owns).

    A name is imported from its module on first use and kept in ``namespace`` (the package's ``globals()``), so
    later uses are plain attribute reads. ``modules`` are submodules resolved the same way (``pn.plots``).
    """
    home = {name: module for module, names in homes.items() for name in names}
    submodules = {name: f"{package}.{name}" for name in modules}

    def __getattr__(name: str) -> Any:
        if name in submodules:
            value = importlib.import_module(submodules[name])
        elif name in home:
            value = getattr(importlib.import_module(home[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(home) | set(submodules))

    return __getattr__, __dir__


class LazyModule:
    """A module imported on its first attribute read: ``sps = LazyModule("scipy.stats")``, then ``sps.norm`` as
    usual. A command that computes no statistic (``pipnb plan acknowledge``, ``pipnb check``) never pays the
    0.7 s of importing scipy.stats; the report kernels preload it (``pipnb.kernel.forkserver``)."""

    def __init__(self, name: str) -> None:
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self.__dict__["_lazy_name"]), attr)
        self.__dict__[attr] = value          # later reads are plain attribute reads
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_lazy_name']!r}>"


#: scipy's modules as pipnb's statistics use them, each imported on first use (one handle each, shared).
sps = LazyModule("scipy.stats")
optimize = LazyModule("scipy.optimize")
signal = LazyModule("scipy.signal")
