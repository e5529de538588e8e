"""The report charts: the team scan's heatmap stays readable for a big team (at most ``HEATMAP_REPS`` rows, those
falling short first); every other chart keeps its legends off the data and its markers inside the axes, reads at a
phone's width, and describes itself, from the numbers it draws, in its images' alt text."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pipnb import figures, plots  # noqa: E402
from pipnb.demo import demo_data  # noqa: E402
from pipnb.peers import peer_ids, scorecard  # noqa: E402
from pipnb.plots import scan_heatmap  # noqa: E402
from pipnb.scan import flagged_reps  # noqa: E402
from pipnb.schema import METRICS  # noqa: E402


@pytest.fixture(scope="module")
def big_card():
    return scorecard(demo_data(reps=60, weeks=40, seed=3))


def _rows(fig) -> list[str]:
    return [label.get_text() for label in fig.axes[0].get_yticklabels()]


def test_a_big_teams_heatmap_shows_the_reps_falling_short_first_and_says_how_many_of_how_many(big_card):
    fig = scan_heatmap(big_card, max_reps=20)
    try:
        names = big_card.drop_duplicates("rep_id").set_index("rep_id")
        shown = _rows(fig)
        assert len(shown) == 20
        short = flagged_reps(big_card)[:20]
        assert short, "the test team needs reps who fall short"
        for rep_id in short:                                   # every one falling short is there
            assert f"{names.loc[rep_id, 'rep_name']} ({names.loc[rep_id, 'team']})" in shown
        assert "20 of 60 reps" in fig.axes[0].get_title()
        assert fig.get_size_inches()[1] == pytest.approx(0.36 * 20 + 2.1)
    finally:
        plt.close(fig)


def test_a_team_within_the_limit_shows_every_rep_without_a_note(big_card):
    fig = scan_heatmap(big_card, max_reps=60)
    try:
        assert len(_rows(fig)) == 60 and "of 60 reps" not in fig.axes[0].get_title()
    finally:
        plt.close(fig)


def test_flags_are_marked_apart_from_colour_and_reps_not_judged_are_named(big_card):
    from matplotlib.patches import Rectangle

    from pipnb.scan import not_judged

    fig = scan_heatmap(big_card, max_reps=60)
    try:
        ax = fig.axes[0]
        metrics = ["win_rate", "followup_meeting_ratio", "first_meetings_per_week", "opps_created_per_week",
                   "avg_days_between_touches", "emails_per_week"]
        shown = big_card[big_card["metric"].isin(metrics)]
        outlined = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
        assert len(outlined) == int((shown["flag"] == "shortfall").sum()) > 0     # one mark per flag, no more
        low_unflagged = shown[(shown["percentile"] < 10) & (shown["flag"] != "shortfall")]
        assert len(low_unflagged)                      # a low percentile alone is coloured, not marked
        labels = [t.get_text() for t in ax.get_yticklabels()]
        names = big_card.drop_duplicates("rep_id").set_index("rep_id")
        ramping = not_judged(big_card)["ramping"]
        assert ramping, "the test team needs ramping reps"
        for rep in ramping:
            assert f"{names.loc[rep, 'rep_name']} ({names.loc[rep, 'team']}) — ramping, not judged" in labels
        assert "shortfalls are red" not in ax.get_title() and "a low percentile is not a flag" in ax.get_title()
    finally:
        plt.close(fig)


# -- legends, markers, phone width, alt text -----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_charts(demo, demo_panel):
    """Every chart of the lifecycle reports but the heatmap, drawn from the demo team, by name."""
    from pipnb.batch import demo_plan
    from pipnb.diagnosis import diagnose
    from pipnb.peers import plan_peers
    from pipnb.reviews import review

    plan = demo_plan(demo, "responder")
    dx = diagnose(demo, plan.rep_id, as_of=plan.start - __import__("datetime").timedelta(days=1))
    rv = review(demo, plan, "final", panel=demo_panel)
    charts = {
        "peer_distribution": plots.peer_distribution(dx.card, plan.rep_id, list(plots.PLAN_METRICS)),
        "funnel": plots.funnel(dx.card, plan.rep_id),
        "trend_grid": plots.trend_grid(demo_panel, plan.rep_id, [t.metric for t in plan.targets],
                                       peers=plan_peers(demo, plan), plan=plan, since=plan.diagnosis_window.start),
        "counterfactual_grid": plots.counterfactual_grid(demo, rv, panel=demo_panel),
        "funnel_grid": plots.funnel_grid(scorecard(demo)),
    }
    yield charts, dx, plan
    for fig in charts.values():
        plt.close(fig)


def _shown(fig):
    """The images :func:`pipnb.plots.show` would show: per panel (or the whole figure) its axes."""
    return [[ax] for ax in plots.panels(fig)] or [[ax for ax in fig.axes if ax.get_visible()]]


def test_no_legend_covers_any_plotting_area(demo_charts):
    charts, _, _ = demo_charts
    for name, fig in charts.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        areas = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
        for legend in legends:
            box = legend.get_window_extent(renderer)
            overlaps = [a for a in areas if box.overlaps(a) and min(box.y1, a.y1) - max(box.y0, a.y0) > 0.5]
            assert not overlaps, f"{name}: a legend covers a plotting area"


def _markers(ax):
    """(x, y, reach) in pixels of every scatter dot and line marker of ``ax``."""
    xy, reach = plots.marker_points(ax)
    return [(x, y, r) for (x, y), r in zip(ax.transData.transform(xy), reach, strict=True)]


def test_every_marker_lies_wholly_inside_its_axes(demo_charts):
    charts, _, _ = demo_charts
    for name, fig in charts.items():
        fig.canvas.draw()
        for ax in fig.axes:
            box = ax.get_window_extent()
            marks = _markers(ax)
            # clear of the spines (drawn ~1 px wide on the axes' edge), not only of the edge itself
            cut = [(x, y) for x, y, r in marks
                   if x - r < box.x0 + 1 or x + r > box.x1 - 1 or y - r < box.y0 + 1 or y + r > box.y1 - 1]
            assert not cut, f"{name}, {ax.get_title()!r}: {len(cut)} of {len(marks)} markers cut by the axes"


def test_fit_markers_moves_a_marker_off_the_axis():
    fig, ax = plt.subplots(figsize=(2, 2))
    try:
        ax.scatter([0, 1], [0, 1], s=90)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)                                          # both markers half outside
        assert len(_markers(ax)) == 2
        plots.fit_markers(ax)
        box = ax.get_window_extent()
        for x, y, r in _markers(ax):
            assert box.x0 + 1 <= x - r and x + r <= box.x1 - 1 and box.y0 + 1 <= y - r and y + r <= box.y1 - 1
        assert ax.get_ylim()[0] < 0 < 1 < ax.get_ylim()[1]
    finally:
        plt.close(fig)


def test_every_chart_reads_at_a_phones_width(demo_charts):
    """Each image's smallest text, at the width a 390 px phone gives it, is at least 8 CSS pixels."""
    charts, _, _ = demo_charts
    for name, fig in charts.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for axes in _shown(fig):
            width_in = max(ax.get_tightbbox(renderer).width for ax in axes) / fig.dpi if plots.panels(fig) \
                else fig.get_size_inches()[0]
            shrink = min(1.0, plots.PHONE_WIDTH_PX / (width_in * plots.DPI))
            texts = [t for ax in axes for t in ax.findobj(lambda a: hasattr(a, "get_fontsize") and
                                                          hasattr(a, "get_text"))
                     if t.get_visible() and str(t.get_text()).strip()]
            smallest = min(t.get_fontsize() for t in texts)
            assert smallest / 72 * plots.DPI * shrink >= 8, f"{name}: {smallest} pt shrinks to under 8 px"
    assert len(plots.panels(charts["funnel_grid"])) == len(plots.PLAN_METRICS)   # one image a metric


def test_alt_text_is_written_from_the_numbers_drawn(demo_charts):
    charts, dx, plan = demo_charts
    card, rep = dx.card, plan.rep_id
    peers = card[card["rep_id"].isin(peer_ids(card, rep))]
    for ax, metric in zip(plots.panels(charts["peer_distribution"]), plots.PLAN_METRICS, strict=True):
        spec = METRICS[metric]
        mine = card[(card["rep_id"] == rep) & (card["metric"] == metric)]["value"].iloc[0]
        values = peers.loc[peers["metric"] == metric, "value"].dropna()
        assert ax.pipnb_alt == (f"{spec.label}: this rep {spec.fmt(mine)} against {len(values)} peers (median "
                                f"{spec.fmt(values.median())}, middle half {spec.fmt(values.quantile(.25))} to "
                                f"{spec.fmt(values.quantile(.75))}).")
    grid = scorecard(demo_data())
    for ax, metric in zip(plots.panels(charts["funnel_grid"]), plots.PLAN_METRICS):
        rows = grid[(grid["metric"] == metric) & np.isfinite(grid["z"].astype(float))]
        assert f"each of {len(rows)} judged reps" in ax.pipnb_alt
        assert f"{int((rows['flag'] == 'shortfall').sum())} flagged short" in ax.pipnb_alt
    assert plots.alt_text(charts["funnel"]).startswith("Bar chart, the funnel per week")
    for ax, target in zip(plots.panels(charts["trend_grid"]), plan.targets):
        spec = METRICS[target.metric]
        assert ax.pipnb_alt.startswith(spec.label) and spec.fmt(target.glide[-1]) in ax.pipnb_alt
    for fig in charts.values():                                      # distinct, not one fixed phrase
        alts = [ax.pipnb_alt for ax in plots.panels(fig)] or [plots.alt_text(fig)]
        assert all(len(a) > 30 for a in alts) and len(set(alts)) == len(alts)


def test_show_gives_each_panel_its_own_image_and_alt_text(monkeypatch):
    shown = []
    monkeypatch.setattr(figures, "display", shown.append)
    card = scorecard(demo_data())
    fig = plots.funnel_grid(card)
    alts = [ax.pipnb_alt for ax in plots.panels(fig)]
    plots.show(fig)
    assert [img.alt for img in shown] == alts and len(shown) == len(plots.PLAN_METRICS)
    assert all(img.data[:8] == b"\x89PNG\r\n\x1a\n" for img in shown)
    widths = [int.from_bytes(img.data[16:20], "big") for img in shown]      # the PNG header's width
    assert max(widths) <= 1.25 * plots.PHONE_WIDTH_PX                         # a panel, not the whole grid
    shown.clear()
    plain, ax = plt.subplots()
    ax.set_title("An analyst's chart")
    plots.show(plain)
    assert [img.alt for img in shown] == ["An analyst's chart"]
