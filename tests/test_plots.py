"""The team scan's heatmap stays readable for a big team: at most ``HEATMAP_REPS`` rows, those falling short first."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from pipnb.demo import demo_data  # noqa: E402
from pipnb.peers import scorecard  # noqa: E402
from pipnb.plots import scan_heatmap  # noqa: E402
from pipnb.scan import flagged_reps  # noqa: E402


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
