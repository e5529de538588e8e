"""Multiplicity and verdicts: Holm across metrics with group-sequential boundaries across looks, the
change a target asks for, whether it was detectable, and the verdict rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from pipnb.stats._common import IMPROVED, NO_CLEAR_CHANGE, TOO_EARLY, WORSE, ArrayLike, MetricChange
from pipnb.stats.power import detectable_change
from pipnb.stats.sequential import look_boundary


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (same as ``multipletests(p, method="holm")``); NaNs stay NaN.

    A metric with no estimate (NaN) is left out of the family rather than counted.

    Example
    -------
    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if idx.size == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(stepped, 1.0)
    return out


def target_change(change: MetricChange, target: float | None) -> float:
    """The change the target asks for, on the ``effect`` scale (NaN when no target or no baseline)."""
    if target is None or not np.isfinite(target) or not np.isfinite(change.baseline):
        return math.nan
    if change.effect == "difference in points":
        return float(target - change.baseline)
    return float(target / change.baseline) if change.baseline > 0 else math.nan


def detectable(change: MetricChange, target: float | None) -> bool:
    """Whether this checkpoint could have detected the change the target asks for (80% power).

    False when the smallest detectable change is larger than the target change, or when no change at
    all is detectable yet; True when there is no target (or it asks for no change in the better
    direction) and some change is detectable, or when the detectable change is unknown.
    """
    if nothing_detectable(change):
        return False
    wanted = target_change(change, target)
    if not np.isfinite(change.mde) or not np.isfinite(wanted):
        return True
    null = 0.0 if change.effect == "difference in points" else 1.0
    if wanted == null or (wanted > null) != change.higher_is_better:
        return True
    return abs(_scale(change.mde, change.effect)) <= abs(_scale(wanted, change.effect))


def nothing_detectable(change: MetricChange) -> bool:
    """Whether no change at all is detectable yet (the smallest detectable change is infinite, or 0 on a ratio)."""
    return bool(np.isinf(change.mde)) or (change.effect != "difference in points" and change.mde == 0.0)


def _scale(value: float, effect: str) -> float:
    if effect == "difference in points":
        return value
    return math.log(value) if value > 0 else -math.inf     # a target of 0 on a ratio scale: all the way down


def sequential_holm(z: ArrayLike, *, fractions: Sequence[float], look: int, alpha: float = 0.05,
                    family: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which metrics cross the group-sequential boundary at this look, Holm step-down across metrics.

    Each direction (better, worse) has its own one-sided error ``alpha`` spent over the looks (see
    :mod:`pipnb.stats.sequential`). The metrics are taken from the most extreme z down: the j-th (of m)
    must reach the boundary of a design at level ``alpha / (m - j)``; the first that does not stops the
    steps.

    Parameters
    ----------
    z
        Each metric's z-score of the change, oriented so that positive is better (NaN: not judged).
    fractions
        The information fraction of every look of the plan, one sequence for every metric or one sequence per
        metric (the information each has accrued by each look).
    look
        Which look this is (0-based).
    alpha
        One-sided error for "improved", and separately for "worse", over all looks and metrics.
    family
        The Holm family's size ``m``: the plan's focus metrics, the same at every look, so a focus metric
        with no estimate yet (NaN z) still counts (default: the finite z-scores).

    Returns
    -------
    crossed, boundary
        ``crossed`` is +1 (improved), -1 (worse) or 0 per metric; ``boundary`` the z each metric had to
        reach at its first Holm step (``alpha / m``), which sets its smallest detectable change.
    """
    crossed, _ = _holm_steps(z, fractions=fractions, look=look, alpha=alpha, family=family)
    z = np.asarray(z, dtype=float)
    finite = np.flatnonzero(np.isfinite(z))
    boundary = np.full(z.shape, np.nan)
    m = _family_size(finite.size, family)
    for index in finite:
        boundary[index] = look_boundary(_fractions_of(fractions, index), look, alpha / m)
    return crossed, boundary


def _family_size(finite: int, family: int | None) -> int:
    return max(finite, int(family or 0), 1)


def _fractions_of(fractions: Sequence[float] | Sequence[Sequence[float]], index: int) -> Sequence[float]:
    """The information fractions metric ``index`` is judged on: one shared sequence, or one per metric (the
    information each metric has accrued: :func:`pipnb.stats.assessment.metric_fractions`)."""
    first = fractions[0] if len(fractions) else None
    return fractions[index] if isinstance(first, (Sequence, np.ndarray)) else fractions


def decision_boundaries(z: ArrayLike, *, fractions: Sequence[float], look: int, alpha: float = 0.05,
                        family: int | None = None) -> np.ndarray:
    """The z boundary each metric's verdict was decided at, for the interval printed beside it.

    A metric that crossed (:func:`sequential_holm`) gets the boundary of the Holm step it passed; one that did
    not gets the boundary of the step at which the steps stopped in the direction its change points (every
    later metric has a z no larger than the one that stopped them). So ``estimate ± boundary · se`` on the
    model scale, the repeated confidence interval at this look, lies wholly on one side of no change exactly
    when the verdict is *improved* or *worse*. NaN where ``z`` is NaN (not judged). ``family`` as in
    :func:`sequential_holm`.
    """
    return _holm_steps(z, fractions=fractions, look=look, alpha=alpha, family=family)[1]


def _holm_steps(z: ArrayLike, *, fractions: Sequence[float] | Sequence[Sequence[float]], look: int, alpha: float,
                family: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down, each metric against its own boundary (its own information fractions).

    The metrics are taken in order of their margin ``z / c(alpha / m)`` over their first-step boundary (the order
    of z when the metrics share their fractions); the j-th must reach its own boundary at ``alpha / (m - j)``.
    Any order keeps the family's error at ``alpha``: a true null is only ever tested at a level of at most
    ``alpha / m0`` (``m0`` the true nulls), whatever came before it, so the chance that any true null crosses
    is at most ``m0 * alpha / m0``. A metric that did not cross is given its own boundary at the level where
    the steps stopped (never below its own z, so its decision range keeps no change inside)."""
    z = np.asarray(z, dtype=float)
    crossed = np.zeros(z.shape, dtype=int)
    decided = np.full(z.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(z))
    m = _family_size(finite.size, family)

    def bound(index: int, level: float) -> float:
        return look_boundary(_fractions_of(fractions, index), look, level)
    first = {int(i): bound(int(i), alpha / m) for i in finite}
    for sign in (1, -1):
        order = sorted(finite, key=lambda i: (-sign * z[i] / first[int(i)], i))
        level = math.nan
        for j, index in enumerate(order):
            step = bound(index, alpha / (m - j))
            if sign * z[index] < step:
                level = alpha / (m - j)
                break
            crossed[index] = sign
            decided[index] = step
        mine = [i for i in order if (sign * z[i] >= 0 if sign > 0 else sign * z[i] > 0) and crossed[i] == 0]
        for index in mine:
            decided[index] = max(bound(index, level), np.nextafter(sign * z[index], np.inf)) \
                if np.isfinite(level) else math.nan
    return crossed, decided


def decision_range(change: MetricChange, boundary: float) -> tuple[float, float]:
    """``estimate ± boundary · se`` on the model scale (log ratio or points), on the ``effect`` scale.

    With the boundary of :func:`decision_boundaries` it is the interval the verdict reads: wholly above (or
    below) no change exactly when the change crossed this look's boundary. NaNs when there is no estimate.
    """
    if not (np.isfinite(change.estimate) and np.isfinite(change.se) and np.isfinite(boundary)):
        return math.nan, math.nan
    if change.effect == "difference in points":
        return change.estimate - boundary * change.se, change.estimate + boundary * change.se
    if change.estimate <= 0:
        return math.nan, math.nan
    centre = math.log(change.estimate)
    return math.exp(centre - boundary * change.se), math.exp(centre + boundary * change.se)


def decide_verdict(change: MetricChange, crossed: int, *, target: float | None = None) -> str:
    """The verdict word for one metric.

    *improved* / *worse* when the change crossed this look's group-sequential boundary (Holm across the
    plan's focus metrics, :func:`sequential_holm`); otherwise *too early to tell* when the look could not
    have detected the change the target asks for (or has no data), else *no clear change yet*.

    Parameters
    ----------
    change
        The metric's change (:func:`count_change`, :func:`ratio_change`, :func:`gap_change`), its ``mde``
        that of the sequential rule at this look.
    crossed
        +1, -1 or 0 from :func:`sequential_holm`.
    target
        The plan's final target for the metric, in the metric's units.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    if not np.isfinite(change.estimate) or not np.isfinite(change.z):
        return TOO_EARLY
    if crossed > 0 and change.direction > 0:
        return IMPROVED
    if crossed < 0 and change.direction < 0:
        return WORSE
    return NO_CLEAR_CHANGE if detectable(change, target) else TOO_EARLY


def oriented_z(change: MetricChange) -> float:
    """The change's z-score, positive when it points the better way."""
    return float(change.z if change.higher_is_better else -change.z)


def rule_mde(change: MetricChange, boundary: float, power: float = 0.8) -> float:
    """Smallest change (``effect`` scale, the better way) the rule detects with ``power`` at this look.

    ``boundary`` is the look's group-sequential z boundary (after Holm); the rule's threshold is that boundary
    times the change's standard error with the decision's placebo inflation, and the estimate scatters with the
    change's own variance under the alternative (:class:`ChangeVariance`) times the point estimate of the true
    widening (``widening["scatter"]``, :func:`pipnb.stats.placebo_scatter`), so the stated change is the one
    this look's decision would find 80% of the time. Without a variance model, ``(boundary +
    z_power) * se``. ``inf`` when nothing is detectable.
    """
    if not np.isfinite(boundary):
        return math.inf
    if change.variance is not None:
        return detectable_change(change.variance, float(boundary), power=power, inflation=change.inflation,
                                 scatter=change.widening.get("scatter"), higher_is_better=change.higher_is_better)
    if not np.isfinite(change.se) or change.se <= 0:
        return math.inf
    size = (boundary + NormalDist().inv_cdf(power)) * change.se
    sign = 1.0 if change.higher_is_better else -1.0
    if change.effect == "difference in points":
        return sign * size
    return math.exp(sign * size)
