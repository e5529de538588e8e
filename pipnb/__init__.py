"""pipnb — data-driven performance improvement plans for sales reps.

The names an analyst uses are re-exported here and listed in ``__all__``; they are imported on first
use so that ``pipnb``'s command line starts quickly.

Example
-------
>>> import pipnb as pn
>>> data = pn.load("data/demo")            # doctest: +SKIP
>>> pn.scorecard(data).query("flag == 'shortfall'")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load": "pipnb.sources",
    "write_layout": "pipnb.sources.layouts",
    "SalesData": "pipnb.data",
    "demo_data": "pipnb.demo",
    "DEMO_CASES": "pipnb.demo",
    "weekly_panel": "pipnb.metrics",
    "window_metrics": "pipnb.metrics",
    "scorecard": "pipnb.peers",
    "peer_ids": "pipnb.peers",
    "peers_of": "pipnb.peers",
    "plan_peers": "pipnb.peers",
    "flagged_reps": "pipnb.scan",
    "touch_gaps": "pipnb.metrics",
    "read_panel": "pipnb.batch",
    "report_data": "pipnb.batch.bundle",
    "team_card": "pipnb.batch.bundle",
    "demo_plan": "pipnb.batch",
    "diagnose": "pipnb.diagnosis",
    "Diagnosis": "pipnb.diagnosis",
    "draft_plan": "pipnb.drafting",
    "Plan": "pipnb.plan",
    "Policy": "pipnb.policy",
    "review": "pipnb.reviews",
    "Review": "pipnb.reviews",
    "DRIVER_METRICS": "pipnb.schema",
    "OUTCOME_METRICS": "pipnb.schema",
    "METRICS": "pipnb.schema",
    "check_parameters": "pipnb.parameters",
    "data_path": "pipnb.parameters",
    "init": "pipnb.workdir",
    "PipnbError": "pipnb.errors",
    "DataError": "pipnb.errors",
    "PlanError": "pipnb.errors",
    "UnknownRepError": "pipnb.errors",
}

_MODULES = ("plots", "text", "stats", "quality", "outcome")   # submodules a notebook uses as pn.plots, pn.text, ...

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str):
    if name in _MODULES:
        module = importlib.import_module(f"pipnb.{name}")
        globals()[name] = module
        return module
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipnb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
