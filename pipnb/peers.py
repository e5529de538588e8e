"""Peer benchmarks and the scorecard: how each rep compares with their peers over a window.

Peers are the rep's team (or segment, or everyone, by the policy), the rep excluded, ramping reps
excluded; a group with fewer than ``min_peers`` judged peers widens to the segment, then the company. For
each rep and metric: the peer median and quartiles, the rep's percentile among peers, and a flag.

A shortfall is flagged only beyond the rep's own sampling noise and the peers' natural spread: the rep's
rate is set against the peers' pooled rate in a funnel plot (:mod:`pipnb.stats.funnel`: Poisson counts per
week, binomial cohort ratios, touches per open-opportunity day, each with the between-rep spread
estimated from the team), at a level that keeps the chance of flagging a rep whose true rates equal their
peers' on any plan metric at the policy's ``false_flag_rate`` (Bonferroni across the plan metrics), and
beyond the practical ``margin`` (20% from the peer median, the article's rule).
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.errors import UnknownRepError
from pipnb.metrics import data_window, weekly_panel, window_metrics
from pipnb.policy import Policy, resolve_policy
from pipnb.schema import METRICS, PLAN_METRICS
from pipnb.sources import accepts_path
from pipnb.stats.funnel import funnel_limit, funnel_scale, funnel_z, peer_overdispersion

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
        One row per rep and metric: rep_id, rep_name, team, metric, label, value, numerator,
        denominator, peer_median, peer_p25, peer_p75, n_peers, percentile (the share of peers this rep does
        better than: higher is better for every metric, fewer days between touches included), z (the funnel z-score,
        positive when better than peers), flag_limit (the value beyond which this window flags a
        shortfall: the smallest shortfall it can show), flag, reason, peer_group, tau2 (the between-rep
        variance of the metric). ``attrs`` hold the window, the settings used (``peer_by``,
        ``win_rate_basis``, ``weeks``, ``policy``), each rep's ``peers`` and ``z_crit``.

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
    reps = peer_table(data, on=start, policy=policy, until=window.last_day)
    card = _benchmark(pooled, reps, policy)
    card = _add_unavailable(card, data, reps).rename(columns={"group": "peer_group"})
    if policy.confirm_previous_window and since is None:
        card = _confirm(card, data, panel, start, weeks, policy)
    card["label"] = card["metric"].map(lambda m: METRICS[m].label)
    card.attrs.update(window_start=start, window_end=window.last_day, as_of=as_of,
                      peer_by=policy.peer_by, win_rate_basis=policy.win_rate_basis, weeks=weeks, policy=policy,
                      peers=PeerGroups(zip(reps["rep_id"], _peer_lists(reps), strict=True)),
                      z_crit=_z_crit(policy))
    columns = ["rep_id", "rep_name", "team", "metric", "label", "value", "numerator", "denominator",
               "peer_median", "peer_p25", "peer_p75", "n_peers", "percentile", "z", "flag_limit", "flag",
               "reason", "peer_group", "tau2"]
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
               until: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Every rep with their peer group and whether they are ramping on a date.

    The group is the rep's team, segment (a rep without one keeps their team) or ``"all"``, by the
    policy's ``peer_by``; a rep hired less than ``ramp_weeks`` before ``on`` is ramping: neither judged
    nor a peer; so is a rep who had left (``end_date``, or ``active: false``) before ``until`` (``inactive``).
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
    keys = level_keys(reps)
    levels = PEER_LEVELS[policy.peer_by]
    judged = ~(reps["ramping"] | reps["inactive"]).to_numpy(bool)
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
    return mask & ~(reps["ramping"] | reps["inactive"]).to_numpy(bool)[None, :]


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
    """One-sided z a shortfall must pass: ``false_flag_rate`` shared by the plan metrics (Bonferroni)."""
    return NormalDist().inv_cdf(1 - policy.false_flag_rate / len(PLAN_METRICS))


def _benchmark(pooled: pd.DataFrame, reps: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    mask = peer_mask(reps)
    frames = []
    base = reps[["rep_id", "rep_name", "team", "group", "ramping", "inactive", "hire_date", "widened"]]
    for metric, rows in pooled.groupby("metric", sort=False):
        rows = base.merge(rows, on="rep_id", how="left").assign(metric=metric)
        frames.append(_benchmark_metric(rows, mask, METRICS[metric], policy))
    return pd.concat(frames, ignore_index=True)


def _benchmark_metric(rows: pd.DataFrame, mask: np.ndarray, metric, policy: Policy) -> pd.DataFrame:
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
    flags = [_flag(r, metric, policy) for r in out.itertuples(index=False)]
    out["flag"] = [f for f, _ in flags]
    out["reason"] = [r for _, r in flags]
    return out


def _funnel(rows: pd.DataFrame, peer: np.ndarray, metric, policy: Policy) -> dict[str, np.ndarray]:
    """Funnel z-score (positive = better than peers), the flag limit and tau² for one metric."""
    n = len(rows)
    nan = np.full(n, np.nan)
    if metric.model is None:
        return {"z": nan, "flag_limit": nan, "tau2": nan}
    kind = "count" if metric.model == "count" else metric.model
    scale = funnel_scale(kind, rows["numerator"].fillna(0).to_numpy(float),
                         rows["denominator"].fillna(0).to_numpy(float))
    y, volume = scale.y, scale.n
    has = volume > 0
    w = peer & has[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        target = (w @ y) / (w @ volume)
        rate = np.where(has, y / np.where(has, volume, 1), np.nan)
    judged = has & ~(rows["ramping"] | rows["inactive"]).to_numpy(bool) & np.isfinite(target)
    tau2 = peer_overdispersion(kind, rate, volume, target, w)
    sign = -1.0 if (kind != "gap" and not metric.higher_is_better) else 1.0
    z = sign * funnel_z(rate, target, volume, kind, tau2)
    crit = _z_crit(policy)
    limit = funnel_limit(target, volume, kind, tau2, -sign * crit)
    with np.errstate(invalid="ignore", divide="ignore"):
        limit = 1.0 / limit if kind == "gap" else limit
    median = rows["peer_median"].to_numpy(float)
    margin = median * ((1 - policy.margin) if metric.higher_is_better else (1 + policy.margin))
    flag_limit = np.minimum(limit, margin) if metric.higher_is_better else np.maximum(limit, margin)
    return {"z": np.where(judged, z, np.nan), "flag_limit": np.where(judged, flag_limit, np.nan),
            "tau2": tau2}


def _flag(row, metric, policy: Policy) -> tuple[str, str]:
    label = metric.label.lower()
    if not np.isfinite(row.value):
        return "no data", f"{label}: no data in the window ({_counts(row, metric)})"
    if row.inactive:
        return "inactive", f"{label}: left the company, neither judged nor a peer"
    if row.ramping:
        return "ramping", (f"{label} {metric.fmt(row.value)}: hired {row.hire_date:%Y-%m-%d}, still ramping, "
                           "not judged")
    widened = f"; peers widened from the {row.widened}, too few to compare" if row.widened else ""
    if row.n_peers < min(3, policy.min_peers):
        return "in line", f"{label} {metric.fmt(row.value)}: only {row.n_peers} comparable peers, not judged"
    if metric.kind in ("ratio", "mean") and row.denominator < MIN_EVENTS:
        return "in line", f"{label} {metric.fmt(row.value)} ({_counts(row, metric)}): too few to judge"
    up = metric.higher_is_better
    own = f"{label} {metric.fmt(row.value)}" + (f" ({_counts(row, metric)})" if metric.kind == "ratio" else "")
    peers = (f"peer median {metric.fmt(row.peer_median)} (middle half {metric.fmt(row.peer_p25)}–"
             f"{metric.fmt(row.peer_p75)}, {row.n_peers} peers{widened})")
    far = abs(row.value - row.peer_median) > policy.margin * abs(row.peer_median)
    worse = row.value < row.peer_median if up else row.value > row.peer_median
    if np.isfinite(row.z):
        crit = _z_crit(policy)
        evidence = f"{_strength(row.z, crit)} (z = {row.z:+.1f}; flagged beyond ±{crit:.1f})"
        if row.z <= -crit and far and worse:
            return "shortfall", (f"{own} vs {peers}: a shortfall beyond noise and the {policy.margin:.0%} "
                                 f"margin, {evidence}")
        if row.z >= crit and far and not worse:
            return "strength", f"{own} vs {peers}: better than peers beyond noise, {evidence}"
        limit = f"; this window would flag {'below' if up else 'above'} {metric.fmt(row.flag_limit)}"
        return "in line", f"{own} vs {peers}: {evidence}{limit}"
    low = row.value < row.peer_p25 if up else row.value > row.peer_p75      # no noise model: quartiles
    high = row.value > row.peer_p75 if up else row.value < row.peer_p25
    if low and far:
        side = "below the bottom quarter" if up else "worse than three quarters"
        return "shortfall", f"{own} vs {peers}: {side} of peers"
    if high and far:
        return "strength", f"{own} vs {peers}: better than three quarters of peers"
    return "in line", f"{own} vs {peers}"


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


def _confirm(card: pd.DataFrame, data: SalesData, panel: pd.DataFrame, start: pd.Timestamp, weeks: int,
             policy: Policy) -> pd.DataFrame:
    """Keep a shortfall only when the window before also showed it (the policy's confirmation rule)."""
    before = scorecard(data, as_of=start - pd.Timedelta(days=1), weeks=weeks, panel=panel,
                       policy=policy.with_overrides(confirm_previous_window=False))
    held = set(zip(*before.loc[before["flag"] == "shortfall", ["rep_id", "metric"]].to_numpy().T)) \
        if (before["flag"] == "shortfall").any() else set()
    card = card.copy()
    lone = (card["flag"] == "shortfall") & ~pd.Series(list(zip(card["rep_id"], card["metric"])),
                                                       index=card.index).isin(held)
    card.loc[lone, "reason"] = card.loc[lone, "reason"] + "; not put forward: the window before did not show it"
    card.loc[lone, "flag"] = "in line"
    return card


def _counts(row, metric) -> str:
    if not np.isfinite(row.denominator):
        return "derived"
    if metric.kind == "ratio":
        return f"{row.numerator:.0f} of {row.denominator:.0f}"
    if metric.kind == "mean":
        return f"{row.denominator:.0f} observations"
    return f"{row.numerator:.0f} in {row.denominator:.0f} weeks"


def _add_unavailable(card: pd.DataFrame, data: SalesData, reps: pd.DataFrame) -> pd.DataFrame:
    missing = [m for m in METRICS.values() if not all(data.has(t) for t in m.needs)]
    if not missing:
        return card
    tables = sorted({t for m in missing for t in m.needs if not data.has(t)})
    extra = [reps[["rep_id", "rep_name", "team", "group"]].assign(
        metric=m.name, flag="unavailable",
        reason=f"{m.label.lower()}: unavailable, the source has no {' or '.join(tables)} table")
        for m in missing]
    return pd.concat([card, *extra], ignore_index=True)


def judged_reps(card: pd.DataFrame, *, besides: str | None = None) -> list[str]:
    """Reps of a scorecard that are judged (not ramping), optionally without ``besides``."""
    out = card.groupby("rep_id", sort=False)["flag"].agg(lambda f: f.isin(("ramping", "inactive")).any())
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
    return peers_in(peer_table(data, on=on, policy=policy), rep_id)


@accepts_path
def plan_peers(data: SalesData, plan, *, policy: Policy | None = None) -> list[str]:
    """A plan's comparison group: the rep's peers when the diagnosis window began."""
    return peers_of(data, plan.rep_id, on=plan.diagnosis_window.start, peer_by=plan.peer_by, policy=policy)
