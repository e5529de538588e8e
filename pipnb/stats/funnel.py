"""Flagging a shortfall without fooling anyone: funnel-plot control limits with over-dispersion.

A rep is compared with a target (their peers' pooled level over the same weeks) on the scale where noise is
understood: a **count** of events over weeks (Poisson), a **ratio** of successes over trials (binomial), or
**touch gaps** as touches over open-opportunity days (Poisson on the touch rate, whose inverse is the mean
gap), or a **per-deal mean** (deal size, sales cycle) on the log scale, where a skewed amount's mean is near
normal: the rep's mean ``log(1 + x)`` over their ``n`` deals, whose noise is the peers' pooled within-rep
variance ``sigma^2`` over ``n`` (kind ``"logmean"``). The z-score of the rep against the target divides the
difference by the noise expected at the rep's own volume, plus the spread that really exists between reps
(Spiegelhalter 2005, "Funnel plots for comparing institutional performance", Stat Med 24:1185; additive random
effect ``tau^2`` estimated from winsorized z-scores, DerSimonian–Laird style). Control limits drawn at
``target ± z * sd(volume)`` form the funnel of the scan's charts; a rep outside the lower limit *and* beyond
the practical margin falls short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FunnelScale", "funnel_scale", "null_variance", "within_variance", "overdispersion", "funnel_z",
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
    for a per-deal mean (``"logmean"``), ``sigma2 / n`` with ``sigma2`` the within-rep variance of one deal."""
    target = np.asarray(target, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "ratio":
            return target * (1.0 - target) / n
        if kind == "logmean":
            if sigma2 is None:
                raise ValueError("a per-deal mean needs its within-rep variance sigma2")
            return np.asarray(sigma2, dtype=float) / n
        return target / n


def within_variance(ss: np.ndarray, n: np.ndarray, peers: np.ndarray) -> np.ndarray:
    """Each rep's within-rep variance of one deal, pooled over their peers: ``sum ss / sum (n - 1)``.

    ``ss`` is each rep's sum of squared deviations from their own mean (on the log scale), ``n`` their deals;
    row ``i`` of ``peers`` says who rep ``i``'s peers are. The rep under judgement does not set their own noise.
    """
    ss, n = np.nan_to_num(np.asarray(ss, dtype=float)), np.asarray(n, dtype=float)
    w = np.asarray(peers, dtype=bool) & (n > 1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ ss) / (w @ np.maximum(n - 1, 0.0))


def overdispersion(rate: np.ndarray, target: np.ndarray, var0: np.ndarray, *, winsor: float = 0.2) -> float:
    """Between-rep variance ``tau^2`` beyond within-rep noise (additive random effect, Spiegelhalter 2005).

    z-scores are winsorized at the ``winsor`` and ``1 - winsor`` quantiles (20% by default, more than the
    paper's 10%: several reps of a team may truly fall short, and they must not widen the limits that
    judge them), and their mean square ``phi`` is divided by the winsorized normal's (so a real, normal
    spread is not underestimated); when ``phi`` exceeds what chance allows,
    ``tau^2 = (n phi - (n - 1)) / (sum w - sum w^2 / sum w)`` with ``w = 1 / var0``;
    otherwise 0.
    """
    rate, target, var0 = (np.asarray(a, dtype=float) for a in (rate, target, var0))
    ok = np.isfinite(rate) & np.isfinite(target) & np.isfinite(var0) & (var0 > 0)
    if ok.sum() < 3:
        return 0.0
    z = (rate[ok] - target[ok]) / np.sqrt(var0[ok])
    m = len(z)
    lo, hi = np.quantile(z, [winsor, 1.0 - winsor])
    phi = float(np.mean(np.clip(z, lo, hi) ** 2)) / _winsor_consistency(winsor)
    if m * phi <= m - 1:
        return 0.0
    w = 1.0 / var0[ok]
    return float(max(0.0, (m * phi - (m - 1)) / (w.sum() - (w ** 2).sum() / w.sum())))


def peer_overdispersion(kind: str, rate: np.ndarray, volume: np.ndarray, target: np.ndarray,
                        peers: np.ndarray, sigma2: np.ndarray | None = None) -> np.ndarray:
    """Each rep's between-rep variance ``tau^2`` from their own peers only (DerSimonian–Laird).

    Row ``i`` of ``peers`` says who rep ``i``'s peers are. Their z-scores against rep ``i``'s target (the
    peers' pooled rate) give ``Q``; ``tau^2 = max(0, (Q - (k - 1)) / (sum W - sum W^2 / sum W))`` with ``W``
    the peers' inverse null variances. The rep under judgement never widens their own limits, and a
    company whose teams differ in spread gets each team's own. ``sigma2`` (per-deal means): rep ``i``'s
    within-rep variance of one deal (:func:`within_variance`).
    """
    rate, volume, target = (np.asarray(a, dtype=float) for a in (rate, volume, target))
    ok = np.isfinite(rate) & (volume > 0)
    w = np.asarray(peers, dtype=bool) & ok[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        var0 = null_variance(kind, target[:, None], volume[None, :],          # rep i's target, peer j's volume
                             None if sigma2 is None else np.asarray(sigma2, dtype=float)[:, None])
        z2 = np.where(w, (np.nan_to_num(rate)[None, :] - target[:, None]) ** 2 / var0, 0.0)
        weight = np.where(w & (var0 > 0), 1.0 / var0, 0.0)
        k = w.sum(axis=1)
        q = np.nansum(z2, axis=1)
        s1, s2 = weight.sum(axis=1), (weight ** 2).sum(axis=1)
        tau2 = (q - (k - 1)) / (s1 - s2 / s1)
    return np.where((k >= 2) & np.isfinite(tau2), np.maximum(tau2, 0.0), 0.0)


def _winsor_consistency(winsor: float) -> float:
    """E[z_w^2] for a standard normal winsorized at its ``winsor`` and ``1 - winsor`` quantiles.

    Winsorizing shrinks the mean square of z-scores even when nothing is an outlier (to 68% at 10%, 41% at
    20%); dividing by this factor makes the estimate of the spread right for normal random effects while
    keeping outliers from inflating it.
    """
    from scipy import stats as sps  # scipy (~1 s): the team scan's limits need only numpy

    if winsor <= 0:
        return 1.0
    q = float(sps.norm.isf(winsor))
    return float((1 - 2 * winsor) - 2 * q * sps.norm.pdf(q) + 2 * winsor * q * q)


def funnel_z(rate: np.ndarray, target: np.ndarray, n: np.ndarray, kind: str, tau2: float,
             sigma2: np.ndarray | float | None = None) -> np.ndarray:
    """Each rep's z-score against the target, within-rep noise at the rep's volume plus ``tau^2``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(rate, dtype=float) - target) / np.sqrt(null_variance(kind, target, n, sigma2) + tau2)


def funnel_limit(target: float | np.ndarray, n: float | np.ndarray, kind: str, tau2: float, z: float,
                 sigma2: np.ndarray | float | None = None) -> np.ndarray:
    """The control limit ``target + z * sd`` at volume ``n`` (``z < 0`` for the lower limit)."""
    limit = np.asarray(target, dtype=float) + z * np.sqrt(null_variance(kind, target, n, sigma2) + tau2)
    if kind == "logmean":
        return limit
    return np.clip(limit, 0.0, 1.0) if kind == "ratio" else np.maximum(limit, 0.0)
