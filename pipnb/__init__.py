"""pipnb — data-driven performance improvement plans for sales reps.

The names an analyst uses are listed in ``__all__`` and imported from their home module on first use, so that
``pipnb``'s command line starts quickly; the ``TYPE_CHECKING`` block names the same homes for editors and type
checkers.

Example
-------
>>> import pipnb as pn
>>> data = pn.load("data/demo")            # doctest: +SKIP
>>> pn.scorecard(data).query("flag == 'shortfall'")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipnb._lazy import lazy_names
from pipnb._version import __version__

if TYPE_CHECKING:
    from pipnb import outcome, plots, quality, stats, text
    from pipnb.batch import demo_plan, read_panel
    from pipnb.batch.bundle import report_data, team_card
    from pipnb.data import SalesData
    from pipnb.demo import DEMO_CASES, demo_data
    from pipnb.diagnosis import Diagnosis, diagnose
    from pipnb.drafting import draft_plan
    from pipnb.errors import DataError, PipnbError, PlanError, UnknownRepError
    from pipnb.locks import LockedError
    from pipnb.metrics import touch_gaps, weekly_panel, window_metrics
    from pipnb.parameters import check_parameters, data_path
    from pipnb.peers import peer_ids, peers_of, plan_peers, scorecard
    from pipnb.plan import Plan
    from pipnb.policy import Policy
    from pipnb.reviews import Review, review
    from pipnb.scan import flagged_reps
    from pipnb.schema import DRIVER_METRICS, METRICS, OUTCOME_METRICS
    from pipnb.sources import load
    from pipnb.sources.layouts import write_layout
    from pipnb.workdir import init

#: Each public name and the module that owns it (the same as the imports above).
_HOMES = {
    "pipnb.sources": ("load",),
    "pipnb.sources.layouts": ("write_layout",),
    "pipnb.data": ("SalesData",),
    "pipnb.demo": ("demo_data", "DEMO_CASES"),
    "pipnb.metrics": ("weekly_panel", "window_metrics", "touch_gaps"),
    "pipnb.peers": ("scorecard", "peer_ids", "peers_of", "plan_peers"),
    "pipnb.scan": ("flagged_reps",),
    "pipnb.batch": ("read_panel", "demo_plan"),
    "pipnb.batch.bundle": ("report_data", "team_card"),
    "pipnb.diagnosis": ("diagnose", "Diagnosis"),
    "pipnb.drafting": ("draft_plan",),
    "pipnb.plan": ("Plan",),
    "pipnb.policy": ("Policy",),
    "pipnb.reviews": ("review", "Review"),
    "pipnb.schema": ("DRIVER_METRICS", "OUTCOME_METRICS", "METRICS"),
    "pipnb.parameters": ("check_parameters", "data_path"),
    "pipnb.workdir": ("init",),
    "pipnb.errors": ("PipnbError", "DataError", "PlanError", "UnknownRepError"),
    "pipnb.locks": ("LockedError",),
}
#: Submodules a notebook uses as ``pn.plots``, ``pn.text``, ...
_MODULES = ("plots", "text", "stats", "quality", "outcome")

__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals(), modules=_MODULES)

__all__ = ["DEMO_CASES", "DRIVER_METRICS", "DataError", "Diagnosis", "LockedError", "METRICS", "OUTCOME_METRICS",
           "PipnbError", "Plan", "PlanError", "Policy", "Review", "SalesData", "UnknownRepError", "__version__",
           "check_parameters", "data_path", "demo_data", "demo_plan", "diagnose", "draft_plan", "flagged_reps", "init",
           "load", "outcome", "peer_ids", "peers_of", "plan_peers", "plots", "quality", "read_panel", "report_data",
           "review", "scorecard", "stats", "team_card", "text", "touch_gaps", "weekly_panel", "window_metrics",
           "write_layout"]
