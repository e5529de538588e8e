"""Charts for the reports (seaborn on matplotlib), built and shown by :mod:`pipnb.figures`.

Neither importing this module nor drawing a chart changes pyplot's state (:mod:`pipnb.figures` says how): an
analyst's own ``plt.plot(...)`` in the same notebook looks and displays as usual, and a chart returned as a cell's
value displays once.

Every chart shows one rep against their peers as a *distribution*: peers are never named or labelled.
Functions return the matplotlib Figure so that notebooks can display it and tests can inspect it; :func:`show`
displays it, one image per panel, each with the description the chart wrote from its numbers as alt text, each
panel drawn narrow enough to be read at a phone's width without zooming.
"""

from __future__ import annotations

import datetime as dt
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle

from pipnb.figures import (
    DPI,
    LABEL_PT,
    PEER_COLOR,
    PHONE_WIDTH_PX,
    REP_COLOR,
    TARGET_COLOR,
    TICK_PT,
    TITLE_PT,
    ReportFigure,
    alt_text,
    describe,
    fit_markers,
    legend_above,
    marker_points,
    new_figure,
    panel_grid,
    panels,
    report_style,
    show,
    styled,
)
from pipnb.peers import peer_ids, plan_peers
from pipnb.reviews import with_win_rate_basis
from pipnb.scan import flagged_reps, not_judged
from pipnb.schema import METRICS, PLAN_METRICS
from pipnb.stats import plan_windows
from pipnb.stats.funnel import funnel_limit, funnel_scale

__all__ = ["DPI", "PHONE_WIDTH_PX", "ReportFigure", "alt_text", "counterfactual", "counterfactual_grid", "describe",
           "funnel", "funnel_grid", "marker_points", "panels", "peer_distribution", "report_style", "rolling_rates",
           "scan_heatmap", "show", "styled", "trend_grid"]


def _scale(metric: str) -> float:
    return 100.0 if METRICS[metric].unit == "%" else 1.0


@styled
def peer_distribution(card: pd.DataFrame, rep_id: str, metrics: list[str]) -> plt.Figure:
    """The rep (red diamond) against the distribution of their peers (box and dots), one panel per metric.

    Each panel says the rep's value and the peers' median under its plot, so it reads on its own (a report
    shows the panels as separate images; see :func:`show`).

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
    fig, axes = panel_grid(len(metrics), 3, 2.35, 3.0)
    jitter = np.random.default_rng(0)     # fixed, so the same data always draws the same picture
    for ax, metric in zip(axes, metrics):
        spec, scale = METRICS[metric], _scale(metric)
        raw = peers.loc[peers["metric"] == metric, "value"].dropna().to_numpy(float)
        values, mine = raw * scale, float(rep.loc[metric, "value"])
        if len(values):
            ax.boxplot(values, positions=[0], widths=0.45, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": "#dfe6e9", "edgecolor": PEER_COLOR},
                       medianprops={"color": PEER_COLOR}, whiskerprops={"color": PEER_COLOR},
                       capprops={"color": PEER_COLOR})
            ax.scatter(jitter.uniform(-0.12, 0.12, len(values)), values, color=PEER_COLOR, s=22, alpha=0.8,
                       zorder=3)
        ax.scatter([0], [mine * scale], marker="D", s=70, color=REP_COLOR, zorder=5, label="this rep")
        ax.set_xlim(-0.6, 0.6)
        ax.set_title(_wrap(spec.label, 22), fontsize=TITLE_PT)
        median = float(np.median(raw)) if len(raw) else float("nan")
        ax.set_xlabel(f"◆ this rep {spec.fmt(mine)}\npeers' median {spec.fmt(median)}", fontsize=LABEL_PT)
        ax.set_ylabel("%" if scale == 100 else spec.unit, fontsize=LABEL_PT)
        ax.set_xticks([])
        ax.tick_params(labelsize=TICK_PT)
        if len(raw):
            q1, q3 = np.percentile(raw, [25, 75])
            spread = f"{len(raw)} peers (median {spec.fmt(median)}, middle half {spec.fmt(q1)} to {spec.fmt(q3)})"
        else:
            spread = "no peers with a value"
        describe(ax, f"{spec.label}: this rep {spec.fmt(mine)} against {spread}.")
    fig.tight_layout()
    for ax in axes:
        fit_markers(ax)
    describe(fig, "This rep (red diamond) against the spread of their peers, one panel per metric: "
             + " ".join(getattr(ax, "pipnb_alt", "") for ax in axes))
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
    fig, ((ax,),) = new_figure(figsize=(4.6, 3.3))
    sns.barplot(data=long, x="stage", y="per week", hue="who", palette=[REP_COLOR, PEER_COLOR], ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.1f", fontsize=TICK_PT)
    ax.set_xlabel("")
    ax.set_ylabel("per week", fontsize=LABEL_PT)
    ax.set_xticks(ax.get_xticks(), [_wrap(str(t.get_text()), 11) for t in ax.get_xticklabels()])
    ax.tick_params(labelsize=TICK_PT)
    ax.margins(y=0.12)                                # room for the bar labels
    ax.set_title("Funnel per week: this rep against the peer median", fontsize=TITLE_PT)
    legend_above(ax, columns=2)
    fig.tight_layout()
    pairs = "; ".join(f"{stage.lower()} {rep_value:.1f} against {peer_value:.1f}" for stage, rep_value, peer_value
                      in zip(stages.columns, stages.loc[rep_id].to_numpy(float),
                             stages.loc[peers].median().to_numpy(float)))
    describe(fig, f"Bar chart, the funnel per week, this rep against the peer median: {pairs}.")
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
    ax.set_title(f"{METRICS[metric].label} (trailing {weeks} weeks)", fontsize=TITLE_PT)
    ax.set_ylabel("%" if scale == 100 else METRICS[metric].unit, fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    legend_above(ax, columns=2)
    describe(ax, _trend_words(series, rep_id, peer_values.columns, metric, plan, weeks))


def _trend_words(series: pd.DataFrame, rep_id: str, peers, metric: str, plan, weeks: int) -> str:
    """A trend panel in words: its span, where the rep and the peers' median start and end, the plan's marks."""
    spec = METRICS[metric]
    mine = series[rep_id].dropna() if rep_id in series else pd.Series(dtype=float)
    median = series.reindex(columns=list(peers)).median(axis=1).dropna()
    if mine.empty:
        return f"{spec.label}, trailing {weeks} weeks: no value for this rep in the window shown."
    text = (f"{spec.label}, trailing {weeks} weeks, {mine.index[0]:%d %b %Y} to {mine.index[-1]:%d %b %Y}: this rep "
            f"from {spec.fmt(mine.iloc[0])} to {spec.fmt(mine.iloc[-1])}")
    if len(median):
        text += f"; the peers' median from {spec.fmt(median.iloc[0])} to {spec.fmt(median.iloc[-1])}"
    if plan is not None:
        text += f"; plan start {pd.Timestamp(plan.start):%d %b %Y}"
        target = next((t for t in plan.targets if t.metric == metric), None)
        if target is not None and target.glide:
            text += f"; glide path to the final target {spec.fmt(target.glide[-1])}"
    return text + "."


def _plan_marks(ax, plan, metric: str, scale: float) -> None:
    start = pd.Timestamp(plan.start)
    ax.axvline(start, color="black", lw=1.2, ls="-", label="plan start")     # named in the legend, not on the data
    dates = [pd.Timestamp(d) for d in plan.checkpoint_dates().values()]
    for i, when in enumerate(dates[:-1]):
        ax.axvline(when, color="black", lw=0.8, ls=":", label="checkpoints" if i == 0 else None)
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
    fig, axes = panel_grid(len(metrics), 1, 4.6, 3.2)
    for ax, metric in zip(axes, metrics):
        _trend_on(ax, panel, rep_id, metric, peers=peers, plan=plan, since=since, weeks=weeks)
        _month_ticks(ax)
    fig.tight_layout()
    for ax in axes:
        fit_markers(ax)
    return fig


def _month_ticks(ax) -> None:
    """Dates as short month names, slanted, few enough to read in a narrow panel."""
    import matplotlib.dates as mdates  # matplotlib (loaded with pyplot)

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=6))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %y"))
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


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
    fig, ((ax,),) = new_figure(figsize=(9, 0.36 * len(grid) + 2.1))
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
    short = rows[rows["flag"] == "shortfall"]
    by_rep = short.groupby("rep", sort=False)["metric"].agg(lambda ms: ", ".join(METRICS[m].label.lower() for m in ms))
    falls = "; ".join(f"{rep}: {metrics_}" for rep, metrics_ in by_rep.items()) or "none"
    aside_names = [r for r in order if r.endswith("not judged")]
    return describe(fig, f"Heatmap of {len(order)} of {team} reps' percentile among peers on {len(metrics)} metrics "
                         f"(colour: percentile). Shortfalls beyond noise ({len(short)}): {falls}. "
                         f"Shown but not judged: {', '.join(aside_names) or 'none'}.")


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
    spec = METRICS[metric]
    ax.plot(rep.index, rep, color=REP_COLOR, lw=2.2, label="this rep")
    words = [f"{spec.label}, {rep.index[0]:%d %b %Y} to {rep.index[-1]:%d %b %Y}, baseline shaded: this rep at "
             f"{spec.fmt(shown[rep_id].dropna().iloc[-1]) if shown[rep_id].notna().any() else 'n/a'} at the end"]
    if peer_cols:
        peer_median = shown[peer_cols].median(axis=1) * scale
        ax.plot(shown.index, peer_median, color=PEER_COLOR, lw=1.3, label="peers: median")
        words.append(f"the peers' median at {spec.fmt(peer_median.dropna().iloc[-1] / scale)}"
                     if peer_median.notna().any() else "no peers' median")
        base_rep, base_peer = rep[in_base].mean(), peer_median[in_base].mean()
        if np.isfinite(base_rep) and base_peer and np.isfinite(base_peer):
            expected = (base_rep * peer_median / base_peer)[shown.index > windows.baseline.last_week]
            ax.plot(expected.index, expected, color=REP_COLOR, lw=1.3, ls="--", alpha=0.85,
                    label="expected without a change")
            if expected.notna().any():
                words.append(f"expected without a change (the baseline moved as the peers moved) "
                             f"{spec.fmt(expected.dropna().iloc[-1] / scale)}")
    ax.axvspan(windows.baseline.first_week, windows.baseline.end, color=TARGET_COLOR, alpha=0.07, label="baseline")
    ax.axvline(windows.plan.first_week, color="black", lw=1.1, label="plan start")
    ax.set_title(_wrap(f"{spec.label}: what happened vs the baseline's prediction", 44), fontsize=TITLE_PT)
    ax.set_ylabel("%" if scale == 100 else spec.unit, fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    legend_above(ax, columns=2)
    describe(ax, "; ".join(words) + f"; the plan started {pd.Timestamp(windows.plan.first_week):%d %b %Y}.")


@styled
def counterfactual_grid(data, rv, *, panel: pd.DataFrame) -> plt.Figure:
    """:func:`counterfactual` for every plan metric of a review (the shaded band is the baseline)."""
    plan = rv.plan
    panel = with_win_rate_basis(panel, plan.win_rate_basis)
    windows = plan_windows(panel, plan.rep_id, plan_start=plan.start, as_of=rv.as_of,
                           diagnosis_start=plan.diagnosis_window.start, diagnosis_end=plan.diagnosis_window.end)
    peers = plan_peers(data, plan)
    metrics = [t.metric for t in plan.targets]
    fig, axes = panel_grid(len(metrics), 1, 4.6, 3.4)
    for ax, metric in zip(axes, metrics):
        counterfactual(ax, panel, plan.rep_id, metric, peers=peers, windows=windows)
        _month_ticks(ax)
    fig.tight_layout()
    for ax in axes:
        fit_markers(ax)
    return fig


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
    fig, axes = panel_grid(len(metrics), 3, 3.2, 2.9)
    for ax, metric in zip(axes, metrics):
        _funnel_panel(ax, card[card["metric"] == metric], METRICS[metric], crit, funnel_scale, funnel_limit)
    fig.tight_layout()
    for ax in axes:
        fit_markers(ax)
    return fig


def _funnel_panel(ax, rows: pd.DataFrame, spec, crit: float, funnel_scale, funnel_limit) -> None:
    rows = rows[np.isfinite(rows["z"].to_numpy(float))]
    ax.set_title(_wrap(spec.label, 30), fontsize=TITLE_PT)
    ax.tick_params(labelsize=TICK_PT)
    if rows.empty:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no rep judged", ha="center", va="center", fontsize=LABEL_PT, transform=ax.transAxes)
        describe(ax, f"Funnel plot of {spec.label.lower()}: no rep could be judged on it.")
        return
    kind = spec.model
    scale = funnel_scale(kind, rows["numerator"].to_numpy(float), rows["denominator"].to_numpy(float))
    target = scale.y.sum() / scale.n.sum()
    volumes = np.linspace(max(scale.n.min() * 0.5, 1e-9), scale.n.max() * 1.3, 80)
    # each rep has their own peers' spread, weekly dispersion and uncertainty of the peers' level: the typical ones
    tau2, target_var = float(rows["tau2"].median()), float(np.nanmedian(rows["target_var"].to_numpy(float)))
    phi = rows["dispersion"].to_numpy(float) if kind == "count" else np.array([np.nan])
    sigma2 = float(np.nanmedian(phi)) if np.isfinite(phi).any() else None
    factor = _scale(spec.name)
    to_value = (lambda r: 1.0 / r) if kind == "gap" else (lambda r: r)
    with np.errstate(divide="ignore"):
        for z, style in ((-crit, "--"), (crit, "--")):
            limit = funnel_limit(target, volumes, kind, tau2, z, sigma2, target_var=np.nan_to_num(target_var))
            ax.plot(volumes, to_value(limit) * factor, style, color=PEER_COLOR, lw=0.9)
    ax.axhline(to_value(target) * factor, color=PEER_COLOR, lw=0.8)
    short = (rows["flag"] == "shortfall").to_numpy()
    ax.scatter(scale.n[~short], rows["value"].to_numpy(float)[~short] * factor, s=14, color=TARGET_COLOR)
    ax.scatter(scale.n[short], rows["value"].to_numpy(float)[short] * factor, s=22, color=REP_COLOR)
    unit = {"count": "weeks", "ratio": "trials", "gap": "days of open deals"}[kind]
    ax.set_xlabel(unit, fontsize=LABEL_PT)
    describe(ax, f"Funnel plot of {spec.label.lower()}: each of {len(rows)} judged reps' values against their "
                 f"{unit}, around the company's level of {spec.fmt(to_value(target))} with dashed limits beyond "
                 f"which a rep is flagged; {int(short.sum())} flagged short (red dots), none named.")
