"""Interrupted time series: a segmented count regression (level and slope change, seasonality), the
model that the Lopez Bernal et al. (2017) test reproduces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SegmentedFit:
    """Result of :func:`segmented_count_model`.

    Attributes
    ----------
    table
        One row per term (``level``, ``slope`` when fitted, ``time``): rate ratio, interval, p-value.
    dispersion
        Pearson dispersion (1 for Poisson, alpha-adjusted for negative binomial).
    fitted, counterfactual
        Expected counts with the interruption, and with its level and slope terms switched off
        (the baseline trend projected, for a dashed line on a chart).
    result
        The statsmodels results object.
    """

    table: pd.DataFrame
    dispersion: float
    family: str
    fitted: pd.Series
    counterfactual: pd.Series
    result: Any

    def rate_ratio(self, term: str) -> tuple[float, float, float]:
        """(rate ratio, ci_low, ci_high) of ``"level"``, ``"slope"`` or ``"time"``."""
        row = self.table.loc[term]
        return float(row["rate_ratio"]), float(row["ci_low"]), float(row["ci_high"])


def segmented_count_model(
    data: pd.DataFrame,
    *,
    count: str,
    time: str,
    post: str,
    offset: str | None = None,
    exposure: str | None = None,
    slope_change: bool = False,
    season: str | None = None,
    period: float = 12,
    harmonics: int = 2,
    family: Literal["poisson", "quasipoisson", "negbin"] = "quasipoisson",
    alpha: float = 0.05,
) -> SegmentedFit:
    """Interrupted-time-series regression of a count: level change, optional slope change, seasonality.

    ``log E[count] = b0 + b1*time + b2*post [+ b3*(time - t0)*post] + harmonics + log(offset)``, where
    ``t0`` is the last time before the interruption and the harmonics are ``harmonics`` sine/cosine pairs
    ``sin(2 pi k season / period)``, ``cos(...)``, as in Lopez Bernal, Cummins & Gasparrini (2017).

    Parameters
    ----------
    data
        One row per period.
    count, time, post
        Column names: the count, a numeric time index, and a 0/1 indicator of the post-interruption period.
    offset, exposure
        A column whose log is the offset (e.g. standardized population), or the exposure itself;
        give at most one.
    slope_change
        Add the slope-change term (time since the interruption, 0 before it).
    season, period, harmonics
        Column giving the position in the seasonal cycle (e.g. month 1..12), its period, and the number
        of Fourier pairs; ``season=None`` fits no seasonality.
    family
        ``"quasipoisson"`` (Poisson with Pearson dispersion, the paper's model), ``"poisson"`` or
        ``"negbin"`` (alpha fitted by maximum likelihood, then a GLM with that alpha).
    alpha
        1 - confidence level of the intervals (normal-theory, as the paper).

    Returns
    -------
    SegmentedFit
    """
    import statsmodels.api as sm  # statsmodels (1.5 s)

    design = _segmented_design(data, time=time, post=post, slope_change=slope_change, season=season,
                               period=period, harmonics=harmonics)
    y = data[count].to_numpy(dtype=float)
    log_offset = _log_offset(data, offset, exposure)
    glm_family, scale = _segmented_family(sm, y, design, log_offset, family)
    result = sm.GLM(y, design, family=glm_family, offset=log_offset).fit(scale=scale)
    table = _segmented_table(result, alpha)
    switched_off = design.assign(**{c: 0.0 for c in ("level", "slope") if c in design})
    fitted = pd.Series(result.predict(design, offset=log_offset), index=data.index, name="fitted")
    counterfactual = pd.Series(result.predict(switched_off, offset=log_offset), index=data.index,
                               name="counterfactual")
    dispersion = float(result.scale) if scale == "X2" else float(result.pearson_chi2 / result.df_resid)
    return SegmentedFit(table, dispersion, family, fitted, counterfactual, result)


def _segmented_design(data: pd.DataFrame, *, time: str, post: str, slope_change: bool, season: str | None,
                      period: float, harmonics: int) -> pd.DataFrame:
    t = data[time].to_numpy(dtype=float)
    after = data[post].to_numpy(dtype=float)
    columns: dict[str, np.ndarray] = {"const": np.ones(len(data)), "level": after, "time": t}
    if slope_change:
        t0 = t[after == 0].max()
        columns["slope"] = (t - t0) * after
    if season is not None:
        position = data[season].to_numpy(dtype=float)
        for k in range(1, harmonics + 1):
            columns[f"sin{k}"] = np.sin(2 * np.pi * k * position / period)
            columns[f"cos{k}"] = np.cos(2 * np.pi * k * position / period)
    return pd.DataFrame(columns, index=data.index)


def _log_offset(data: pd.DataFrame, offset: str | None, exposure: str | None) -> np.ndarray | None:
    if offset is not None and exposure is not None:
        raise ValueError("give offset or exposure, not both")
    column = offset or exposure
    return None if column is None else np.log(data[column].to_numpy(dtype=float))


def _segmented_family(sm: Any, y: np.ndarray, design: pd.DataFrame, log_offset: np.ndarray | None,
                      family: str) -> tuple[Any, str | None]:
    if family == "quasipoisson":
        return sm.families.Poisson(), "X2"
    if family == "poisson":
        return sm.families.Poisson(), None
    if family == "negbin":
        nb = sm.NegativeBinomial(y, design, offset=log_offset).fit(disp=0, maxiter=200)
        return sm.families.NegativeBinomial(alpha=float(nb.params.iloc[-1])), None
    raise ValueError(f"unknown family '{family}' (use quasipoisson, poisson or negbin)")


def _segmented_table(result: Any, alpha: float) -> pd.DataFrame:
    ci = result.conf_int(alpha=alpha)
    terms = [t for t in ("level", "slope", "time") if t in result.params.index]
    return pd.DataFrame({
        "rate_ratio": np.exp(result.params[terms]),
        "ci_low": np.exp(ci.loc[terms, 0]),
        "ci_high": np.exp(ci.loc[terms, 1]),
        "p_value": result.pvalues[terms],
    }, index=pd.Index(terms, name="term"))
