"""Peer benchmarks and the scorecard: how each rep compares with their peers over a window.

Peers are the rep's team (or segment, or everyone), the rep excluded, ramping reps excluded. For each
rep and metric: the peer median and quartiles, the rep's percentile among peers, and a flag. Ratios are
judged on pooled counts shrunk toward the peer rate (empirical Bayes, beta-binomial), so a rep with three
closed deals is not flagged on noise.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.metrics import week_start, weekly_panel, window_bounds, window_metrics
from pipnb.schema import METRICS

RAMP_WEEKS = 13      # tenure below this at the window start: ramping, not a peer and not flagged
MIN_PEERS = 3        # fewer peers than this: no flag
MARGIN = 0.20        # a flag also needs the rep to differ from the peer median by 20 %
MIN_EVENTS = 5       # ratio/mean metrics with fewer trials than this are not flagged
PEER_BY = ("team", "segment", "all")



def scorecard(data: SalesData, as_of: str | pd.Timestamp | None = None, weeks: int = 12, *,
              since: str | pd.Timestamp | None = None, peer_by: str = "team",
              win_rate_basis: str = "closed", panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every rep against their peers on every metric over one window.

    Parameters
    ----------
    data
        Validated sales data.
    as_of
        Last day of the window (default: the last day with data).
    weeks
        Window length in whole weeks, ending with the week that contains ``as_of``.
    since
        Alternative to ``weeks``: the window starts with the week containing this date.
    peer_by
        ``"team"``, ``"segment"`` or ``"all"``.
    win_rate_basis
        ``"closed"`` or ``"all"`` (see :func:`pipnb.window_metrics`).
    panel
        A precomputed :func:`pipnb.weekly_panel` (computed here when omitted).

    Returns
    -------
    pandas.DataFrame
        One row per rep and metric: rep_id, rep_name, team, metric, label, value, numerator,
        denominator, adjusted (the shrunk value judged for ratios), peer_median, peer_p25, peer_p75,
        n_peers, percentile, flag, reason.

    Example
    -------
    >>> import pipnb as pn
    >>> card = pn.scorecard(pn.load("data/demo"))        # doctest: +SKIP
    >>> card.query("flag == 'shortfall'")               # doctest: +SKIP
    """
    if peer_by not in PEER_BY:
        raise ValueError(f"peer_by must be one of {', '.join(PEER_BY)}")
    as_of = pd.Timestamp(as_of) if as_of is not None else data.period[1].normalize()
    panel = weekly_panel(data) if panel is None else panel
    start, end = window_bounds(as_of, weeks)
    if since is not None:
        start = week_start(pd.Timestamp(since))
    pooled = window_metrics(panel, start, end, win_rate_basis=win_rate_basis)
    reps = _rep_table(data, start, peer_by)
    card = _benchmark(pooled, reps)
    card = _add_unavailable(card, data, reps)
    card["label"] = card["metric"].map(lambda m: METRICS[m].label)
    card.attrs.update(window_start=start, window_end=end + pd.Timedelta(days=6), as_of=as_of,
                      peer_by=peer_by, win_rate_basis=win_rate_basis, weeks=weeks)
    columns = ["rep_id", "rep_name", "team", "metric", "label", "value", "numerator", "denominator",
               "adjusted", "peer_median", "peer_p25", "peer_p75", "n_peers", "percentile", "flag", "reason"]
    order = {m: i for i, m in enumerate(METRICS)}
    card = card.sort_values(["rep_id", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s)
    return card[columns].reset_index(drop=True)


def _rep_table(data: SalesData, start: pd.Timestamp, peer_by: str) -> pd.DataFrame:
    reps = data.reps.copy()
    if peer_by == "all":
        reps["group"] = "all"
    elif peer_by == "segment" and "segment" in reps:
        reps["group"] = reps["segment"].fillna(reps["team"])
    else:
        reps["group"] = reps["team"]
    hire = reps["hire_date"] if "hire_date" in reps else pd.Series(pd.NaT, index=reps.index)
    reps["hire_date"] = hire
    reps["tenure_weeks"] = (start - hire).dt.days / 7
    reps["ramping"] = reps["tenure_weeks"] < RAMP_WEEKS
    return reps


def _benchmark(pooled: pd.DataFrame, reps: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for metric, rows in pooled.groupby("metric", sort=False):
        rows = reps[["rep_id", "rep_name", "team", "group", "ramping", "hire_date"]].merge(
            rows, on="rep_id", how="left").assign(metric=metric)
        frames.append(_benchmark_metric(rows, METRICS[metric]))
    return pd.concat(frames, ignore_index=True)


def _benchmark_metric(rows: pd.DataFrame, metric) -> pd.DataFrame:
    """Peer statistics for one metric, all reps at once (leave-one-out within each group)."""
    rows = rows.reset_index(drop=True)
    value = rows["value"].to_numpy(float)
    same = rows["group"].to_numpy()[:, None] == rows["group"].to_numpy()[None, :]
    peer = same & ~np.eye(len(rows), dtype=bool) & ~rows["ramping"].to_numpy()[None, :] \
        & np.isfinite(value)[None, :]
    peer_values = np.where(peer, value[None, :], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # a rep without peers: an all-NaN row
        p25, median, p75 = np.nanquantile(peer_values, [0.25, 0.5, 0.75], axis=1)
    n_peers = peer.sum(axis=1)
    below = (peer_values < value[:, None]).sum(axis=1) + 0.5 * (peer_values == value[:, None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        percentile = np.where(n_peers > 0, 100 * below / n_peers, np.nan)
    adjusted = _shrink(rows, peer) if metric.kind == "ratio" else value
    out = rows.assign(adjusted=adjusted, peer_median=median, peer_p25=p25, peer_p75=p75, n_peers=n_peers,
                      percentile=np.where(np.isfinite(value), percentile, np.nan))
    flags = [_flag(r, metric) for r in out.itertuples(index=False)]
    out["flag"] = [f for f, _ in flags]
    out["reason"] = [r for _, r in flags]
    return out


def _shrink(rows: pd.DataFrame, peer: np.ndarray) -> np.ndarray:
    """Beta-binomial empirical Bayes: pull each rep's pooled rate toward their peers' pooled rate.

    The prior's centre is the rep's peers' pooled rate (the rep excluded); its strength comes from the
    spread of rates across every judged rep beyond binomial noise (method of moments, each rep measured
    against their own group's rate), so a company whose reps genuinely differ shrinks less. It is bounded
    so that the prior never weighs more than a few hundred trials.
    """
    s = rows["numerator"].fillna(0).to_numpy(float)
    n = rows["denominator"].fillna(0).to_numpy(float)
    has = n > 0
    mask = peer & has[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (mask @ s) / (mask @ n)
        strength = _prior_strength(rows, s, n, has)
        shrunk = (s + strength * p) / (n + strength)
        raw = s / np.where(has, n, np.nan)
    return np.where((mask.sum(axis=1) >= MIN_PEERS) & np.isfinite(p) & has, shrunk, raw)


def _prior_strength(rows: pd.DataFrame, s: np.ndarray, n: np.ndarray, has: np.ndarray) -> float:
    """Beta prior strength (alpha + beta) from the between-rep variance of rates around group rates."""
    judged = has & ~rows["ramping"].to_numpy()
    if judged.sum() < MIN_PEERS:
        return 2.0
    frame = pd.DataFrame({"g": rows["group"].to_numpy()[judged], "s": s[judged], "n": n[judged]})
    group_rate = frame.groupby("g")[["s", "n"]].transform("sum")
    p = (group_rate["s"] / group_rate["n"]).to_numpy()
    rate = (frame["s"] / frame["n"]).to_numpy()
    excess = np.mean((rate - p) ** 2 - p * (1 - p) / frame["n"].to_numpy())
    base = float(np.mean(p * (1 - p)))
    if excess <= 0:
        return 200.0
    return float(np.clip(base / excess - 1, 2.0, 200.0))


def _flag(row, metric) -> tuple[str, str]:
    label = metric.label.lower()
    if not np.isfinite(row.value):
        return "no data", f"{label}: no data in the window ({_counts(row, metric)})"
    if row.ramping:
        return "ramping", (f"{label} {fmt(row.value, metric)}: hired {row.hire_date:%Y-%m-%d}, still ramping "
                           f"(under {RAMP_WEEKS} weeks), not judged")
    if row.n_peers < MIN_PEERS:
        return "in line", f"{label} {fmt(row.value, metric)}: only {row.n_peers} comparable peers, not judged"
    if metric.kind in ("ratio", "mean") and row.denominator < MIN_EVENTS:
        return "in line", f"{label} {fmt(row.value, metric)} ({_counts(row, metric)}): too few to judge"
    judged = row.adjusted if np.isfinite(row.adjusted) else row.value
    up = metric.higher_is_better
    low = judged < row.peer_p25 if up else judged > row.peer_p75      # worse than three quarters of peers
    high = judged > row.peer_p75 if up else judged < row.peer_p25     # better than three quarters
    far = abs(judged - row.peer_median) > MARGIN * abs(row.peer_median)
    peers = (f"peer median {fmt(row.peer_median, metric)} (middle half {fmt(row.peer_p25, metric)}–"
             f"{fmt(row.peer_p75, metric)}, {row.n_peers} peers)")
    own = f"{label} {fmt(row.value, metric)}" + (f" ({_counts(row, metric)})" if metric.kind == "ratio" else "")
    adjusted = (f"; {fmt(judged, metric)} after allowing for the small sample"
                if metric.kind == "ratio" and abs(judged - row.value) > 0.005 else "")
    if low and far:
        side = "below the bottom quarter" if up else "worse than three quarters"
        return "shortfall", f"{own} vs {peers}{adjusted}: {side} of peers"
    if high and far:
        return "strength", f"{own} vs {peers}{adjusted}: better than three quarters of peers"
    return "in line", f"{own} vs {peers}{adjusted}"


def _counts(row, metric) -> str:
    if not np.isfinite(row.denominator):
        return "derived"
    if metric.kind == "ratio":
        return f"{row.numerator:.0f} of {row.denominator:.0f}"
    if metric.kind == "mean":
        return f"{row.denominator:.0f} observations"
    return f"{row.numerator:.0f} in {row.denominator:.0f} weeks"


def fmt(value: float, metric) -> str:
    """A metric value as a sales manager reads it: ``6%``, ``3.5/wk``, ``12.0 days``, ``$24,500``."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if metric.unit == "%":
        return f"{100 * value:.0f}%"
    if metric.unit == "$":
        return f"${value:,.0f}"
    if metric.unit == "$ per day":
        return f"${value:,.0f}/day"
    if metric.unit == "days":
        return f"{value:.1f} days"
    return f"{value:.1f}/wk"


def _add_unavailable(card: pd.DataFrame, data: SalesData, reps: pd.DataFrame) -> pd.DataFrame:
    missing = [m for m in METRICS.values() if not all(data.has(t) for t in m.needs)]
    if not missing:
        return card
    tables = sorted({t for m in missing for t in m.needs if not data.has(t)})
    extra = [reps[["rep_id", "rep_name", "team"]].assign(
        metric=m.name, flag="unavailable",
        reason=f"{m.label.lower()}: unavailable, the source has no {' or '.join(tables)} table")
        for m in missing]
    return pd.concat([card, *extra], ignore_index=True)


def judged_reps(card: pd.DataFrame, *, besides: str | None = None) -> list[str]:
    """Reps of a scorecard that are judged (not ramping), optionally without ``besides``."""
    ramping = card.groupby("rep_id", sort=False)["flag"].agg(lambda f: (f == "ramping").any())
    return [r for r in ramping.index[~ramping] if r != besides]


def peer_ids(card: pd.DataFrame, rep_id: str) -> list[str]:
    """The rep's judged peers in a scorecard (same team, not ramping, the rep excluded)."""
    team = card.drop_duplicates("rep_id").set_index("rep_id")["team"]
    return [r for r in judged_reps(card, besides=rep_id) if team[r] == team[rep_id]]


def peers_of(data: SalesData, rep_id: str, *, on: str | pd.Timestamp, peer_by: str = "team") -> list[str]:
    """The rep's peers on a date: same team (or segment, or everyone), not ramping then, the rep excluded."""
    reps = _rep_table(data, pd.Timestamp(on), peer_by).set_index("rep_id")
    group = reps.loc[rep_id, "group"]
    chosen = reps.index[(reps["group"] == group) & ~reps["ramping"] & (reps.index != rep_id)]
    return chosen.tolist()


def plan_peers(data: SalesData, plan, *, panel: pd.DataFrame | None = None) -> list[str]:
    """A plan's comparison group: the rep's peers when the diagnosis window began."""
    return peers_of(data, plan.rep_id, on=plan.diagnosis_window.start, peer_by=plan.peer_by)
