"""Statistics of improvement: did a rep on a plan change, beyond chance and beyond peers?

A rep is put on a plan after a bad stretch, so part of any later "improvement" is regression to the
mean. This module does not compare the plan period with the stretch that selected the rep (unless no
earlier data exists, and then every sentence says so); it answers, per plan metric:

* **baseline** -- a window that did not select the rep: by default the 12 weeks before the 12-week
  diagnosis window that put the rep on the plan (:func:`plan_windows`, with explicit fallbacks);
* **change** -- the rep's change from baseline to plan period *beyond what peers did over the same
  weeks* (difference in differences), by the model that fits the metric's kind:

  ==========================  ================================================================
  counts per week             two-way (rep x week) Poisson with working-day exposure, week effects
                              from peers; quasi-Poisson or negative-binomial variance
                              (:func:`count_change`)
  ratios                      binomial on period-pooled counts of cohorts (a first meeting's
                              follow-up within a fixed number of days; deals closed), the rep's own
                              unshrunk baseline, peers' week-standardized change (:func:`ratio_change`)
  days between touches        exponential model per opportunity with open gaps right-censored,
                              opportunity-clustered variance (:func:`gap_change`)
  ==========================  ================================================================

* **placebo** -- every peer is refitted as if it had been on the plan: when their z-scores spread wider
  than N(0, 1) (week-to-week correlation the model misses), the rep's standard error is widened by as
  much (:func:`placebo_inflation`); the rep's rank among them is reported (:func:`placebo_rank`);
* **four looks, several metrics** -- the checkpoints and the final review share one error budget per
  direction (Lan–DeMets O'Brien–Fleming spending, :func:`sequential_boundaries`), and the plan's focus
  metrics share it by Holm's step-down (:func:`sequential_holm`);
* **power** -- the smallest change the look's actual rule detects with 80% power (:func:`rule_mde`): when
  it exceeds the change the target asks for, the verdict is *too early to tell*, not *no improvement*;
* **trend** -- Mann-Kendall and Theil-Sen inside the plan period (:func:`trend_test`).

The verdict rule (:func:`decide_verdict`): *improved* / *worse* when the change's z-score crosses this
look's boundary (Holm across the focus metrics); otherwise *too early to tell* when the rule could not
have shown the change the target asks for, else *no clear change yet*. Metrics that are not an
improvement area are measured but not judged. The selection of reps (the team scan) uses funnel-plot
limits with over-dispersion (:mod:`~pipnb.stats.funnel`).

:func:`assess` ties these together and returns one verdict row per metric, with the facts a sentence
needs (:mod:`pipnb.sentences` words them for a sales manager). :func:`segmented_count_model` is the
interrupted-time-series model (level and slope change) that the Lopez Bernal et al. (2017) test reproduces.

All functions are pure: they never modify their inputs.

The package, one concern a module: :mod:`~pipnb.stats.windows` (baseline, diagnosis and plan windows),
:mod:`~pipnb.stats.counts`, :mod:`~pipnb.stats.ratios` and :mod:`~pipnb.stats.gaps` (the three models),
:mod:`~pipnb.stats.power`, :mod:`~pipnb.stats.trend`, :mod:`~pipnb.stats.sequential` (group-sequential
boundaries), :mod:`~pipnb.stats.verdicts` (Holm and the verdict rule), :mod:`~pipnb.stats.funnel` (control
limits for flagging shortfalls), :mod:`~pipnb.stats.assessment` (:func:`assess`),
:mod:`~pipnb.stats.its` (segmented regression) and :mod:`~pipnb.stats._common` (vocabulary, result
types, shared helpers). Statistics return numbers and facts (:func:`verdict_record`); the sentences are worded in
:mod:`pipnb.sentences` (:func:`~pipnb.sentences.describe_verdict`, ``METHOD_NOTE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipnb._lazy import lazy_names

if TYPE_CHECKING:   # the same names, for editors and type checkers
    from pipnb.stats._common import (
        IMPROVED,
        NO_CLEAR_CHANGE,
        NOT_JUDGED,
        TOO_EARLY,
        VERDICT_COLUMNS,
        VERDICTS,
        WORSE,
        MetricChange,
        Trend,
        autocorrelation_inflation,
        estimated_scale,
        placebo_inflation,
        placebo_rank,
        placebo_scatter,
    )
    from pipnb.stats.assessment import assess, measure_change, metric_kind, verdict_record
    from pipnb.stats.counts import count_change
    from pipnb.stats.funnel import funnel_limit, funnel_scale, funnel_z, null_variance, overdispersion
    from pipnb.stats.gaps import gap_change
    from pipnb.stats.its import SegmentedFit, segmented_count_model
    from pipnb.stats.power import mde_proportion, mde_rate_ratio, pooled_rate_ratio
    from pipnb.stats.ratios import ratio_change
    from pipnb.stats.sequential import information_fractions, obf_spending, sequential_boundaries
    from pipnb.stats.trend import trend_test
    from pipnb.stats.verdicts import (
        decide_verdict,
        detectable,
        holm,
        nothing_detectable,
        oriented_z,
        rule_mde,
        sequential_holm,
        target_change,
    )
    from pipnb.stats.windows import PlanWindows, Window, plan_windows, working_days

#: Each public name and the module that owns it. They resolve on first use: ``pipnb.peers`` needs only the
#: funnel limits (numpy), and importing every model here would load scipy into every command (0.8 s).
_HOMES = {
    "pipnb.stats._common": ("IMPROVED", "NO_CLEAR_CHANGE", "NOT_JUDGED", "TOO_EARLY", "VERDICT_COLUMNS",
                            "VERDICTS", "WORSE", "MetricChange", "Trend", "autocorrelation_inflation",
                            "estimated_scale", "placebo_inflation", "placebo_rank", "placebo_scatter"),
    "pipnb.stats.assessment": ("assess", "measure_change", "metric_kind", "verdict_record"),
    "pipnb.stats.counts": ("count_change",),
    "pipnb.stats.gaps": ("gap_change",),
    "pipnb.stats.its": ("SegmentedFit", "segmented_count_model"),
    "pipnb.stats.power": ("mde_proportion", "mde_rate_ratio", "pooled_rate_ratio"),
    "pipnb.stats.funnel": ("funnel_limit", "funnel_scale", "funnel_z", "null_variance", "overdispersion"),
    "pipnb.stats.ratios": ("ratio_change",),
    "pipnb.stats.sequential": ("information_fractions", "obf_spending", "sequential_boundaries"),
    "pipnb.stats.trend": ("trend_test",),
    "pipnb.stats.verdicts": ("decide_verdict", "detectable", "holm", "nothing_detectable", "oriented_z", "rule_mde",
                             "sequential_holm",
                             "target_change"),
    "pipnb.stats.windows": ("PlanWindows", "Window", "plan_windows", "working_days"),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())

__all__ = ["IMPROVED", "MetricChange", "NOT_JUDGED", "NO_CLEAR_CHANGE", "PlanWindows", "SegmentedFit", "TOO_EARLY",
           "Trend", "VERDICTS", "VERDICT_COLUMNS", "WORSE", "Window", "assess", "autocorrelation_inflation",
           "count_change", "decide_verdict", "detectable", "estimated_scale", "funnel_limit", "funnel_scale",
           "funnel_z", "gap_change", "holm", "information_fractions", "mde_proportion", "mde_rate_ratio",
           "measure_change", "metric_kind", "nothing_detectable", "null_variance", "obf_spending", "oriented_z",
           "overdispersion", "placebo_inflation", "placebo_rank", "placebo_scatter", "plan_windows",
           "pooled_rate_ratio", "ratio_change", "rule_mde", "segmented_count_model", "sequential_boundaries",
           "sequential_holm", "target_change", "trend_test", "verdict_record", "working_days"]
