"""Charts for the reports (seaborn on matplotlib).

Importing this module changes no global state: no backend switch, no seaborn theme, no rcParams. The
report style (seaborn's ``whitegrid``, text never parsed as math) is applied inside each function only
(:func:`styled`), so an analyst's own ``plt.plot(...)`` in the same notebook looks and displays as usual.

Every chart shows one rep against their peers as a *distribution*: peers are never named or labelled.
Functions return the matplotlib Figure so that notebooks can display it and tests can inspect it.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Image, display
from matplotlib.patches import Rectangle

from pipnb.peers import peer_ids, plan_peers
from pipnb.reviews import with_win_rate_basis
from pipnb.scan import flagged_reps, not_judged
from pipnb.schema import METRICS, PLAN_METRICS
from pipnb.stats import plan_windows
from pipnb.stats.funnel import funnel_limit, funnel_scale

REP_COLOR, PEER_COLOR, TARGET_COLOR = "#c0392b", "#7f8c8d", "#2471a3"


def report_style() -> dict:
    """The rcParams of the report charts: seaborn's ``whitegrid`` style and ``notebook`` context, and
    "$...$" in a rep's name shown as text, never as math."""
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook"), "text.parse_math": False}


def styled(draw):
    """Run ``draw`` inside ``plt.rc_context(report_style())``: the style applies to its figure only."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(report_style()):
            return draw(*args, **kwargs)

    return wrapper


def _scale(metric: str) -> float:
    return 100.0 if METRICS[metric].unit == "%" else 1.0


@styled
def peer_distribution(card: pd.DataFrame, rep_id: str, metrics: list[str]) -> plt.Figure:
    """The rep (red diamond) against the distribution of their peers (box and dots), one panel per metric.

    Parameters
    ----------
    card
        A :func:`pipnb.scorecard` (the whole team).
    rep_id
        The rep to highlight.
    metrics
        Metrics to show, one small panel each.
    """
    rep = card[card["rep_id"] == rep_id].set_index("metric")
    peers = card[card["rep_id"].isin(peer_ids(card, rep_id))]
    metrics = [m for m in metrics if m in rep.index and np.isfinite(rep.loc[m, "value"])]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(2.3 * max(len(metrics), 1), 3.4), squeeze=False)
    jitter = np.random.default_rng(0)     # fixed, so the same data always draws the same picture
    for ax, metric in zip(axes[0], metrics):
        scale = _scale(metric)
        values = (peers.loc[peers["metric"] == metric, "value"].dropna() * scale).to_numpy()
        if len(values):
            ax.boxplot(values, positions=[0], widths=0.45, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": "#dfe6e9", "edgecolor": PEER_COLOR},
                       medianprops={"color": PEER_COLOR}, whiskerprops={"color": PEER_COLOR},
                       capprops={"color": PEER_COLOR})
            ax.scatter(jitter.uniform(-0.12, 0.12, len(values)), values, color=PEER_COLOR, s=22, alpha=0.8,
                       zorder=3)
        ax.scatter([0], [rep.loc[metric, "value"] * scale], marker="D", s=90, color=REP_COLOR, zorder=5,
                   label="this rep")
        ax.set_xlim(-0.6, 0.6)
        ax.set_title(_wrap(METRICS[metric].label), fontsize=9)
        ax.set_ylabel("%" if scale == 100 else METRICS[metric].unit, fontsize=8)
        ax.set_xticks([])
    axes[0][0].legend(loc="best", fontsize=8, frameon=True)
    fig.suptitle("This rep (red) against the spread of peers (grey dots; peers not named)", fontsize=10)
    fig.tight_layout()
    return fig


@styled
def funnel(card: pd.DataFrame, rep_id: str) -> plt.Figure:
    """Weekly funnel — opportunities, first meetings, second meetings, wins — rep against the peer median."""
    weeks = card[card["metric"] == "opps_created_per_week"].set_index("rep_id")["denominator"]
    wide_v = card.pivot(index="rep_id", columns="metric", values="value")
    wide_n = card.pivot(index="rep_id", columns="metric", values="numerator")
    stages = pd.DataFrame({
        "Opportunities": wide_v["opps_created_per_week"],
        "First meetings": wide_v.get("first_meetings_per_week"),
        "Second meetings": wide_n.get("followup_meeting_ratio") / weeks,
        "Wins": wide_n["win_rate"] / weeks,
    })
    peers = peer_ids(card, rep_id)
    long = pd.DataFrame({"stage": stages.columns, "This rep": stages.loc[rep_id].to_numpy(),
                         "Peer median": stages.loc[peers].median().to_numpy()}).melt(
        id_vars="stage", var_name="who", value_name="per week")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.barplot(data=long, x="stage", y="per week", hue="who", palette=[REP_COLOR, PEER_COLOR], ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.1f", fontsize=8)
    ax.set_xlabel("")
    ax.set_title("Funnel per week: this rep against the peer median", fontsize=10)
    ax.legend(title="", fontsize=8)
    fig.tight_layout()
    return fig


def rolling_rates(panel: pd.DataFrame, metric: str, weeks: int = 4) -> pd.DataFrame:
    """Each rep's metric pooled over a trailing window of ``weeks`` weeks (rep × week, wide)."""
    rows = panel[panel["metric"] == metric]
    num = rows.pivot(index="week", columns="rep_id", values="numerator").sort_index()
    den = rows.pivot(index="week", columns="rep_id", values="denominator").sort_index()
    spec = METRICS[metric]
    if spec.snapshot:
        return num / den.where(den > 0)
    n, d = num.rolling(weeks, min_periods=1).sum(), den.rolling(weeks, min_periods=1).sum()
    return n / d.where(d > 0)


def _trend_on(ax, panel: pd.DataFrame, rep_id: str, metric: str, *, peers: list[str], plan, since, weeks: int):
    series = rolling_rates(panel, metric, weeks)
    if since is not None:
        series = series[series.index >= pd.Timestamp(since)]
    scale = _scale(metric)
    peer_values = series.reindex(columns=[p for p in peers if p in series.columns]) * scale
    if peer_values.shape[1]:
        ax.fill_between(peer_values.index, peer_values.quantile(0.25, axis=1), peer_values.quantile(0.75, axis=1),
                        color=PEER_COLOR, alpha=0.18, label="peers: middle half")
        ax.plot(peer_values.index, peer_values.median(axis=1), color=PEER_COLOR, lw=1.5, label="peers: median")
    if rep_id in series:
        ax.plot(series.index, series[rep_id] * scale, color=REP_COLOR, lw=2.2, label="this rep")
    if plan is not None:
        _plan_marks(ax, plan, metric, scale)
    ax.set_title(f"{METRICS[metric].label} (trailing {weeks} weeks)", fontsize=10)
    ax.set_ylabel("%" if scale == 100 else METRICS[metric].unit)
    ax.legend(fontsize=7, loc="best")


def _plan_marks(ax, plan, metric: str, scale: float) -> None:
    start = pd.Timestamp(plan.start)
    ax.axvline(start, color="black", lw=1.2, ls="-")
    ax.annotate("plan start", (start, 1), xycoords=("data", "axes fraction"), fontsize=8,
                xytext=(3, -10), textcoords="offset points")
    dates = [pd.Timestamp(d) for d in plan.checkpoint_dates().values()]
    for when in dates[:-1]:
        ax.axvline(when, color="black", lw=0.8, ls=":")
    target = next((t for t in plan.targets if t.metric == metric), None)
    if target is not None:
        base = target.baseline if target.baseline is not None else target.glide[0]
        xs = [start, *dates]
        ys = [base * scale, *[g * scale for g in target.glide]]
        ax.plot(xs, ys, color=TARGET_COLOR, lw=1.5, ls="--", marker="o", ms=4, label="glide path to target")


def _wrap(text: str, width: int = 18) -> str:
    return "\n".join(textwrap.wrap(text, width))



@styled
def trend_grid(panel: pd.DataFrame, rep_id: str, metrics: list[str], *, peers: list[str], plan=None,
               since: dt.date | None = None, weeks: int = 4) -> plt.Figure:
    """:func:`trend` for several metrics stacked in one figure."""
    metrics = [m for m in metrics if m in set(panel["metric"])]
    fig, axes = plt.subplots(len(metrics) or 1, 1, figsize=(7.5, 2.9 * max(len(metrics), 1)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        _trend_on(ax, panel, rep_id, metric, peers=peers, plan=plan, since=since, weeks=weeks)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


#: Rows the team scan's heatmap shows at most: beyond that a picture of every rep is taller than any screen
#: (0.32 inch a rep) and costs seconds to draw; the table above it lists every shortfall.
HEATMAP_REPS = 40


@styled
def scan_heatmap(card: pd.DataFrame, metrics: list[str] | None = None, *, max_reps: int = HEATMAP_REPS) -> plt.Figure:
    """Each rep's percentile among peers per metric; the flags marked apart from the colour.

    Colour is the percentile among peers (red: low, blue: high; 'better' already oriented), and only that: a
    low percentile is not a flag. A shortfall beyond noise (the scan's one rule) is a cell outlined in black
    and hatched, with "short" under its percentile. Reps shown but not judged (ramping, inactive, no records in
    the window) are grey rows whose label says why; an unavailable cell is grey and says "n/a".

    A team of more than ``max_reps`` shows the reps who fall short (most shortfalls first), then those with the
    lowest percentile on any metric, up to ``max_reps``; the title says how many of how many are shown.
    """
    metrics = metrics or [m for m in ("win_rate", "followup_meeting_ratio", "first_meetings_per_week",
                                      "opps_created_per_week", "avg_days_between_touches", "emails_per_week")
                          if m in set(card["metric"])]
    rows = card[card["metric"].isin(metrics)].copy()
    team = rows["rep_id"].nunique()
    aside = {rep: why for why, ids in not_judged(card).items() for rep in ids}
    if team > max_reps:
        judged = rows[~rows["rep_id"].isin(aside)]
        lowest = judged.groupby("rep_id", sort=False)["percentile"].min().sort_values(kind="stable").index
        shown = list(dict.fromkeys([*flagged_reps(card), *lowest, *aside]))[:max_reps]
        rows = rows[rows["rep_id"].isin(shown)]
    rows["rep"] = [f"{n} ({t})" + (f" — {aside[r]}, not judged" if r in aside else "")
                   for r, n, t in zip(rows["rep_id"], rows["rep_name"].astype(str), rows["team"].astype(str))]
    order = list(dict.fromkeys(rows.sort_values("rep_id", key=lambda s: s.isin(aside), kind="stable")["rep"]))
    judged_rows = rows["rep_id"].isin(aside).to_numpy() == False  # noqa: E712 (numpy array)
    score = rows.assign(score=np.where(judged_rows, rows["percentile"], np.nan))
    grid = score.pivot(index="rep", columns="metric", values="score").reindex(index=order, columns=metrics)
    flags = rows.pivot(index="rep", columns="metric", values="flag").reindex(index=order, columns=metrics)
    labels = grid.copy().astype(object)
    for i, j in np.ndindex(grid.shape):
        pct, flag = grid.iat[i, j], flags.iat[i, j]
        labels.iat[i, j] = ("" if order[i].endswith("not judged") else "n/a") if not np.isfinite(pct) else \
            f"{pct:.0f}" + ("\nshort" if flag == "shortfall" else "")
    fig, ax = plt.subplots(figsize=(9, 0.36 * len(grid) + 2.1))
    ax.set_facecolor("#d5d8dc")                                  # not judged / unavailable: grey
    sns.heatmap(grid.astype(float), cmap="RdBu", vmin=0, vmax=100, center=50, annot=labels.to_numpy(), fmt="",
                cbar_kws={"label": "percentile among peers (higher = better)"}, ax=ax, annot_kws={"fontsize": 7},
                linewidths=0.5, linecolor="white")
    for i, j in zip(*np.nonzero(grid.isna().to_numpy())):      # seaborn leaves masked cells blank
        ax.text(j + 0.5, i + 0.5, labels.iat[i, j], ha="center", va="center", fontsize=7, color="#555555")
    for i, j in zip(*np.nonzero((flags == "shortfall").to_numpy())):
        ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, edgecolor="black", lw=2.2,
                               hatch="///"))
    ax.set_xticklabels([_wrap(METRICS[m].label, 16) for m in metrics])
    for tick in ax.get_yticklabels():
        if tick.get_text().endswith("not judged"):
            tick.set_color("#7f8c8d")
    ax.set_ylabel("")
    ax.set_xlabel("")
    ax.tick_params(axis="both", labelsize=8)
    title = ("Percentile among peers (colour: a low percentile is not a flag)\n"
             "outlined, hatched, \"short\": a shortfall beyond noise; grey: not judged or unavailable")
    if team > max_reps:
        title += f"\n{max_reps} of {team} reps: those falling short first, then the lowest on any metric"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


@styled
def counterfactual(ax, panel: pd.DataFrame, rep_id: str, metric: str, *, peers: list[str], windows,
                   weeks: int = 4) -> None:
    """On ``ax``: what the baseline predicts without a change (dashed) against what happened.

    The prediction is the model's own counterfactual: the rep's baseline level carried forward and moved
    week by week as the peers moved (seasonality, quarter ends), i.e. baseline × peers' median ÷ the
    peers' baseline median. ``windows`` is a :class:`pipnb.stats.PlanWindows`; the shaded band is the
    baseline.
    """
    series = rolling_rates(panel, metric, weeks)
    scale = _scale(metric)
    start, end = windows.baseline.first_week, windows.plan.last_week
    shown = series[(series.index >= start) & (series.index <= end)]
    if rep_id not in shown:
        return
    rep = shown[rep_id] * scale
    in_base = (shown.index >= windows.baseline.first_week) & (shown.index <= windows.baseline.last_week)
    peer_cols = [p for p in peers if p in shown.columns]
    ax.plot(rep.index, rep, color=REP_COLOR, lw=2.2, label="this rep")
    if peer_cols:
        peer_median = shown[peer_cols].median(axis=1) * scale
        ax.plot(shown.index, peer_median, color=PEER_COLOR, lw=1.3, label="peers: median")
        base_rep, base_peer = rep[in_base].mean(), peer_median[in_base].mean()
        if np.isfinite(base_rep) and base_peer and np.isfinite(base_peer):
            expected = (base_rep * peer_median / base_peer)[shown.index > windows.baseline.last_week]
            ax.plot(expected.index, expected, color=REP_COLOR, lw=1.3, ls="--", alpha=0.85,
                    label="expected without a change")
    ax.axvspan(windows.baseline.first_week, windows.baseline.end, color=TARGET_COLOR, alpha=0.07)
    ax.axvline(windows.plan.first_week, color="black", lw=1.1)
    ax.set_title(f"{METRICS[metric].label}: what happened vs the baseline's prediction", fontsize=10)
    ax.set_ylabel("%" if scale == 100 else METRICS[metric].unit)
    ax.legend(fontsize=7, loc="best")


@styled
def counterfactual_grid(data, rv, *, panel: pd.DataFrame) -> plt.Figure:
    """:func:`counterfactual` for every plan metric of a review (the shaded band is the baseline)."""
    plan = rv.plan
    panel = with_win_rate_basis(panel, plan.win_rate_basis)
    windows = plan_windows(panel, plan.rep_id, plan_start=plan.start, as_of=rv.as_of,
                           diagnosis_start=plan.diagnosis_window.start, diagnosis_end=plan.diagnosis_window.end)
    peers = plan_peers(data, plan)
    metrics = [t.metric for t in plan.targets]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.8 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        counterfactual(ax, panel, plan.rep_id, metric, peers=peers, windows=windows)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


@styled
def show(fig: plt.Figure, *, dpi: int = 90):
    """Display a figure as an inline PNG and close it (the same in any kernel or backend)."""

    buffer = io.BytesIO()
    # the figures are laid out already (tight_layout): no second "tight" drawing pass; light compression
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="png"))


@styled
def funnel_grid(card: pd.DataFrame, metrics: list[str] | None = None) -> plt.Figure:
    """The team scan's funnel plots: each rep's rate against its volume, with the control limits.

    One panel per plan metric: a dot per judged rep (red when flagged short), the company's pooled level
    (grey line) and the lower and upper limits a rep must pass to be flagged (the funnel: wide at small
    volumes, narrow at large ones, widened by the real spread between reps). Each rep is judged against
    their own peers, so the drawn funnel, centred on the company, is a guide.
    """
    metrics = metrics or [m for m in PLAN_METRICS if m in set(card["metric"])]
    crit = card.attrs.get("z_crit", 2.33)
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics) + 0.6, 2.9), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        _funnel_panel(ax, card[card["metric"] == metric], METRICS[metric], crit, funnel_scale, funnel_limit)
    fig.tight_layout()
    return fig


def _funnel_panel(ax, rows: pd.DataFrame, spec, crit: float, funnel_scale, funnel_limit) -> None:
    rows = rows[np.isfinite(rows["z"].to_numpy(float))]
    ax.set_title(_wrap(spec.label, 26), fontsize=8)
    if rows.empty:
        ax.set_axis_off()
        return
    kind = spec.model
    scale = funnel_scale(kind, rows["numerator"].to_numpy(float), rows["denominator"].to_numpy(float))
    target = scale.y.sum() / scale.n.sum()
    volumes = np.linspace(max(scale.n.min() * 0.5, 1e-9), scale.n.max() * 1.3, 80)
    tau2 = float(rows["tau2"].median())              # each rep has their own peers' spread: the typical one
    factor = _scale(spec.name)
    to_value = (lambda r: 1.0 / r) if kind == "gap" else (lambda r: r)
    with np.errstate(divide="ignore"):
        for z, style in ((-crit, "--"), (crit, "--")):
            ax.plot(volumes, to_value(funnel_limit(target, volumes, kind, tau2, z)) * factor, style,
                    color=PEER_COLOR, lw=0.9)
    ax.axhline(to_value(target) * factor, color=PEER_COLOR, lw=0.8)
    short = (rows["flag"] == "shortfall").to_numpy()
    ax.scatter(scale.n[~short], rows["value"].to_numpy(float)[~short] * factor, s=14, color=TARGET_COLOR)
    ax.scatter(scale.n[short], rows["value"].to_numpy(float)[short] * factor, s=22, color=REP_COLOR)
    unit = {"count": "weeks", "ratio": "trials", "gap": "days of open deals"}[kind]
    ax.set_xlabel(unit, fontsize=7)
    ax.tick_params(labelsize=7)
