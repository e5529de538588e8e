"""The batch layer: a lifecycle stage for many reps, as jobs for :func:`pipnb.runner.run_jobs`.

* :mod:`pipnb.batch.prepare` — what a batch shares, prepared once (data snapshot, weekly panel, policy)
  and the safe paths of a rep's reports and plan;
* :mod:`pipnb.batch.jobs` — one job builder per stage, plan drafting, finding the plans to review;
* :mod:`pipnb.batch.index` — ``reports/index.html`` rebuilt from the files on disk;
* :mod:`pipnb.batch.demo` — the demo lifecycle.

The command line calls these; :mod:`pipnb.runner` executes what they build.

Example
-------
>>> from pipnb import batch                                                  # doctest: +SKIP
>>> from pipnb.runner import run_jobs                                        # doctest: +SKIP
>>> b = batch.prepare("data/demo", reports="reports", params="params")       # doctest: +SKIP
>>> results = run_jobs(batch.diagnose_jobs(b, ["R07"]))                      # doctest: +SKIP
>>> batch.write_index(b.reports, b.params, results)                          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported now: ``prepare`` names both a module and its function, and a report's bundle needs the module anyway.
from pipnb.batch.prepare import Batch, plan_path, prepare, read_panel, rep_dir

#: The other public names and the module that owns each, resolved on first use: a report's kernel imports
#: ``pipnb.batch.bundle`` (its data), which would otherwise load every job builder with this package.
_HOMES = {
    "pipnb.batch.demo": ("demo_jobs", "demo_plan"),
    "pipnb.batch.index": ("write_index",),
    "pipnb.batch.jobs": ("diagnose_jobs", "draft_plans", "find_plans", "plan_jobs", "review_jobs", "scan_job"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}

__all__ = ["Batch", "demo_jobs", "demo_plan", "diagnose_jobs", "draft_plans", "find_plans", "plan_jobs", "plan_path",
           "prepare", "read_panel", "rep_dir", "review_jobs", "scan_job", "write_index"]


def __getattr__(name: str) -> Any:
    """Resolve a public name from the module that owns it, on first use."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'pipnb.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
