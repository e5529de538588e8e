"""Peer benchmarks and the scorecard: how each rep compares with their peers over a window.

Peers are the rep's team (or segment, or everyone, by the policy), the rep excluded, ramping reps
excluded; a group with fewer than ``min_peers`` judged peers widens to the segment, then the company. For
each rep and metric: the peer median and quartiles, the rep's percentile among peers, and a flag.

One decision path: every flag on every metric comes from one rule. A shortfall is flagged only beyond the
rep's own sampling noise and the peers' natural spread: the rep's rate is set against the peers' pooled rate
in a funnel plot (:mod:`pipnb.stats.funnel`: counts per week, Poisson times the peers' weekly dispersion
(:func:`weekly_pearson`), binomial cohort ratios, touches per open-opportunity day, per-deal means such as deal
size and sales cycle on the log scale, each with the between-rep spread estimated from the rep's peers' winsorized
z-scores and the uncertainty of the peers' pooled rate), at a level that keeps the chance of flagging a rep whose
true rates equal their peers' on any flaggable metric (the outcomes and drivers with a noise model,
:data:`~pipnb.schema.FLAG_METRICS`) at the policy's ``false_flag_rate`` (Bonferroni across them), and beyond
the practical ``margin`` (20% from the peer median, the policy's rule). A metric the rule cannot judge
(pipeline velocity, a product of others; the context metrics) is shown with the flag ``context``, never
flagged. Each row is a finding classified and worded by :mod:`pipnb.findings`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from statistics import NormalDist

import numpy as np
import pandas as pd

from pipnb.alerts import not_measurable
from pipnb.data import SalesData
from pipnb.dates import read_date
from pipnb.errors import PipnbError, UnknownRepError
from pipnb.findings import (
    CONTEXT,
    INACTIVE,
    NO_RECORDS,
    RAMPING,
    SHORTFALL,
    STRENGTH,
    UNAVAILABLE,
    UNCONFIRMED,
    classify,
    what_it_shows,
)
from pipnb.metrics import data_window, week_start, weekly_panel, window_metrics, window_moments
from pipnb.policy import Policy, resolve_policy
from pipnb.schema import FLAG_METRICS, METRICS
from pipnb.sources import accepts_path
from pipnb.stats.funnel import (
    funnel_limit,
    funnel_scale,
    funnel_z,
    peer_funnel,
    within_dispersion,
    within_variance,
)

MIN_EVENTS = 5       # ratio/mean metrics with fewer trials than this are not flagged
PEER_LEVELS = {"team": ("team", "segment", "all"), "segment": ("segment", "all"), "all": ("all",)}


@accepts_path
def scorecard(data: SalesData, as_of: str | pd.Timestamp | None = None, weeks: int | None = None, *,
              since: str | pd.Timestamp | None = None, peer_by: str | None = None,
              win_rate_basis: str | None = None, policy: Policy | str | None = None,
              panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every rep against their peers on every metric over one window.

    Parameters
    ----------
    data
        Validated sales data.
    as_of
        Last day of the window (default: the last day with data).
    weeks
        Window length in whole weeks, ending with the week that contains ``as_of``
        (default: the policy's ``diagnosis_weeks``).
    since
        Alternative to ``weeks``: the window starts with the week containing this date.
    peer_by
        ``"team"``, ``"segment"`` or ``"all"`` (default: the policy's).
    win_rate_basis
        ``"closed"`` or ``"all"`` (see :func:`pipnb.window_metrics`; default: the policy's).
    policy
        The settings (a :class:`~pipnb.policy.Policy` or a path; default ``params/policy.yaml``); the
        arguments above override it.
    panel
        A precomputed :func:`pipnb.weekly_panel` (computed here when omitted).

    Returns
    -------
    pandas.DataFrame
        One row per rep and metric, the structured finding for that metric: rep_id, rep_name, team, metric,
        label, value (NaN when unavailable, never 0), numerator, denominator, peer_median, peer_p25, peer_p75,
        n_peers (the peers with a value), percentile (the share of peers this rep does better than: higher is
        better for every metric, fewer days between touches included), z (the funnel z-score, positive when
        better than peers; NaN when not judged), flag_limit (the value beyond which this window flags a
        shortfall: the smallest shortfall it can show), flag (the classification, see
        :mod:`pipnb.findings`: shortfall, strength, in line, below peers within noise, unavailable, ramping,
        inactive, context ...), why_unavailable (empty unless unavailable), reason (the finding in words,
        with its evidence), peer_group, tau2 (the between-rep variance of the metric), dispersion (counts: the
        peers' weekly dispersion beyond Poisson that sets the rep's own noise; NaN otherwise), target_var (the
        variance of the peers' level the rep is judged against). ``attrs`` hold the
        window, the settings used (``peer_by``, ``win_rate_basis``, ``weeks``, ``policy``), each rep's
        ``peers`` and ``z_crit``.

    Example
    -------
    >>> import pipnb as pn
    >>> card = pn.scorecard(pn.load("data/demo"))        # doctest: +SKIP
    >>> card.query("flag == 'shortfall'")               # doctest: +SKIP
    """
    policy = resolve_policy(policy).with_overrides(peer_by=peer_by, win_rate_basis=win_rate_basis,
                                                   diagnosis_weeks=weeks)
    panel = weekly_panel(data) if panel is None else panel
    window = data_window(data, as_of, policy.diagnosis_weeks, since=since)   # never past the data's last day
    as_of, start, end, weeks = window.as_of, window.start, window.end, window.weeks
    pooled = window_metrics(panel, start, end, win_rate_basis=policy.win_rate_basis)
    reps = peer_table(data, on=start, policy=policy, until=window.last_day, silent=_silent(pooled))
    missing = {**not_measurable(pooled), **missing_sources(data)}    # unavailable for every rep, never 0
    moments = pd.concat([window_moments(panel, start, end), weekly_pearson(panel, start, end)])
    card = _benchmark(pooled, reps, policy, moments, missing)
    card = _add_unavailable(card, reps, missing).rename(columns={"group": "peer_group"})
    if policy.confirm_previous_window and since is None:
        card = _confirm(card, data, panel, start, weeks, policy)
    card["label"] = card["metric"].map(lambda m: METRICS[m].label)
    card.attrs.update(window_start=start, window_end=window.last_day, as_of=as_of,
                      peer_by=policy.peer_by, win_rate_basis=policy.win_rate_basis, weeks=weeks, policy=policy,
                      peers=PeerGroups(zip(reps["rep_id"], _peer_lists(reps), strict=True)),
                      z_crit=_z_crit(policy))
    columns = ["rep_id", "rep_name", "team", "metric", "label", "value", "numerator", "denominator",
               "peer_median", "peer_p25", "peer_p75", "n_peers", "percentile", "z", "flag_limit", "flag",
               "why_unavailable", "reason", "peer_group", "tau2", "dispersion", "target_var"]
    order = {m: i for i, m in enumerate(METRICS)}
    card = card.sort_values(["rep_id", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s)
    return card[columns].reset_index(drop=True)


class PeerGroups(dict):
    """Each rep's peers (rep id → list of rep ids), as a scorecard's ``attrs["peers"]``; read, never changed.

    pandas deep-copies a frame's ``attrs`` on every operation (a column, a filter, a merge): for a team of 500,
    copying 500 lists each time cost more than the charts drawn from the card. This mapping is shared instead.
    """

    def __deepcopy__(self, memo: dict) -> PeerGroups:
        return self


# -- peer groups: the one rule ------------------------------------------------------------------
def peer_table(data: SalesData, *, on: str | pd.Timestamp, policy: Policy | None = None,
               until: str | pd.Timestamp | None = None, silent: Iterable[str] = ()) -> pd.DataFrame:
    """Every rep with their peer group and whether they are ramping on a date.

    The group is the rep's team, segment (a rep without one keeps their team) or ``"all"``, by the
    policy's ``peer_by``; a rep hired less than ``ramp_weeks`` before ``on`` is ramping: neither judged
    nor a peer; so is a rep who had left (``end_date``, or ``active: false``) before ``until`` (``inactive``),
    and a rep of ``silent`` (no record in the window: nothing to judge them on).
    A rep whose group has fewer than ``min_peers`` judged peers is compared with the next wider group
    (team, then segment, then everyone) and ``widened`` says from where.
    """
    policy = policy or Policy.default()
    reps = data.reps.copy()
    hire = reps["hire_date"] if "hire_date" in reps else pd.Series(pd.NaT, index=reps.index)
    reps["hire_date"] = hire
    reps["tenure_weeks"] = (pd.Timestamp(on) - hire).dt.days / 7
    reps["inactive"] = data.inactive(until if until is not None else on).to_numpy(bool)
    reps["ramping"] = (reps["tenure_weeks"] < policy.ramp_weeks).to_numpy(bool) & ~reps["inactive"]
    reps["silent"] = reps["rep_id"].astype(str).isin(set(silent)).to_numpy(bool) & ~reps["inactive"]
    keys = level_keys(reps)
    levels = PEER_LEVELS[policy.peer_by]
    judged = ~_excluded(reps)
    chosen = np.full(len(reps), levels[-1], dtype=object)
    for level in reversed(levels):
        key = keys[level]
        n_peers = (key[:, None] == key[None, :]).astype(int) @ judged.astype(int) - judged.astype(int)
        chosen = np.where(n_peers >= policy.min_peers, level, chosen)
    reps["peer_level"] = chosen
    reps["group"] = [f"{level}:{keys[level][i]}" if level != "all" else "all" for i, level in enumerate(chosen)]
    reps["widened"] = np.where(chosen != levels[0], levels[0], "")
    return reps


def level_keys(reps: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each rep's group key at every peer level (``team``, ``segment``, ``all``) of a :func:`peer_table`."""
    team = reps["team"].astype(str).to_numpy()
    segment = reps["segment"].fillna(reps["team"]).astype(str).to_numpy() if "segment" in reps else team
    return {"team": team, "segment": segment, "all": np.full(len(reps), "all", dtype=object)}


def peer_mask(reps: pd.DataFrame) -> np.ndarray:
    """``mask[i, j]``: rep ``j`` is a peer of rep ``i`` (same group at ``i``'s level, not ramping, not ``i``)."""
    keys = level_keys(reps)
    level = reps["peer_level"].to_numpy()
    mask = np.zeros((len(reps), len(reps)), dtype=bool)
    for name, key in keys.items():
        rows = level == name
        mask[rows] = key[rows][:, None] == key[None, :]
    np.fill_diagonal(mask, False)
    return mask & ~_excluded(reps)[None, :]


def _excluded(reps: pd.DataFrame) -> np.ndarray:
    """Reps who are neither judged nor a peer: ramping, inactive, or without a record in the window."""
    out = (reps["ramping"] | reps["inactive"]).to_numpy(bool)
    return out | reps["silent"].to_numpy(bool) if "silent" in reps else out


def _silent(pooled: pd.DataFrame) -> list[str]:
    """Reps without a record dated in the window: no opportunity created or closed, no activity."""
    flows = pooled[pooled["metric"].isin(("opps_created_per_week", "emails_per_week", "calls_per_week",
                                          "meetings_per_week"))]
    closed = pooled[pooled["metric"] == "win_rate"]
    records = pd.concat([flows.groupby("rep_id")["numerator"].sum(),
                         closed.groupby("rep_id")["denominator"].sum()]).groupby(level=0).sum()
    return records.index[records.fillna(0) <= 0].astype(str).tolist()


def missing_sources(data: SalesData) -> dict[str, str]:
    """The metrics the source cannot give, and why (``"the source has no meetings"``): a table, an activity
    kind or a column it lacks. Such a metric is unavailable for every rep, never 0."""
    out: dict[str, str] = {}
    kinds = set(data.activities["kind"].dropna().astype(str)) if data.has("activities") else set()
    for name, spec in METRICS.items():
        tables = [t for t in spec.needs if not data.has(t)]
        if tables:
            out[name] = f"the source has no {' or '.join(tables)} table"
        elif spec.source_kind and spec.source_kind not in kinds:
            out[name] = f"the source has no {spec.source_kind}s"
        elif spec.source_column:
            table, column = spec.source_column.split(".")
            frame = getattr(data, table)
            if column not in frame or not frame[column].notna().any():
                out[name] = ("the source's activities are not linked to opportunities" if column == "opp_id" else
                             f"the source has no {column.replace('_', ' ')}s")
    if "avg_deal_size" in out and "pipeline_velocity" not in out:
        out["pipeline_velocity"] = out["avg_deal_size"]
    return out


def _peer_lists(reps: pd.DataFrame) -> list[list[str]]:
    ids = reps["rep_id"].astype(str).to_numpy()
    return [ids[row].tolist() for row in peer_mask(reps)]


def peers_in(reps: pd.DataFrame, rep_id: str) -> list[str]:
    """The peers of ``rep_id`` in a :func:`peer_table` (:class:`UnknownRepError` when it is not there)."""
    ids = reps["rep_id"].astype(str).to_numpy()
    if rep_id not in ids:
        raise UnknownRepError(f"rep '{rep_id}' is not in the data")
    return _peer_lists(reps)[int(np.flatnonzero(ids == rep_id)[0])]


# -- flags ----------------------------------------------------------------------------------------
def _z_crit(policy: Policy) -> float:
    """One-sided z a shortfall must pass: ``false_flag_rate`` shared by every flaggable metric (Bonferroni
    across :data:`~pipnb.schema.FLAG_METRICS`: outcomes and drivers with a noise model)."""
    return NormalDist().inv_cdf(1 - policy.false_flag_rate / len(FLAG_METRICS))


def _benchmark(pooled: pd.DataFrame, reps: pd.DataFrame, policy: Policy, moments: pd.DataFrame,
               missing: dict[str, str]) -> pd.DataFrame:
    mask = peer_mask(reps)
    frames = []
    base = reps[["rep_id", "rep_name", "team", "group", "ramping", "inactive", "silent", "hire_date", "widened"]]
    moments = moments.set_index(["metric", "rep_id"])
    for metric, rows in pooled.groupby("metric", sort=False):
        rows = base.merge(rows, on="rep_id", how="left").assign(metric=metric)
        if metric in missing:        # the source lacks what it is counted from: unavailable, never 0
            rows = rows.assign(value=np.nan, numerator=np.nan, denominator=np.nan)
        if metric in moments.index.get_level_values(0):
            rows = rows.join(moments.loc[metric], on="rep_id")
        frames.append(_benchmark_metric(rows, mask, METRICS[metric], policy, missing.get(metric, "")))
    return pd.concat(frames, ignore_index=True)


def _benchmark_metric(rows: pd.DataFrame, mask: np.ndarray, metric, policy: Policy, missing: str) -> pd.DataFrame:
    """Peer statistics and flags for one metric, all reps at once (each against their own peers)."""
    rows = rows.reset_index(drop=True)
    value = rows["value"].to_numpy(float)
    peer = mask & np.isfinite(value)[None, :]
    peer_values = np.where(peer, value[None, :], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # a rep without peers: an all-NaN row
        p25, median, p75 = np.nanquantile(peer_values, [0.25, 0.5, 0.75], axis=1)
    n_peers = peer.sum(axis=1)
    below = (peer_values < value[:, None]).sum(axis=1) + 0.5 * (peer_values == value[:, None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        percentile = np.where(n_peers > 0, 100 * below / n_peers, np.nan)
    out = rows.assign(peer_median=median, peer_p25=p25, peer_p75=p75, n_peers=n_peers,
                      percentile=np.where(np.isfinite(value), percentile if metric.higher_is_better
                                          else 100 - percentile, np.nan))
    out = out.assign(**_funnel(out, peer, metric, policy))
    flags = [_flag(r, metric, policy, missing) for r in out.itertuples(index=False)]
    out["flag"] = [f for f, _, _ in flags]
    out["why_unavailable"] = [w for _, w, _ in flags]
    out["reason"] = [r for _, _, r in flags]
    return out


def _funnel(rows: pd.DataFrame, peer: np.ndarray, metric, policy: Policy) -> dict[str, np.ndarray]:
    """Funnel z-score (positive = better than peers), the flag limit and tau² for one metric.

    Counts, ratios and touch gaps on their rate scale; a per-deal mean (deal size, sales cycle) on the log
    scale, its noise the peers' pooled within-rep variance of one deal (``"logmean"``), its flag limit turned
    back into the metric's own unit by the rep's own ratio of mean to geometric mean (so ``value`` beyond
    ``flag_limit`` exactly when ``z`` is beyond the critical value).
    """
    n = len(rows)
    nan = np.full(n, np.nan)
    kind = metric.noise_model
    if not metric.flaggable:
        return {"z": nan, "flag_limit": nan, "tau2": nan, "dispersion": nan, "target_var": nan}
    sigma2 = None
    if kind == "logmean":
        count = rows["n"].fillna(0).to_numpy(float) if "n" in rows else np.zeros(n)
        logs = rows["mean_log"].to_numpy(float) * count if "mean_log" in rows else nan
        scale = funnel_scale(kind, np.nan_to_num(logs), count)
        sigma2 = within_variance(rows["ss_log"].to_numpy(float) if "ss_log" in rows else nan, count, peer)
    else:
        scale = funnel_scale(kind, rows["numerator"].fillna(0).to_numpy(float),
                             rows["denominator"].fillna(0).to_numpy(float))
        if kind == "count" and "x2" in rows:      # weeks that vary more than Poisson: the rep's own noise
            sigma2 = within_dispersion(rows["x2"].to_numpy(float), rows["dof"].to_numpy(float), peer)
    y, volume = scale.y, scale.n
    has = (volume > 0) & np.isfinite(rows["value"].to_numpy(float))
    fun = peer_funnel(scale, peer & has[None, :], sigma2)
    target, tau2 = fun.target, fun.tau2
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(has, y / np.where(has, volume, 1), np.nan)
    judged = has & ~(rows["ramping"] | rows["inactive"] | rows["silent"]).to_numpy(bool) & np.isfinite(target)
    if kind == "logmean":
        judged &= np.isfinite(sigma2) & (sigma2 > 0)
    sign = -1.0 if (kind != "gap" and not metric.higher_is_better) else 1.0
    extra = {"target_var": fun.target_var}
    z = sign * funnel_z(rate, target, volume, kind, tau2, sigma2, **extra)
    crit = _z_crit(policy)
    limit = funnel_limit(target, volume, kind, tau2, -sign * crit, sigma2, **extra)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if kind == "gap":
            limit = 1.0 / limit
        elif kind == "logmean":
            limit = rows["value"].to_numpy(float) * np.exp(limit - rate)
    median = rows["peer_median"].to_numpy(float)
    margin = median * ((1 - policy.margin) if metric.higher_is_better else (1 + policy.margin))
    flag_limit = np.minimum(limit, margin) if metric.higher_is_better else np.maximum(limit, margin)
    dispersion = np.broadcast_to(np.asarray(sigma2, dtype=float), (n,)) if kind == "count" and sigma2 is not None \
        else nan
    return {"z": np.where(judged, z, np.nan), "flag_limit": np.where(judged, flag_limit, np.nan),
            "tau2": tau2, "dispersion": dispersion, "target_var": np.broadcast_to(fun.target_var, (n,))}


def _flag(row, metric, policy: Policy, missing: str) -> tuple[str, str, str]:
    """The classification of one row (see :mod:`pipnb.findings`), why it is unavailable, and the reason: the
    finding's numbers and evidence in words."""
    label = metric.label.lower()
    if missing:
        return UNAVAILABLE, missing, f"{label}: unavailable, {missing}"
    if row.inactive:
        return INACTIVE, "", f"{label}: left the company, neither judged nor a peer"
    if row.silent:
        return UNAVAILABLE, NO_RECORDS, f"{label}: {NO_RECORDS}: not judged"
    if row.ramping:
        shown = f" {metric.fmt(row.value)}" if np.isfinite(row.value) else ""
        return RAMPING, "", f"{label}{shown}: hired {row.hire_date:%Y-%m-%d}, still ramping, not judged"
    if not np.isfinite(row.value):
        why = f"no {metric.counted} in the window"
        return UNAVAILABLE, why, f"{label}: unavailable, {why}"
    widened = f"; peers widened from the {row.widened}, too few to compare" if row.widened else ""
    own = f"{label} {metric.fmt(row.value)}" + (f" ({_counts(row, metric)})" if metric.kind != "derived" else "")
    peers = (f"peer median {metric.fmt(row.peer_median)} (middle half {metric.fmt(row.peer_p25)}–"
             f"{metric.fmt(row.peer_p75)}, {row.n_peers} peers{widened})")
    if not metric.flaggable:
        why = ("a product of other metrics, with no noise model of its own" if metric.kind == "derived" else
               "neither an outcome nor a driver the scan judges")
        return CONTEXT, "", f"{own} vs {peers}: context, not judged ({why})"
    if row.n_peers < min(3, policy.min_peers):
        why = f"too few peers to compare ({row.n_peers})"
        return UNAVAILABLE, why, f"{own}: unavailable, {why}"
    if metric.kind in ("ratio", "mean") and row.denominator < MIN_EVENTS:
        why = f"too few {metric.counted} to judge ({row.denominator:.0f}; at least {MIN_EVENTS} needed)"
        return UNAVAILABLE, why, f"{own}: unavailable, {why}"
    if not np.isfinite(row.z):
        why = f"no spread of {metric.counted} among the peers to judge by"
        return UNAVAILABLE, why, f"{own} vs {peers}: unavailable, {why}"
    crit = _z_crit(policy)
    flag = classify(value=row.value, median=row.peer_median, z=row.z, crit=crit, margin=policy.margin,
                    higher_is_better=metric.higher_is_better)
    strength = f"{_strength(row.z, crit)}, " if flag in (SHORTFALL, STRENGTH) else ""
    evidence = f"{strength}z = {row.z:+.1f}; flagged beyond z = -{crit:.2f} and {policy.margin:.0%} from the median"
    if flag != SHORTFALL:
        evidence += (f"; this window would flag {'below' if metric.higher_is_better else 'above'} "
                     f"{metric.fmt(row.flag_limit)}")
    shows = what_it_shows(flag, metric, margin=policy.margin)
    return flag, "", f"{own} vs {peers}: {shows} ({evidence})"


def _strength(z: float, crit: float) -> str:
    """Strength of evidence in words, from the funnel z-score."""
    size = abs(z)
    if size >= crit + 1:
        return "strong evidence"
    if size >= crit:
        return "clear evidence"
    if size >= 1.64:
        return "some evidence, not enough to flag"
    return "within the noise expected between reps"


def weekly_pearson(panel: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Each rep's Pearson statistic of their weekly counts over the weeks ``start``..``end`` for the count
    metrics: ``metric, rep_id, x2, dof`` with ``x2 = sum (c_w - d_w m)^2 / (d_w m)`` about the rep's own rate
    ``m`` and ``dof`` the weeks with exposure less one (0 when the rep counted nothing). The funnel's
    :func:`~pipnb.stats.funnel.within_dispersion` pools it over each rep's peers."""
    start, end = week_start(pd.Timestamp(start)), week_start(pd.Timestamp(end))
    counts = [m for m, spec in METRICS.items() if spec.flaggable and spec.noise_model == "count"]
    rows = panel[(panel["week"] >= start) & (panel["week"] <= end) & panel["metric"].isin(counts)
                 & (panel["denominator"] > 0)]
    keys = [rows["metric"], rows["rep_id"]]
    rate = rows.groupby(keys)["numerator"].transform("sum") / rows.groupby(keys)["denominator"].transform("sum")
    expected = rows["denominator"] * rate
    with np.errstate(invalid="ignore", divide="ignore"):
        x2 = ((rows["numerator"] - expected) ** 2 / expected).where(expected > 0, 0.0)
    out = (rows.assign(x2=x2, dof=(rate > 0).astype(float)).groupby(["metric", "rep_id"])
           .agg(x2=("x2", "sum"), dof=("dof", "sum")).reset_index())
    out["dof"] = np.maximum(out["dof"] - 1, 0.0)
    return out


def _confirm(card: pd.DataFrame, data: SalesData, panel: pd.DataFrame, start: pd.Timestamp, weeks: int,
             policy: Policy) -> pd.DataFrame:
    """Keep a shortfall only when the window before also showed it (the policy's confirmation rule)."""
    before = scorecard(data, as_of=start - pd.Timedelta(days=1), weeks=weeks, panel=panel,
                       policy=policy.with_overrides(confirm_previous_window=False))
    held = set(zip(*before.loc[before["flag"] == "shortfall", ["rep_id", "metric"]].to_numpy().T)) \
        if (before["flag"] == "shortfall").any() else set()
    card = card.copy()
    lone = (card["flag"] == SHORTFALL) & ~pd.Series(list(zip(card["rep_id"], card["metric"])),
                                                       index=card.index).isin(held)
    card.loc[lone, "reason"] = card.loc[lone, "reason"] + "; not put forward: the window before did not show it"
    card.loc[lone, "flag"] = UNCONFIRMED
    return card


def _counts(row, metric) -> str:
    if not np.isfinite(row.denominator):
        return "derived"
    if metric.kind == "ratio":
        return f"{row.numerator:.0f} of {row.denominator:.0f}"
    if metric.kind == "mean":
        return f"{row.denominator:.0f} {metric.counted}"
    return f"{row.numerator:.0f} in {row.denominator:.0f} weeks"


def _add_unavailable(card: pd.DataFrame, reps: pd.DataFrame, missing: dict[str, str]) -> pd.DataFrame:
    """Rows for the metrics whose table the source lacks (the panel has none for them)."""
    absent = [m for m in METRICS if m in missing and m not in set(card["metric"])]
    if not absent:
        return card
    extra = [reps[["rep_id", "rep_name", "team", "group"]].assign(
        metric=m, flag=UNAVAILABLE, why_unavailable=missing[m],
        reason=f"{METRICS[m].label.lower()}: unavailable, {missing[m]}") for m in absent]
    return pd.concat([card, *extra], ignore_index=True)


def judged_reps(card: pd.DataFrame, *, besides: str | None = None) -> list[str]:
    """Reps of a scorecard that are judged (not ramping, not inactive, with records in the window),
    optionally without ``besides``."""
    out = card["flag"].isin((RAMPING, INACTIVE))
    if "why_unavailable" in card:
        out |= card["why_unavailable"].eq(NO_RECORDS)
    out = out.groupby(card["rep_id"], sort=False).any()
    return [r for r in out.index[~out] if r != besides]


def peer_ids(card: pd.DataFrame, rep_id: str) -> list[str]:
    """The rep's peers in a scorecard: the peer group the card judged them in (see :func:`peer_table`)."""
    peers = card.attrs.get("peers")
    if peers is None:
        raise UnknownRepError("this scorecard carries no peer groups; compute it with pipnb.scorecard")
    if rep_id not in peers:
        raise UnknownRepError(f"rep '{rep_id}' is not in the scorecard")
    return list(peers[rep_id])


@accepts_path
def peers_of(data: SalesData, rep_id: str, *, on: str | pd.Timestamp, peer_by: str | None = None,
             policy: Policy | None = None) -> list[str]:
    """The rep's peers on a date: same peer group by the policy's ``peer_by``, not ramping, the rep excluded."""
    policy = (policy or Policy.default()).with_overrides(peer_by=peer_by)
    return peers_in(peer_table(data, on=pd.Timestamp(read_date(on, "on")), policy=policy), rep_id)


@accepts_path
def plan_peers(data: SalesData, plan, *, policy: Policy | None = None) -> list[str]:
    """A plan's comparison group: the rep's peers when the diagnosis window began."""
    if not all(hasattr(plan, k) for k in ("rep_id", "diagnosis_window", "peer_by")):
        raise PipnbError(f"plan_peers takes a plan, not a {type(plan).__name__}: pn.plan_peers(data, "
                         "pn.Plan.from_yaml('params/plans/<rep>.yaml'))")
    return peers_of(data, plan.rep_id, on=plan.diagnosis_window.start, peer_by=plan.peer_by, policy=policy)
