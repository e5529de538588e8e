"""The batch layer: a lifecycle stage for many reps, as jobs for :func:`pipnb.runner.run_jobs`.

* :mod:`pipnb.batch.prepare` — what a batch shares, prepared once (data snapshot, weekly panel, policy);
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

from typing import TYPE_CHECKING

from pipnb._lazy import lazy_names

# Imported now: ``prepare`` names both a module and its function, and a report's bundle needs the module anyway.
from pipnb.batch.prepare import Batch, prepare, read_panel
from pipnb.workdir import plan_path, rep_dir  # the safe paths of a rep's plan and reports

if TYPE_CHECKING:   # the same names, for editors and type checkers
    from pipnb.batch.demo import demo_jobs, demo_plan
    from pipnb.batch.index import write_index
    from pipnb.batch.jobs import diagnose_jobs, draft_plans, find_plans, plan_jobs, review_jobs, scan_job

#: The other public names and the module that owns each, resolved on first use: a report's kernel imports
#: ``pipnb.batch.bundle`` (its data), which would otherwise load every job builder with this package.
_HOMES = {
    "pipnb.batch.demo": ("demo_jobs", "demo_plan"),
    "pipnb.batch.index": ("write_index",),
    "pipnb.batch.jobs": ("diagnose_jobs", "draft_plans", "find_plans", "plan_jobs", "review_jobs", "scan_job"),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())

__all__ = ["Batch", "demo_jobs", "demo_plan", "diagnose_jobs", "draft_plans", "find_plans", "plan_jobs", "plan_path",
           "prepare", "read_panel", "rep_dir", "review_jobs", "scan_job", "write_index"]
