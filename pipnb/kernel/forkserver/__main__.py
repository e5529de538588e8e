"""Start the fork server: ``python .../pipnb/kernel/forkserver/__main__.py --socket PATH [--idle S] [--preload M,...]``.

:mod:`pipnb.kernel.launcher` runs this file by path with the kernel's interpreter. It takes its own
folder off ``sys.path`` (where ``main``, ``server`` ... would shadow top-level modules in every
kernel) and imports the folder as the stand-alone package ``_pipnb_forkserver`` rather than as
:mod:`pipnb.kernel.forkserver`, so the server process, and every kernel forked from it, has no pipnb
module imported. Then it runs :func:`main.main`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

PACKAGE = "_pipnb_forkserver"


def load_package() -> types.ModuleType:
    """Import this folder as the package ``_pipnb_forkserver`` and return its ``main`` module."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]  # run by path: do not let this folder shadow top-level modules
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.main")


if __name__ == "__main__":
    sys.exit(load_package().main())
