"""Flagging a shortfall without fooling anyone: funnel-plot control limits with over-dispersion.

A rep is compared with a target (their peers' pooled level over the same weeks) on the scale where noise is
understood: a **count** of events over weeks, a **ratio** of successes over trials (binomial), or **touch
gaps** as touches over open-opportunity days (Poisson on the touch rate, whose inverse is the mean gap), or a
**per-deal mean** (deal size, sales cycle) on the log scale, where a skewed amount's mean is near normal: the
rep's mean ``log(1 + x)`` over their ``n`` deals, whose noise is the peers' pooled within-rep variance
``sigma^2`` over ``n`` (kind ``"logmean"``, :func:`within_variance`). A count's noise is Poisson times the
dispersion ``phi`` of the peers' weekly counts (quasi-Poisson, :func:`within_dispersion`): weeks that swing
more than Poisson (negative-binomial weeks) are the rep's own noise, not a difference between reps.

The rep's z-score divides their difference from the target by the root of three variances
(:func:`funnel_z`, :func:`peer_funnel`):

1. the rep's own noise at their volume, at the target (:func:`null_variance`);
2. the spread that really exists between reps, an additive random effect ``tau^2`` (Spiegelhalter DJ, "Funnel
   plots for comparing institutional performance", Stat Med 2005;24:1185-1202, section on over-dispersion):
   estimated for each rep from **their own peers only** (the rep under judgement never widens their own
   limits), from the peers' z-scores against the target **winsorized** at the group's 10% and 90% quantiles so
   that one or two extreme peers do not widen everyone's limits, ``phi`` their mean square, and
   ``tau^2 = (k phi - (k - 1)) / (sum w - sum w^2 / sum w)`` when ``k phi > k - 1`` (``w`` the inverse null
   variances; DerSimonian-Laird's moment estimator on winsorized z-scores). Unlike the paper, ``phi`` is
   divided by the mean square that winsorizing leaves of normal z-scores in a group of ``k``
   (:func:`winsorized_tau2`), so a real, normal spread is not underestimated;
3. the variance of the target itself, estimated from ``k`` peers (:func:`target_variance`): the peers' pooled
   rate moves with who is in a small team, about ``(var0 + tau^2) / k``.

Control limits drawn at ``target ± z * sd(volume)`` form the funnel of the scan's charts (:func:`funnel_limit`);
a rep beyond the lower limit *and* beyond the practical margin falls short. ``z`` is the normal critical value.
A Student t for the few peers that estimate ``tau^2`` (Welch-Satterthwaite degrees of freedom) was tried and left
out: in a simulation of teams of 10 with a 10% real spread between reps, it found a rep at 60% of their peers'
emails 67% of the time instead of 82%, while all-equal teams stayed within the false-flag budget without it
(negative-binomial weeks, AR(1) weeks, teams of 5 to 8: ``benchmarks/bench_fairness.py --worlds``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["FunnelScale", "PeerFunnel", "funnel_scale", "null_variance", "within_variance", "within_dispersion",
           "overdispersion", "winsorized_tau2", "peer_overdispersion", "target_variance", "peer_funnel", "funnel_z",
           "funnel_limit"]


@dataclass(frozen=True)
class FunnelScale:
    """A metric put on the funnel's scale: events ``y`` over volume ``n``, rate ``y / n``, oriented so that a
    higher rate is better (``sign`` is -1 when the metric's value falls as the rate rises, as for days
    between touches)."""

    kind: str          # "count", "ratio", "gap" or "logmean"
    y: np.ndarray
    n: np.ndarray


def funnel_scale(kind: str, numerator: np.ndarray, denominator: np.ndarray) -> FunnelScale:
    """Events and volume of each rep for one metric from the scorecard's pooled window counts.

    Counts: ``numerator`` events in ``denominator`` weeks. Ratios: ``numerator`` successes of
    ``denominator`` trials. Gaps: ``denominator`` gaps over ``numerator`` days (the touch rate, 1 / mean
    gap). Per-deal means (``"logmean"``): ``numerator`` the sum of ``log(1 + x)`` over ``denominator`` deals.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if kind in ("count", "ratio", "logmean"):
        return FunnelScale(kind, num, den)
    if kind == "gap":
        return FunnelScale(kind, den, num)
    raise ValueError(f"no funnel model for a metric of kind '{kind}'")


def null_variance(kind: str, target: np.ndarray, n: np.ndarray, sigma2: np.ndarray | float | None = None
                  ) -> np.ndarray:
    """Variance of a rate ``y / n`` at volume ``n`` when the true rate is ``target`` (within-rep noise);
    for a per-deal mean (``"logmean"``), ``sigma2 / n`` with ``sigma2`` the within-rep variance of one deal;
    for a count, ``sigma2`` (when given) is the dispersion of the weekly counts, ``phi target / n``
    (:func:`within_dispersion`; 1 is Poisson)."""
    target = np.asarray(target, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "ratio":
            return target * (1.0 - target) / n
        if kind == "logmean":
            if sigma2 is None:
                raise ValueError("a per-deal mean needs its within-rep variance sigma2")
            return np.asarray(sigma2, dtype=float) / n
        return target / n if sigma2 is None else np.asarray(sigma2, dtype=float) * target / n


def within_variance(ss: np.ndarray, n: np.ndarray, peers: np.ndarray) -> np.ndarray:
    """Each rep's within-rep variance of one deal, pooled over their peers: ``sum ss / sum (n - 1)``.

    ``ss`` is each rep's sum of squared deviations from their own mean (on the log scale), ``n`` their deals;
    row ``i`` of ``peers`` says who rep ``i``'s peers are. The rep under judgement does not set their own noise.
    """
    ss, n = np.nan_to_num(np.asarray(ss, dtype=float)), np.asarray(n, dtype=float)
    w = np.asarray(peers, dtype=bool) & (n > 1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ ss) / (w @ np.maximum(n - 1, 0.0))


def within_dispersion(x2: np.ndarray, dof: np.ndarray, peers: np.ndarray) -> np.ndarray:
    """Each rep's dispersion ``phi`` of weekly counts, pooled over their peers: ``sum X^2 / sum dof``, at least 1.

    ``x2`` is each rep's Pearson statistic of their weekly counts about their own mean rate
    (``sum (c_w - m)^2 / m`` over the window's weeks) and ``dof`` its degrees of freedom (weeks - 1). Counts
    that vary from week to week more than Poisson (busy and quiet weeks: negative binomial counts) make a rep's
    window total noisier by this factor (quasi-Poisson); it is the rep's own noise, not a difference between
    reps, so it widens the limits without being mistaken for spread between reps (``tau^2``). As with
    :func:`within_variance`, the rep under judgement does not set their own noise.
    """
    x2, dof = np.nan_to_num(np.asarray(x2, dtype=float)), np.nan_to_num(np.asarray(dof, dtype=float))
    w = np.asarray(peers, dtype=bool) & (dof > 0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = (w @ x2) / (w @ dof)
    return np.where(np.isfinite(phi), np.maximum(phi, 1.0), 1.0)


WINSOR = 0.1   # share of z-scores winsorized at each end (Spiegelhalter 2005: 10% and 90%)


def overdispersion(rate: np.ndarray, target: np.ndarray, var0: np.ndarray, *, winsor: float = WINSOR) -> float:
    """Between-rep variance ``tau^2`` of one group of units against one target (Spiegelhalter 2005).

    The group's case of :func:`peer_overdispersion`'s rule (:func:`winsorized_tau2`): z-scores
    ``(rate - target) / sqrt(var0)``, winsorized, give ``phi``; ``tau^2`` follows when ``phi`` exceeds chance.
    """
    rate, target, var0 = (np.asarray(a, dtype=float) for a in (rate, target, var0))
    ok = np.isfinite(rate) & np.isfinite(target) & np.isfinite(var0) & (var0 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(ok, (rate - target) / np.sqrt(var0), np.nan)
        weight = np.where(ok, 1.0 / var0, 0.0)
    return float(winsorized_tau2(z[None, :], weight[None, :], winsor=winsor, min_units=3)[0])


def winsorized_tau2(z: np.ndarray, weight: np.ndarray, *, winsor: float = WINSOR, min_units: int = 2) -> np.ndarray:
    """The one rule for ``tau^2``, one row a group: Spiegelhalter's (2005) additive random effect from
    winsorized z-scores.

    Row ``i`` holds the z-scores of the units that set group ``i``'s spread (NaN where a unit is not in it) and
    ``weight`` their inverse null variances ``w = 1 / var0``. Each row's z-scores are winsorized at that row's
    ``winsor`` and ``1 - winsor`` quantiles (linear interpolation between order statistics); their mean square,
    divided by the winsorized standard normal's (:func:`_winsor_consistency`, so that a real, normal spread is
    not underestimated), is ``phi``. With ``k`` units, when ``k phi > k - 1``::

        tau^2 = (k phi - (k - 1)) / (sum w - sum w^2 / sum w)

    and 0 otherwise, or when fewer than ``min_units`` units are in the row.
    """
    z = np.asarray(z, dtype=float)
    weight = np.where(np.isfinite(z), np.asarray(weight, dtype=float), 0.0)
    k = np.isfinite(z).sum(axis=1)
    ordered = np.sort(z, axis=1)                          # NaN last: each row's k values come first
    rows = np.arange(z.shape[0])

    def quantile(q: float) -> np.ndarray:                 # numpy's default (linear) quantile of each row's values
        pos = q * np.maximum(k - 1, 0)
        below = np.floor(pos).astype(int)
        above = np.minimum(below + 1, np.maximum(k - 1, 0))
        frac = pos - below
        return ordered[rows, below] * (1 - frac) + ordered[rows, above] * frac

    with np.errstate(invalid="ignore", divide="ignore"):
        clipped = np.clip(z, quantile(winsor)[:, None], quantile(1.0 - winsor)[:, None])
        phi = np.nansum(clipped ** 2, axis=1) / k / _winsor_consistency(winsor, k)
        s1, s2 = weight.sum(axis=1), (weight ** 2).sum(axis=1)
        tau2 = (k * phi - (k - 1)) / (s1 - s2 / s1)
    return np.where((k >= min_units) & np.isfinite(tau2), np.maximum(tau2, 0.0), 0.0)


def peer_overdispersion(kind: str, rate: np.ndarray, volume: np.ndarray, target: np.ndarray,
                        peers: np.ndarray, sigma2: np.ndarray | None = None, *, winsor: float = WINSOR
                        ) -> np.ndarray:
    """Each rep's between-rep variance ``tau^2`` from their own peers only, by :func:`winsorized_tau2`.

    Row ``i`` of ``peers`` says who rep ``i``'s peers are. Their z-scores against rep ``i``'s target (the
    peers' pooled rate), each at the peer's own volume, are winsorized within the group, so one or two
    extreme peers do not widen everyone's limits; the rep under judgement never widens their own limits, and
    a company whose teams differ in spread gets each team's own. ``sigma2``: rep ``i``'s within-rep variance of
    one deal for a per-deal mean (:func:`within_variance`), the weekly dispersion for a count
    (:func:`within_dispersion`).
    """
    rate, volume, target = (np.asarray(a, dtype=float) for a in (rate, volume, target))
    ok = np.isfinite(rate) & (volume > 0)
    w = np.asarray(peers, dtype=bool) & ok[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        var0 = _peer_null_variance(kind, target, volume, sigma2)
        good = w & np.isfinite(var0) & (var0 > 0)
        z = np.where(good, (np.nan_to_num(rate)[None, :] - target[:, None]) / np.sqrt(var0), np.nan)
        weight = np.where(good, 1.0 / var0, 0.0)
    return winsorized_tau2(z, weight, winsor=winsor)


def target_variance(kind: str, volume: np.ndarray, target: np.ndarray, peers: np.ndarray, tau2: np.ndarray,
                    sigma2: np.ndarray | None = None) -> np.ndarray:
    """Variance of each rep's target, their peers' pooled rate ``sum y_j / sum n_j``, under the random-effects
    model: ``sum n_j^2 (var0_j + tau^2) / (sum n_j)^2``.

    The target is estimated from the peers, not known: in a group of 5 to 8 it moves with who happens to be in
    it. A rep compared with it carries this variance as well as their own noise and the spread between reps
    (the variance of a new unit's difference from the pooled mean of ``k`` others; with equal volumes it is
    ``(var0 + tau^2) / k``). Poisson counts give ``target / sum n_j + tau^2 sum n_j^2 / (sum n_j)^2``.
    """
    volume, target, tau2 = (np.asarray(a, dtype=float) for a in (volume, target, tau2))
    w = np.asarray(peers, dtype=bool) & (volume > 0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        var0 = np.nan_to_num(_peer_null_variance(kind, target, volume, sigma2), nan=0.0, posinf=0.0)
        n2 = np.where(w, volume[None, :] ** 2, 0.0)
        total = np.where(w, volume[None, :], 0.0).sum(axis=1)
        return (n2 * (var0 + tau2[:, None])).sum(axis=1) / total ** 2


@dataclass(frozen=True)
class PeerFunnel:
    """Each rep's funnel against their own peers (one entry a rep): the ``target`` (the peers' pooled rate),
    ``tau2`` (:func:`peer_overdispersion`) and the target's variance ``target_var`` (:func:`target_variance`)."""

    target: np.ndarray
    tau2: np.ndarray
    target_var: np.ndarray


def peer_funnel(scale: FunnelScale, peers: np.ndarray, sigma2: np.ndarray | None = None) -> PeerFunnel:
    """The funnel of every rep against their own peers (row ``i`` of ``peers``: rep ``i``'s peers) from the
    reps' events and volumes: what :func:`funnel_z` and :func:`funnel_limit` need besides the rep's own rate."""
    y, volume = np.asarray(scale.y, dtype=float), np.asarray(scale.n, dtype=float)
    has = volume > 0
    w = np.asarray(peers, dtype=bool) & has[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        target = (w @ np.where(has, y, 0.0)) / (w @ np.where(has, volume, 0.0))
        rate = np.where(has, y / np.where(has, volume, 1.0), np.nan)
        tau2 = peer_overdispersion(scale.kind, rate, volume, target, w, sigma2)
        target_var = target_variance(scale.kind, volume, target, w, tau2, sigma2)
    return PeerFunnel(target, tau2, target_var)


def _peer_null_variance(kind: str, target: np.ndarray, volume: np.ndarray, sigma2: np.ndarray | None) -> np.ndarray:
    """``var0[i, j]``: peer ``j``'s within-rep variance at their own volume, at rep ``i``'s target (and noise)."""
    return null_variance(kind, np.asarray(target, dtype=float)[:, None], np.asarray(volume, dtype=float)[None, :],
                         None if sigma2 is None else np.asarray(sigma2, dtype=float)[:, None])


def _winsor_consistency(winsor: float, k: np.ndarray | None = None) -> np.ndarray | float:
    """The expected winsorized mean square of normal z-scores, by which ``phi`` is divided.

    Winsorizing shrinks the mean square of z-scores even when nothing is an outlier (to 68% at 10%, 41% at
    20%, for a standard normal winsorized at its own quantiles); dividing by this factor makes the estimate of
    the spread right for normal random effects while keeping outliers from inflating it. In a group of ``k``
    (z-scores about the group's own pooled rate, quantiles of the group's own ``k`` values), the factor is
    ``E[sum z_w^2] / (k - 1)`` for ``k`` standard normals centred on their mean: above the large-group value
    (0.55 at ``k = 6`` for 20%, 0.44 at 30), so the large-group factor would overstate the spread of a small team.
    It is computed once per ``k`` up to 40 from 10 000 simulated groups (fixed seed, about 0.7% error), and
    from the normal distribution beyond.
    """
    from scipy import stats as sps  # scipy (~1 s): the team scan's limits need only numpy

    if winsor <= 0:
        return 1.0 if k is None else np.ones(np.shape(k))
    q = float(sps.norm.isf(winsor))
    large = float((1 - 2 * winsor) - 2 * q * sps.norm.pdf(q) + 2 * winsor * q * q)
    if k is None:
        return large
    k = np.asarray(k, dtype=int)
    return np.array([_small_group_consistency(winsor, int(m)) if 2 <= m <= 40 else large for m in k.ravel()]
                    ).reshape(k.shape)


@functools.lru_cache(maxsize=256)
def _small_group_consistency(winsor: float, k: int) -> float:
    x = np.random.default_rng(20051185 + k).standard_normal((10_000, k))
    z = x - x.mean(axis=1, keepdims=True)
    lo, hi = np.quantile(z, [winsor, 1.0 - winsor], axis=1)
    return float((np.clip(z, lo[:, None], hi[:, None]) ** 2).sum(axis=1).mean() / (k - 1))


def funnel_z(rate: np.ndarray, target: np.ndarray, n: np.ndarray, kind: str, tau2: float | np.ndarray,
             sigma2: np.ndarray | float | None = None, *, target_var: float | np.ndarray = 0.0) -> np.ndarray:
    """Each rep's z-score against the target: the difference over the root of the within-rep noise at the
    rep's volume, ``tau^2`` and the target's own variance (:func:`target_variance`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(rate, dtype=float) - target) / np.sqrt(null_variance(kind, target, n, sigma2) + tau2
                                                                  + target_var)


def funnel_limit(target: float | np.ndarray, n: float | np.ndarray, kind: str, tau2: float | np.ndarray, z: float,
                 sigma2: np.ndarray | float | None = None, *, target_var: float | np.ndarray = 0.0) -> np.ndarray:
    """The control limit ``target + z * sd`` at volume ``n`` (``z < 0`` for the lower limit), ``sd`` as in
    :func:`funnel_z`: a rate lies beyond the limit exactly when its z-score lies beyond ``z``."""
    limit = np.asarray(target, dtype=float) + z * np.sqrt(null_variance(kind, target, n, sigma2) + tau2
                                                             + target_var)
    if kind == "logmean":
        return limit
    return np.clip(limit, 0.0, 1.0) if kind == "ratio" else np.maximum(limit, 0.0)

