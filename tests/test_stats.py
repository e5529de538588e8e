"""pipnb.stats: did a rep on a plan really improve?

Known answers first (a published interrupted-time-series result, statsmodels' own GLMs and rate
intervals, the power figures of reference/statistics.md), then the behaviour of the windows, models
and verdicts on small hand-built panels, and last the seeded simulation that shows the point of it all:
with no true change, pipnb rarely says "improved" where a naive before/after test often does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pymannkendall
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats import rates
from statsmodels.stats.multitest import multipletests

from pipnb import sentences, stats
from pipnb.errors import DataError, PlanError, UnknownRepError
from pipnb.stats.counts import _week_effects

DATA = Path(__file__).parent / "data"
WEEKS = pd.date_range("2024-01-01", periods=37, freq="W-MON")     # 12 baseline, 12 diagnosis, 13 plan
PLAN_START = WEEKS[24]
AS_OF = WEEKS[-1] + pd.Timedelta(days=6)                          # the Sunday ending the 13th plan week
IS_PLAN = np.arange(37) >= 24
IS_BASELINE = np.arange(37) < 12
PLAN_METRICS = ["emails_per_week", "first_meetings_per_week", "followup_meeting_ratio"]


# -- builders ---------------------------------------------------------------------------------------
def long_panel(metrics: dict[str, tuple[np.ndarray, np.ndarray]], weeks: pd.DatetimeIndex = WEEKS,
               employed: np.ndarray | None = None) -> pd.DataFrame:
    """The weekly panel from (reps x weeks) numerator/denominator arrays; reps are R00, R01, ..."""
    frames = []
    for metric, (num, den) in metrics.items():
        num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
        n_reps = num.shape[0]
        keep = np.ones(num.shape, bool) if employed is None else employed
        frame = pd.DataFrame({
            "rep_id": np.repeat([f"R{i:02d}" for i in range(n_reps)], num.shape[1]),
            "week": np.tile(weeks, n_reps), "metric": metric,
            "numerator": num.ravel(), "denominator": den.ravel(),
            "value": np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0).ravel()})
        frames.append(frame.loc[keep.ravel()])
    return pd.concat(frames, ignore_index=True)


def counts_panel(counts: np.ndarray, metric: str = "emails_per_week", **kw) -> pd.DataFrame:
    return long_panel({metric: (counts, np.ones_like(counts))}, **kw)


def peers_of(n_reps: int, rep: int = 0) -> list[str]:
    return [f"R{i:02d}" for i in range(n_reps) if i != rep]


def simulate_team(rng: np.random.Generator, *, n_reps: int = 30, heterogeneity: float = 0.2,
                  email_nb_alpha: float = 0.05) -> dict[str, np.ndarray]:
    """A team whose true rates never change: 30 reps x 37 weeks, one Monday holiday in the plan period.

    Reps differ (log-normal rates around 30 emails and 4 first meetings a week, logit-normal follow-up
    ratios around 40%); weekly counts are negative binomial (per working day); a week's second meetings
    come from the previous week's first meetings (the panel's flow definition, so a weekly ratio can
    exceed 1).
    """
    days = stats.working_days(WEEKS, [WEEKS[30]])

    def weekly(mean: float, nb_alpha: float) -> np.ndarray:
        rate = mean * np.exp(heterogeneity * rng.normal(size=n_reps) - heterogeneity ** 2 / 2)
        noise = rng.gamma(1 / nb_alpha, nb_alpha, (n_reps, 37))
        return rate[:, None] / 5 * days * noise

    email_mean, first_mean = weekly(30, email_nb_alpha), weekly(4, 0.1)
    first = rng.poisson(first_mean)
    earlier = np.concatenate([rng.poisson(first_mean[:, :1]), first[:, :-1]], axis=1)
    logit = np.log(0.4 / 0.6) + 0.5 * rng.normal(size=(n_reps, 1))
    followup = rng.binomial(earlier, 1 / (1 + np.exp(-logit)))
    return {"email_mean": email_mean, "emails": rng.poisson(email_mean), "first": first,
            "followup": followup, "days": days}


def team_panel(team: dict[str, np.ndarray], emails: np.ndarray | None = None) -> pd.DataFrame:
    emails = team["emails"] if emails is None else emails
    return long_panel({"emails_per_week": (emails, np.ones_like(emails)),
                       "first_meetings_per_week": (team["first"], np.ones_like(emails)),
                       "followup_meeting_ratio": (team["followup"], team["first"])})


# -- known answers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sicily() -> pd.DataFrame:
    return pd.read_csv(DATA / "sicily.csv")


def test_sicily_smoking_ban_level_change_matches_lopez_bernal_2017(sicily):
    fit = stats.segmented_count_model(sicily, count="aces", time="time", post="smokban", offset="stdpop",
                                      season="month", period=12, harmonics=2, family="quasipoisson")
    assert np.round(fit.rate_ratio("level"), 3).tolist() == [0.885, 0.839, 0.933]
    assert round(fit.dispersion, 3) == 2.262


def test_sicily_with_the_corrected_slope_change_matches_the_paper(sicily):
    fit = stats.segmented_count_model(sicily, count="aces", time="time", post="smokban", offset="stdpop",
                                      season="month", slope_change=True)
    assert np.round(fit.rate_ratio("level"), 3).tolist() == [0.876, 0.827, 0.929]
    assert np.round(fit.rate_ratio("slope"), 3).tolist() == [1.001, 0.998, 1.005]
    assert np.allclose(fit.rate_ratio("slope"), [1.0015, 0.9979, 1.0051], atol=1e-4)
    assert fit.result.params.index.tolist()[:4] == ["const", "level", "time", "slope"]


def test_segmented_counterfactual_switches_off_only_the_interruption(sicily):
    fit = stats.segmented_count_model(sicily, count="aces", time="time", post="smokban", offset="stdpop",
                                      season="month", slope_change=True)
    before, after = sicily["smokban"] == 0, sicily["smokban"] == 1
    assert np.allclose(fit.fitted[before], fit.counterfactual[before])
    level, slope = fit.result.params["level"], fit.result.params["slope"]
    expected = np.exp(level + slope * (sicily.loc[after, "time"] - 36))
    assert np.allclose(fit.fitted[after] / fit.counterfactual[after], expected)


def test_pooled_rate_ratio_matches_statsmodels_interval_and_poisson_glm():
    ratio, low, high, p = stats.pooled_rate_ratio(84, 65.0, 60, 60.0)
    assert np.allclose([low, high], rates.confint_poisson_2indep(84, 65.0, 60, 60.0, method="wald-log"))
    glm = sm.GLM([84, 60], [[1, 1], [1, 0]], family=sm.families.Poisson(), exposure=[65.0, 60.0]).fit()
    assert ratio == pytest.approx(np.exp(glm.params[1]))
    assert [low, high] == pytest.approx(np.exp(glm.conf_int()[1]).tolist(), rel=1e-5)   # IRLS tolerance
    assert p == pytest.approx(glm.pvalues[1], rel=1e-4)


def test_holm_matches_statsmodels_multipletests():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005])
    assert np.allclose(stats.holm(p), multipletests(p, method="holm")[1])
    assert np.isnan(stats.holm([0.01, np.nan])[1]) and stats.holm([0.01, np.nan])[0] == 0.01


@pytest.mark.parametrize(("rate", "plan_weeks", "expected"), [(5, 13, 1.50), (5, 4, 1.70), (2, 13, 1.86),
                                                              (2, 4, 2.19)])
def test_detectable_change_matches_the_reference_power_figures(rate, plan_weeks, expected):
    """statistics.md: alpha .05 one-sided, 80% power, 12-week baseline."""
    detectable = stats.mde_rate_ratio(rate, 12, plan_weeks, alternative="larger")
    assert detectable == pytest.approx(expected, abs=0.01)


def test_detectable_change_of_a_ratio_is_roughly_the_reference_figure():
    """statistics.md: 30% over 40 first meetings is only shown to rise past about 69% on 13 meetings."""
    reachable = 0.30 + stats.mde_proportion(0.30, 40, 13, alternative="larger")
    assert 0.64 <= reachable <= 0.72
    assert stats.mde_proportion(0.30, 40, 0) == np.inf


@pytest.mark.parametrize(("rate", "plan_weeks", "expected"), [(5, 13, 1.50), (5, 4, 1.70), (2, 13, 1.86),
                                                              (2, 4, 2.19)])
def test_the_rule_s_detectable_change_reproduces_the_reference_figures(rate, plan_weeks, expected):
    """The variance-under-the-alternative form a review uses gives the same figures as statistics.md."""
    from pipnb.stats._common import ChangeVariance
    variance = ChangeVariance("log", fixed=1 / (rate * 12), plan=1 / (rate * plan_weeks))
    crit = 1.6448536269514722                      # one-sided 5%
    assert stats.power.detectable_change(variance, crit) == pytest.approx(expected, abs=0.01)
    # lower is better (touch gaps): the mirror image on the log scale, fewer events as gaps grow
    gaps = ChangeVariance("log", fixed=1 / (rate * 12), plan=1 / (rate * plan_weeks), events=-1.0)
    assert stats.power.detectable_change(gaps, crit, higher_is_better=False) == pytest.approx(1 / expected, abs=0.01)


@pytest.mark.parametrize(("p0", "n_b", "n_p", "crit"), [(0.30, 40, 25, 2.0), (0.27, 30, 16, 2.2),
                                                      (0.45, 60, 25, 2.0), (0.15, 80, 30, 2.3)])
def test_the_rule_s_detectable_change_of_a_ratio_has_its_power_by_simulation(p0, n_b, n_p, crit):
    """E.g. 30% on 40 baseline first meetings, 25 in the plan, boundary 2.0: a true rise by the stated change
    is found 80% of the time by the score-variance z test (an independent binomial simulation). The score
    variance at the pooled rate is larger than the estimate's own under a large rise: using it for both
    sides of the power equation overstated the change (81-83.5% found in these cases)."""
    from pipnb.stats._common import ChangeVariance
    variance = ChangeVariance("points", fixed=0.0, p0=p0, n_b=n_b, n_p=n_p, base_var=p0 * (1 - p0) / n_b)
    d = stats.power.detectable_change(variance, crit)
    rng = np.random.default_rng(11)
    s_b, s_p = rng.binomial(n_b, p0, 100_000), rng.binomial(n_p, p0 + d, 100_000)
    pb, pp = s_b / n_b, s_p / n_p
    pooled = np.clip((s_b + s_p) / (n_b + n_p), 0.02, 0.98)
    var = np.maximum(pb * (1 - pb) / n_b + pp * (1 - pp) / n_p, pooled * (1 - pooled) * (1 / n_b + 1 / n_p))
    power = np.mean((pp - pb) / np.sqrt(var) >= crit)
    assert 0.78 <= power <= 0.82, (d, power)


@pytest.mark.parametrize("count", [1, 3, 14, 22, 430])
def test_the_planning_count_is_the_exact_poisson_lower_limit(count):
    """The count a stated change is computed from: the rate whose chance of showing ``count`` or more events is
    the level (Garwood's exact limit, here against scipy's Poisson tail), below the count, closer to it the
    more events there are; a smaller level reads a lower count."""
    from pipnb.stats.counts import BASELINE_COUNT_LEVEL, planning_count
    low = planning_count(count)
    assert sps.poisson.sf(count - 1, low) == pytest.approx(BASELINE_COUNT_LEVEL, rel=1e-9)
    assert 0 < low < count and (count - low) / count < 1.5 / math.sqrt(count)
    assert planning_count(count, 0.1) < low < planning_count(count, 0.5) and planning_count(0) == 0.0


def test_two_sided_and_overdispersed_checks_need_larger_changes():
    base = stats.mde_rate_ratio(5, 12, 13)
    assert base > stats.mde_rate_ratio(5, 12, 13, alternative="larger")
    assert stats.mde_rate_ratio(5, 12, 13, dispersion=2.0) > base
    assert stats.mde_rate_ratio(5, 12, 13, nb_alpha=0.1) > base


# -- windows ----------------------------------------------------------------------------------------
def test_default_baseline_is_the_12_weeks_before_the_diagnosis_window():
    windows = stats.plan_windows(counts_panel(np.ones((1, 37))), "R00", plan_start=PLAN_START, as_of=AS_OF)
    assert windows.baseline_source == "before_diagnosis"
    assert (windows.baseline.first_week, windows.baseline.last_week) == (WEEKS[0], WEEKS[11])
    assert (windows.diagnosis.first_week, windows.diagnosis.last_week) == (WEEKS[12], WEEKS[23])
    assert windows.plan.weeks.equals(WEEKS[24:]) and windows.caveat == ""


def test_plan_counts_only_complete_weeks_and_starts_on_the_next_monday():
    windows = stats.plan_windows(counts_panel(np.ones((1, 37))), "R00",
                                 plan_start=PLAN_START + pd.Timedelta(days=2),     # a Wednesday
                                 as_of=WEEKS[30] + pd.Timedelta(days=3))           # a Thursday
    assert windows.plan.first_week == WEEKS[25] and windows.plan.last_week == WEEKS[29]


def test_short_history_falls_back_to_the_weeks_that_exist_then_to_the_diagnosis_window():
    hired_late = np.arange(37) >= 10                                     # 2 weeks before the diagnosis window
    windows = stats.plan_windows(counts_panel(np.ones((1, 37)), employed=hired_late[None, :]), "R00",
                                 plan_start=PLAN_START, as_of=AS_OF)
    assert windows.baseline_source == "earlier_data" and windows.baseline.n_weeks == 2
    assert "last 2 weeks" in windows.caveat and "imprecise" in windows.caveat
    hired_in_diagnosis = (np.arange(37) >= 14)[None, :]
    windows = stats.plan_windows(counts_panel(np.ones((1, 37)), employed=hired_in_diagnosis), "R00",
                                 plan_start=PLAN_START, as_of=AS_OF)
    assert windows.baseline_source == "diagnosis_window" and windows.baseline == windows.diagnosis
    assert "regression to the mean" in windows.caveat


def test_a_baseline_set_in_the_plan_is_used_and_checked():
    panel = counts_panel(np.ones((1, 37)))
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF,
                                 baseline_start="2024-01-15", baseline_end="2024-03-10")
    assert windows.baseline_source == "given"
    assert (windows.baseline.first_week, windows.baseline.last_week) == (WEEKS[2], WEEKS[9])
    with pytest.raises(PlanError, match="baseline must end before the plan starts"):
        stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF, baseline_end=WEEKS[30])
    with pytest.raises(PlanError, match="as_of"):
        stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=WEEKS[20])
    with pytest.raises(PlanError, match="diagnosis window must end before the plan"):
        stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF, diagnosis_end=WEEKS[25])


def test_after_a_leave_the_baseline_is_the_last_weeks_worked_before_the_diagnosis_window():
    worked = ((np.arange(37) < 9) | (np.arange(37) >= 12))[None, :]     # away in weeks 9-11
    panel = counts_panel(np.ones((1, 37)), employed=worked)
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF, min_baseline_weeks=10)
    assert windows.baseline_source == "earlier_data"
    assert (windows.baseline.first_week, windows.baseline.last_week) == (WEEKS[0], WEEKS[8])


# -- count model ------------------------------------------------------------------------------------
def test_count_change_without_peers_is_the_poisson_glm_with_working_day_exposure():
    rng = np.random.default_rng(3)
    counts = rng.poisson(6, size=(1, 37)).astype(float)
    panel = counts_panel(counts)
    holidays = [WEEKS[3], WEEKS[27] + pd.Timedelta(days=2)]
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.count_change(panel, "R00", "emails_per_week", windows=windows, peers=[], holidays=holidays,
                                family="poisson")
    used = IS_PLAN | IS_BASELINE
    days = stats.working_days(WEEKS, holidays)
    glm = sm.GLM(counts[0, used], sm.add_constant(IS_PLAN[used].astype(float)), family=sm.families.Poisson(),
                 exposure=days[used]).fit()
    assert change.estimate == pytest.approx(np.exp(glm.params[1]))
    assert [change.ci_low, change.ci_high] == pytest.approx(np.exp(glm.conf_int()[1]).tolist())
    assert change.p_value == pytest.approx(glm.pvalues[1])
    assert np.isnan(change.peer_change) and change.placebo_n == 0


def test_week_effects_are_the_poisson_glm_with_rep_and_week_dummies():
    rng = np.random.default_rng(4)
    counts = rng.poisson(rng.uniform(3, 9, size=(6, 1)) * rng.uniform(0.7, 1.3, size=(1, 10))).astype(float)
    exposure = np.full((6, 10), 5.0)
    exposure[0, :3] = 0.0                                               # hired late
    exposure[4, 7] = 3.0                                                # a short week
    counts = np.where(exposure > 0, counts, 0.0)
    g, _, _ = _week_effects(counts, exposure, np.ones((1, 6)))
    cells = exposure.ravel() > 0
    rep, week = np.repeat(np.arange(6), 10)[cells], np.tile(np.arange(10), 6)[cells]
    design = np.column_stack([np.ones(cells.sum()), (rep[:, None] == np.arange(1, 6)).astype(float),
                              (week[:, None] == np.arange(1, 10)).astype(float)])
    glm = sm.GLM(counts.ravel()[cells], design, family=sm.families.Poisson(),
                 exposure=exposure.ravel()[cells]).fit()
    assert np.allclose(np.log(g[0, 1:] / g[0, 0]), glm.params[6:], atol=1e-6)


def test_a_swing_every_rep_shares_is_not_an_improvement():
    """Quarter-end or seasonal rises lift peers too; week effects absorb them."""
    level = np.array([[20.0], [30.0], [25.0], [35.0], [28.0], [22.0]])
    season = np.where(IS_PLAN, 1.3, 1.0)[None, :]
    panel = counts_panel(level * season)
    verdicts = stats.assess(panel, "R00", metrics=["emails_per_week"], plan_start=PLAN_START, as_of=AS_OF,
                            peers=peers_of(6))
    row = verdicts.iloc[0]
    assert row["actual"] / row["baseline"] == pytest.approx(1.3)
    assert row["estimate"] == pytest.approx(1.0) and row["peer_change"] == pytest.approx(1.3)
    assert row["verdict"] != stats.IMPROVED


def test_a_real_doubling_is_measured_as_a_doubling():
    level = np.array([[20.0], [30.0], [25.0], [35.0], [28.0], [22.0]])
    panel = counts_panel(level * np.where(IS_PLAN & (np.arange(6) == 0)[:, None], 2.0, 1.0))
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.count_change(panel, "R00", "emails_per_week", peers=peers_of(6), windows=windows)
    assert change.estimate == pytest.approx(2.0) and change.peer_change == pytest.approx(1.0)
    assert change.placebo_rank == 1 and change.placebo_n == 5


def test_overdispersed_counts_get_a_negative_binomial_variance():
    rng = np.random.default_rng(5)
    panel = counts_panel(rng.poisson(rng.gamma(2.0, 10.0, size=(20, 37))))
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.count_change(panel, "R00", "emails_per_week", peers=peers_of(20), windows=windows)
    assert change.model.startswith("negative binomial")
    poisson = stats.count_change(panel, "R00", "emails_per_week", peers=peers_of(20), windows=windows,
                                 family="poisson")
    assert change.estimate == pytest.approx(poisson.estimate)
    # the plain Poisson is far too sure of itself: its own standard error is much smaller, and the peers'
    # placebo refits catch it (they spread ~2x wider than N(0, 1)), so its interval is widened to match
    assert change.se / change.inflation > 1.5 * poisson.se / poisson.inflation
    assert poisson.inflation > 1.5 and change.inflation < poisson.inflation
    assert change.ci_high / change.ci_low == pytest.approx(poisson.ci_high / poisson.ci_low, rel=0.35)


# -- ratio model ------------------------------------------------------------------------------------
def test_ratio_change_without_peers_is_the_binomial_glm_on_pooled_counts():
    second = np.zeros((1, 37))
    first = np.zeros((1, 37))
    second[0, :12], first[0, :12] = 1, 3                                  # 12 of 36 in the baseline
    second[0, 24:], first[0, 24:] = 2, 3                                  # 26 of 39 in the plan
    panel = long_panel({"followup_meeting_ratio": (second, first)})
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.ratio_change(panel, "R00", "followup_meeting_ratio", windows=windows, peers=[])
    glm = sm.GLM(np.array([[12, 24], [26, 13]]), np.array([[1.0, 0.0], [1.0, 1.0]]),
                 family=sm.families.Binomial(link=sm.families.links.Identity())).fit()
    assert change.estimate == pytest.approx(glm.params[1])
    assert (change.baseline, change.actual) == pytest.approx((12 / 36, 26 / 39))
    # the variance is the larger of the GLM's (Wald) and the two-proportion score test's (pooled rate):
    # here the pooled one, so z is statsmodels' proportions_ztest and the interval is wider than the GLM's
    from statsmodels.stats.proportion import proportions_ztest

    z, _ = proportions_ztest([26, 12], [39, 36])
    assert change.z == pytest.approx(z)
    low, high = glm.conf_int()[1]
    assert change.ci_low < low and change.ci_high > high


def test_flow_ratio_numerators_are_capped_at_the_pooled_denominator():
    second = np.where(IS_PLAN, 3.0, 1.0)[None, :]
    first = np.where(IS_PLAN, 2.0, 3.0)[None, :]                          # 39 second meetings, 26 first
    panel = long_panel({"followup_meeting_ratio": (second, first)})
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.ratio_change(panel, "R00", "followup_meeting_ratio", windows=windows, peers=[])
    assert change.actual == 1.0 and change.detail["plan_successes"] == 26


def test_the_ratio_baseline_is_the_reps_own_unshrunk_rate():
    # a low rep (2 of 20) among peers at ~50%: shrinking the baseline toward peers would hide half a real gain
    rng = np.random.default_rng(3)
    trials = np.full((10, 37), 4.0)
    rate = np.full((10, 37), 0.5)
    rate[0] = np.where(IS_PLAN, 0.5, 0.1)
    won = rng.binomial(trials.astype(int), rate).astype(float)
    panel = long_panel({"followup_meeting_ratio": (won, trials)})
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.ratio_change(panel, "R00", "followup_meeting_ratio", windows=windows, peers=peers_of(10))
    assert change.baseline == change.baseline_raw
    own = change.detail["baseline_successes"] / change.detail["baseline_trials"]
    assert change.baseline == pytest.approx(own) and own < 0.2


def test_win_rate_change_is_judged_beyond_peers_with_placebo():
    rng = np.random.default_rng(6)
    closed = rng.poisson(4, size=(25, 37)).astype(float)
    rate = np.full((25, 37), 0.25)
    rate[0, IS_PLAN] = 0.6
    won = rng.binomial(closed.astype(int), rate).astype(float)
    panel = long_panel({"win_rate": (won, closed)})
    verdicts = stats.assess(panel, "R00", metrics=["win_rate"], plan_start=PLAN_START, as_of=AS_OF,
                            peers=peers_of(25))
    row = verdicts.iloc[0]
    assert row["effect"] == "difference in points" and row["verdict"] == stats.IMPROVED
    assert row["ci_low"] < 0.35 < row["ci_high"] and row["placebo_rank"] == 1       # true change +35 points


# -- days between touches ---------------------------------------------------------------------------
def _gap(rep: str, opp: str, ended: str, days: float, censored: bool = False) -> dict:
    return {"rep_id": rep, "opp_id": opp, "ended_at": pd.Timestamp(ended), "days": days, "censored": censored}


def test_open_gaps_count_as_time_at_risk_and_gaps_are_split_at_window_edges():
    gaps = pd.DataFrame([
        _gap("R00", "A", "2024-02-01", 2), _gap("R00", "A", "2024-02-05", 4),
        _gap("R00", "B", "2024-02-10", 6),
        _gap("R00", "A", "2024-07-01", 2), _gap("R00", "A", "2024-07-03", 2),
        _gap("R00", "B", "2024-09-15", 10, censored=True),               # still open at the review
        _gap("R00", "C", "2024-06-20", 10),                              # started in the diagnosis window
    ])
    panel = counts_panel(np.ones((1, 37)))
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
    change = stats.gap_change(gaps, "R00", windows=windows, peers=[])
    # baseline: 12 days over 3 closed gaps; plan: 2 + 2 + 10 (open) + 3 (17-20 Jun) days over 3 closed gaps
    assert change.baseline == pytest.approx(4.0) and change.actual == pytest.approx(17 / 3)
    assert change.estimate == pytest.approx(17 / 12) and change.direction == -1
    assert change.detail["open_gaps"] == 1


def touch_gaps(rng: np.random.Generator, n_reps: int, mean_gap, n_opps: int = 12) -> pd.DataFrame:
    """Each opportunity is touched at random (exponential gaps of ``mean_gap(rep, day)`` days) from the
    first week to ``AS_OF``; its last gap is still open then (censored)."""
    rows, end = [], (AS_OF - WEEKS[0]).days
    for rep in range(n_reps):
        for opp in range(n_opps):
            last = day = rng.uniform(0, 7)
            while (day := day + rng.exponential(mean_gap(rep, day))) < end:
                touched = WEEKS[0] + pd.Timedelta(days=day)
                rows.append(_gap(f"R{rep:02d}", f"{rep}-{opp}", touched, day - last))
                last = day
            rows.append(_gap(f"R{rep:02d}", f"{rep}-{opp}", AS_OF, end - last, censored=True))
    return pd.DataFrame(rows)


def test_shorter_gaps_between_touches_are_an_improvement():
    plan_day = (PLAN_START - WEEKS[0]).days
    gaps = touch_gaps(np.random.default_rng(7), 20,
                      lambda rep, day: 3.0 if rep == 0 and day > plan_day else 7.0)  # R00: every 3 days
    verdicts = stats.assess(counts_panel(np.ones((20, 37))), "R00", metrics=["avg_days_between_touches"],
                            plan_start=PLAN_START, as_of=AS_OF, peers=peers_of(20), gaps=gaps,
                            targets={"avg_days_between_touches": 5})
    row = verdicts.iloc[0]
    assert row["ci_low"] < 3 / 7 < row["ci_high"] and row["verdict"] == stats.IMPROVED
    assert row["baseline"] == pytest.approx(7, rel=0.25) and row["effect"] == "gap ratio" and row["mde"] < 1


# -- trend ------------------------------------------------------------------------------------------
def test_trend_uses_mann_kendall_and_theil_sen():
    rising = np.array([3, 4, 4, 6, 5, 7, 8, 8, 9, 11, 10, 12, 13], dtype=float)
    trend = stats.trend_test(rising)
    reference = pymannkendall.original_test(rising)
    assert (trend.tau, trend.p_value) == pytest.approx((reference.Tau, reference.p))
    assert trend.slope == pytest.approx(reference.slope)
    short = stats.trend_test([1.0, 2.0, 4.0, 3.0, 5.0])
    assert short.p_value == pytest.approx(10 / 120)          # exact Kendall: 5 of 120 orders, each side
    assert np.isnan(stats.trend_test([1.0, np.nan, 2.0]).tau)


# -- verdicts and sentences -------------------------------------------------------------------------
def _change(**kw) -> stats.MetricChange:
    base = {"metric": "emails_per_week", "kind": "count", "effect": "rate ratio", "model": "Poisson",
            "higher_is_better": True, "baseline": 20.0, "baseline_raw": 20.0, "actual": 30.0, "estimate": 1.5,
            "ci_low": 1.2, "ci_high": 1.9, "p_value": 0.001, "z": 3.3, "peer_change": 1.02,
            "placebo_rank": 1.0, "placebo_n": 29, "placebo_p": 1 / 30, "mde": 1.3, "baseline_weeks": 12,
            "plan_weeks": 13,
            "detail": {"baseline_count": 240.0, "plan_count": 390.0}}
    return stats.MetricChange(**{**base, **kw})


def test_verdict_words():
    assert stats.decide_verdict(_change(), 1) == stats.IMPROVED
    worse = _change(estimate=0.7, ci_low=0.55, ci_high=0.85, z=-3.3)
    assert stats.decide_verdict(worse, -1) == stats.WORSE
    assert stats.decide_verdict(_change(estimate=1.1, z=0.8), 0, target=30.0) == stats.NO_CLEAR_CHANGE


def test_too_early_when_the_checkpoint_could_not_show_the_target_change():
    early = _change(estimate=1.2, z=1.0, mde=1.7, plan_weeks=4)
    assert stats.decide_verdict(early, 0, target=25.0) == stats.TOO_EARLY          # target asks for +25%
    assert stats.decide_verdict(early, 0, target=40.0) == stats.NO_CLEAR_CHANGE    # +100% was detectable
    assert stats.decide_verdict(_change(estimate=np.nan, z=np.nan), 0) == stats.TOO_EARLY


def test_obrien_fleming_boundaries_match_the_published_table():
    # Lan-DeMets O'Brien-Fleming spending, 4 equally spaced looks, one-sided 2.5%: 4.333, 2.963, 2.359, 2.014
    # (Jennison & Turnbull 2000; gsDesign sfLDOF)
    bounds = stats.sequential_boundaries([0.25, 0.5, 0.75, 1.0], 0.025)
    assert bounds == pytest.approx([4.333, 2.963, 2.359, 2.014], abs=1e-3)
    assert stats.sequential_boundaries([1.0], 0.05) == pytest.approx([1.645], abs=1e-3)   # one look: fixed


def test_boundaries_spend_exactly_alpha_under_the_null_by_simulation():
    # an independent check: Brownian motion observed at the looks crosses some boundary alpha of the time
    rng = np.random.default_rng(7)
    fractions = np.array([3, 6, 9, 12]) / 12
    steps = rng.normal(size=(200_000, 4)) * np.sqrt(np.diff(np.r_[0.0, fractions]))
    z = steps.cumsum(axis=1) / np.sqrt(fractions)
    crossed = (z >= stats.sequential_boundaries(fractions, 0.05)).any(axis=1)
    assert crossed.mean() == pytest.approx(0.05, abs=0.003)
    assert stats.obf_spending(0.25, 0.05) < 0.001                     # almost nothing spent at the first look


def test_information_fractions_of_a_fixed_baseline_spend_exactly_alpha_by_simulation():
    """Reviews of a before/after change at plan weeks 3, 6, 9, 12 after a 12-week baseline: the statistics
    share the baseline, so their information grows as 1 / (1/B + 1/P) (0.40, 0.67, 0.86, 1), not with the
    calendar. A generator written here (weekly N(0, 1) values, no change) shows the boundaries at those
    fractions spend exactly alpha over the four looks, and at the calendar fractions they do not."""
    fractions = stats.information_fractions([3, 6, 9, 12], 12)
    assert fractions == pytest.approx([0.4, 2 / 3, 6 / 7, 1.0], abs=1e-9)
    rng = np.random.default_rng(11)
    n = 400_000
    base = rng.normal(size=n) / math.sqrt(12)                      # the baseline mean of 12 weeks
    plan = rng.normal(size=(n, 4)) * math.sqrt(3)                  # sums of 3 plan weeks between looks
    weeks = np.array([3, 6, 9, 12])
    z = (plan.cumsum(axis=1) / weeks - base[:, None]) / np.sqrt(1 / 12 + 1 / weeks)

    def error(t):
        return float((z >= stats.sequential_boundaries(t, 0.025)).any(axis=1).mean())
    assert error(fractions) == pytest.approx(0.025, abs=0.0008)    # MC sd 0.00025
    assert error(weeks / 12) < 0.0235                               # calendar fractions spend less than alpha
    # a look before any plan week has no information: a tiny fraction, an unreachable boundary
    assert stats.information_fractions([0, 6, 12], 12)[0] < 1e-5
    with pytest.raises(ValueError):
        stats.information_fractions([3, 6], 0)


def test_one_holm_family_per_plan_whatever_has_an_estimate_yet():
    """A focus metric without an estimate yet still counts in the plan's Holm family: the same m at every look."""
    fractions = stats.information_fractions([3, 6, 9, 12], 12)
    _, with_nan = stats.sequential_holm([2.6, np.nan], fractions=fractions, look=3, alpha=0.05, family=2)
    _, alone = stats.sequential_holm([2.6, 1.0], fractions=fractions, look=3, alpha=0.05)
    assert with_nan[0] == pytest.approx(alone[0])
    assert with_nan[0] == pytest.approx(stats.sequential_boundaries(fractions, 0.025)[3])
    crossed, _ = stats.sequential_holm([2.0, np.nan], fractions=fractions, look=3, alpha=0.05, family=2)
    dropped, _ = stats.sequential_holm([2.0, np.nan], fractions=fractions, look=3, alpha=0.05)
    assert list(crossed) == [0, 0] and list(dropped) == [1, 0]       # z = 2.0 passes alpha, not alpha / 2


def test_holm_across_focus_metrics_at_a_look():
    fractions = [0.25, 0.5, 0.75, 1.0]
    crossed, boundary = stats.sequential_holm([2.3, 1.0, -2.5, np.nan], fractions=fractions, look=3, alpha=0.05)
    # three judged metrics: the most extreme must pass the alpha/3 boundary, the next alpha/2, ...
    assert boundary[0] == pytest.approx(stats.sequential_boundaries(fractions, 0.05 / 3)[3])
    assert list(crossed) == [1, 0, -1, 0]
    early, _ = stats.sequential_holm([3.5, -3.5], fractions=fractions, look=0, alpha=0.05)
    assert list(early) == [0, 0]                                       # z = 3.5 is not enough at week 3


def test_on_ar1_weeks_the_widened_z_scores_are_no_wider_than_standard():
    """Weekly emails at 60 a week times a log-normal AR(1) factor (rho 0.5, sd 0.2; a generator written here),
    ten reps, nothing changes: the model's own z-scores spread far wider than N(0, 1) (weeks are correlated);
    after the placebo widening (nine peers, an allowance for estimating it from nine, the rep's weeks' own
    Newey-West floor) their variance is at most about 1, so "worse" and "improved" keep their error rates."""
    rng = np.random.default_rng(17)
    widened, model = [], []
    for _ in range(60):
        x = np.zeros((10, 37))
        x[:, 0] = rng.normal(0, 0.2, 10)
        for t in range(1, 37):
            x[:, t] = 0.5 * x[:, t - 1] + 0.2 * math.sqrt(1 - 0.25) * rng.normal(size=10)
        panel = counts_panel(rng.poisson(60 * np.exp(x - 0.02)))
        windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
        change = stats.count_change(panel, "R00", "emails_per_week", peers=peers_of(10), windows=windows)
        widened.append(change.z)
        model.append(change.z * change.inflation)
    assert np.var(model) > 1.3, np.var(model)
    assert np.var(widened) < 1.15, np.var(widened)


def test_in_a_small_group_the_peers_change_is_part_of_the_variance():
    """Five reps (four peers), nothing changes: the counterfactual from four peers is itself noisy. A generator
    written here (Poisson emails at 20 a week, binomial follow-ups of 4 first meetings a week at 40%) shows the
    rep's z-scores before any placebo widening have variance about 1 for a count and a ratio (the peers' part
    is in the change's variance); without it they would spread wider (the peers' part is a fifth to a quarter
    of it here)."""
    rng = np.random.default_rng(13)
    z = {"emails_per_week": [], "followup_meeting_ratio": []}
    share = []
    for _ in range(120):
        emails = rng.poisson(20.0, (5, 37))
        first = rng.poisson(4.0, (5, 37))
        panel = long_panel({"emails_per_week": (emails, np.ones_like(emails)),
                            "followup_meeting_ratio": (rng.binomial(first, 0.4), first)})
        windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
        for metric in z:
            change = stats.measure_change(panel, "R00", metric, windows=windows, peers=peers_of(5))
            z[metric].append(change.z * change.inflation)             # the model's own z, before widening
            if metric == "emails_per_week":
                share.append(change.variance.fixed / change.variance.at(0.0))
    for metric, values in z.items():
        assert 0.75 < np.var(values) < 1.3, (metric, np.var(values))
    assert np.mean(share) > 0.1                                       # the peers' and baseline's part is there


def test_the_widening_caveat_says_only_what_its_facts_show():
    from pipnb.stats.assessment import _placebo_caveat

    assert _placebo_caveat(_change(inflation=1.03)) == ""
    few = _placebo_caveat(_change(inflation=1.4, widening={"placebo_spread": math.nan, "placebos": 2.0,
                                                           "weeks": 1.4}))
    assert "1.4 times as wide" in few and "neighbouring weeks are correlated" in few
    assert "placebo changes" not in few and "estimated from" not in few
    calm = _placebo_caveat(_change(inflation=1.12, widening={"placebo_spread": 0.97, "placebos": 17.0,
                                                             "weeks": 1.0}))
    assert "estimated from 17 placebos" in calm and "spread 0.97" not in calm and "correlated" not in calm


def test_placebo_inflation_widens_an_overconfident_model():
    assert stats.placebo_inflation([0.5, -0.3, 0.8, -1.0, 0.2]) == 1.0
    # the root mean square (2) times t_4 / z at 95% (scipy: 2.776 / 1.960): four placebos estimate the scale
    assert stats.placebo_inflation([2.0, -2.0, 2.0, -2.0]) == pytest.approx(
        2.0 * sps.t.ppf(0.975, 4) / sps.norm.ppf(0.975))
    assert stats.placebo_inflation([5.0, 5.0]) == 1.0                 # too few peers to check ...
    assert stats.placebo_inflation([5.0, 5.0], floor=1.4) == 1.4      # ... but never below the rep's own weeks
    assert stats.placebo_inflation([0.1] * 20, floor=1.4) == 1.4
    # never below the rep's own in-time placebos, however calm the peers
    assert stats.placebo_inflation([0.1] * 30, [2.0, -2.0, 2.0, -2.0]) == pytest.approx(2.0)


def test_autocorrelation_inflation_is_newey_west_against_statsmodels():
    """The widening of a period total's standard error for correlated weeks is statsmodels' HAC (Bartlett,
    2 lags, no small-sample correction) over its HC0 variance of a mean, pooled over periods."""
    from statsmodels.regression.linear_model import OLS
    from statsmodels.stats.sandwich_covariance import cov_hac, cov_white_simple

    rng = np.random.default_rng(3)
    for _ in range(5):
        e = rng.normal(size=40)
        e[1:] += 0.6 * e[:-1]
        e -= e.mean()
        fit = OLS(e, np.ones((40, 1))).fit()
        hac = cov_hac(fit, nlags=2, use_correction=False)[0, 0]
        plain = cov_white_simple(fit, use_correction=False)[0, 0]
        assert stats.autocorrelation_inflation([e]) == pytest.approx(math.sqrt(max(hac / plain, 1.0)))
    assert stats.autocorrelation_inflation([rng.normal(size=12)[::1] * 0]) == 1.0


def test_ar1_weeks_widen_a_count_change_beyond_the_model():
    """AR(1) weekly factors (rho 0.7) on the rep's emails: the rep's own weekly residuals widen the interval
    by about the long-run variance ratio even with too few peers to check placebos (2 peers)."""
    rng = np.random.default_rng(5)
    widen = {0.7: [], 0.0: []}
    for _ in range(20):
        for rho in widen:
            x = np.zeros(37)
            for t in range(1, 37):
                x[t] = rho * x[t - 1] + 0.25 * rng.normal()
            counts = np.vstack([rng.poisson(60 * np.exp(x)), rng.poisson(60.0, (2, 37))])
            panel = counts_panel(counts)
            windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
            change = stats.count_change(panel, "R00", "emails_per_week", peers=["R01", "R02"], windows=windows)
            widen[rho].append(change.inflation)
    assert np.mean(widen[0.7]) > 1.15, widen
    assert np.mean(widen[0.0]) < 1.08, widen


def test_placebo_rank_counts_ties_against_the_rep():
    assert stats.placebo_rank(2.0, [2.0, 0.5, -1.0]) == (2.0, 3, 0.5)
    assert stats.placebo_rank(-2.0, [0.0, 1.0, np.nan], higher_is_better=False) == (1.0, 2, 1 / 3)


def test_sentence_gives_numbers_then_verdict_then_peers():
    sentence = sentences.describe_change(_change(), stats.IMPROVED, target=28.0,
                                     baseline_label="1 Jan - 24 Mar 2024")
    numbers, verdict, peers = (sentence.index(s) for s in ("30.0 a week", "Verdict: improved", "Peers over"))
    assert numbers < verdict < peers
    # no decision boundary given: the two-sided 95% interval, named so; no review: the target without a status
    assert "+50% (95% interval +20% to +90%)" in sentence and "Target: 28.0/wk by the end of the plan." in sentence


# -- assess -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def improving_team() -> tuple[pd.DataFrame, list[str]]:
    team = simulate_team(np.random.default_rng(11))
    emails = team["emails"].copy()
    emails[0, IS_PLAN] = np.random.default_rng(12).poisson(team["email_mean"][0, IS_PLAN] * 2.0)
    return team_panel(team, emails), peers_of(30)


def test_assess_returns_one_verdict_row_per_metric(improving_team):
    panel, peers = improving_team
    verdicts = stats.assess(panel, "R00", metrics=PLAN_METRICS, plan_start=PLAN_START, as_of=AS_OF,
                            peers=peers, targets={"emails_per_week": 45, "followup_meeting_ratio": 0.6},
                            holidays=[WEEKS[30]])
    assert list(verdicts.columns) == list(stats.VERDICT_COLUMNS)
    assert verdicts["metric"].tolist() == PLAN_METRICS
    assert set(verdicts["verdict"]) <= set(stats.VERDICTS)
    emails = verdicts.iloc[0]
    assert emails["verdict"] == stats.IMPROVED and emails["ci_low"] > 1.2 and emails["placebo_rank"] == 1
    assert emails["z"] >= emails["boundary"] > 1.96          # Holm over three metrics at the final look
    assert verdicts["baseline_source"].eq("before_diagnosis").all()
    assert not any(peer in " ".join(sentences.verdict_sentences(verdicts)) for peer in peers)


def test_assess_does_not_modify_its_inputs(improving_team):
    panel, peers = improving_team
    before, peers_before = panel.copy(), list(peers)
    stats.assess(panel, "R00", metrics=PLAN_METRICS, plan_start=PLAN_START, as_of=AS_OF, peers=peers)
    pd.testing.assert_frame_equal(panel, before)
    assert peers == peers_before


def test_assess_early_checkpoint_can_be_too_early(improving_team):
    panel, peers = improving_team
    verdicts = stats.assess(panel, "R00", metrics=["first_meetings_per_week"], plan_start=PLAN_START,
                            as_of=WEEKS[26] + pd.Timedelta(days=6), peers=peers,
                            targets={"first_meetings_per_week": 10.0})      # +50% on a 6.7 a week baseline
    row = verdicts.iloc[0]
    assert row["plan_weeks"] == 3 and row["verdict"] == stats.TOO_EARLY and row["mde"] > 1.5
    assert "this look would find a true change of" in sentences.verdict_sentences(verdicts)[0]


def test_assess_states_the_caveat_when_the_baseline_is_the_selecting_window():
    counts = np.random.default_rng(8).poisson(10, size=(10, 37)).astype(float)
    employed = np.ones((10, 37), bool)
    employed[0, :12] = False                           # the rep was hired as the diagnosis window began
    panel = counts_panel(counts, employed=employed)
    verdicts = stats.assess(panel, "R00", metrics=["emails_per_week"], plan_start=PLAN_START, as_of=AS_OF,
                            peers=peers_of(10))
    assert verdicts.loc[0, "baseline_source"] == "diagnosis_window"
    assert "regression to the mean" in sentences.verdict_sentences(verdicts)[0]
    assert "regression to the mean" in verdicts.loc[0, "caveat"]


def test_assess_errors_say_what_to_fix(improving_team):
    panel, peers = improving_team
    common = {"plan_start": PLAN_START, "as_of": AS_OF, "peers": peers}
    with pytest.raises(UnknownRepError, match="R99"):
        stats.assess(panel, "R99", metrics=["emails_per_week"], **common)
    with pytest.raises(DataError, match="gaps"):
        stats.assess(panel, "R00", metrics=["avg_days_between_touches"], **common)
    with pytest.raises(PlanError, match="avg_deal_size"):
        stats.assess(panel, "R00", metrics=["avg_deal_size"], **common)
    with pytest.raises(DataError, match="calls_per_week"):
        stats.assess(panel, "R00", metrics=["calls_per_week"], **common)


# -- the simulation ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated_plans() -> dict[str, np.ndarray]:
    """150 teams whose true rates never change; the rep with the fewest emails over the 12-week
    diagnosis window is put on a plan. Each team gives two plans judged at the final review: as is (no
    true change) and with the rep's true email rate x1.6 from the plan start: 300 simulated plans."""
    rng = np.random.default_rng(2024)
    pipnb_improved, naive_improved, improved_at_x16 = [], [], []
    diagnosis = slice(12, 24)
    for _ in range(150):
        team = simulate_team(rng)
        rep = int(np.argmin(team["emails"][:, diagnosis].sum(axis=1)))
        kw = {"metrics": PLAN_METRICS, "plan_start": PLAN_START, "as_of": AS_OF, "peers": peers_of(30, rep),
              "holidays": [WEEKS[30]]}
        null = stats.assess(team_panel(team), f"R{rep:02d}", **kw)
        pipnb_improved.append(null["verdict"].eq(stats.IMPROVED).to_numpy())
        naive = rates.test_poisson_2indep(team["emails"][rep, IS_PLAN].sum(), team["days"][IS_PLAN].sum(),
                                    team["emails"][rep, diagnosis].sum(), team["days"][diagnosis].sum(),
                                    method="score", alternative="larger")
        naive_improved.append(naive.pvalue < 0.05)
        emails = team["emails"].copy()
        emails[rep, IS_PLAN] = rng.poisson(team["email_mean"][rep, IS_PLAN] * 1.6)
        boosted = stats.assess(team_panel(team, emails), f"R{rep:02d}", **kw)
        improved_at_x16.append(boosted.loc[0, "verdict"] == stats.IMPROVED)
    return {"pipnb": np.array(pipnb_improved), "naive": np.array(naive_improved),
            "power": np.array(improved_at_x16)}


def test_with_no_true_change_pipnb_rarely_says_improved_where_a_naive_test_often_does(simulated_plans):
    pipnb, naive = simulated_plans["pipnb"], simulated_plans["naive"]
    assert pipnb.mean(axis=0).max() <= 0.07                 # each plan metric
    assert pipnb.any(axis=1).mean() <= 0.07                 # any of the three
    assert naive.mean() > 0.15                              # emails vs the window that selected the rep


def test_a_true_x16_email_rate_is_called_improved_by_the_final_review(simulated_plans):
    assert simulated_plans["power"].mean() >= 0.70


def test_the_rep_s_own_history_checks_the_count_variance_with_placebo_plan_starts():
    """A rep whose weekly emails swing slowly (pipeline cycles: +-45% with a period of 26 weeks) while the
    peers' are Poisson: the peers' placebos cannot see it, placebo plan starts in the rep's own history do,
    and the interval widens; the same rep without the swing keeps the Poisson variance. Six teams each (the
    swing's phase against the windows decides how much a single team shows). Placebos never reach into the
    diagnosis window (it selected the rep)."""
    weeks = pd.date_range("2022-01-03", periods=96, freq="W-MON")    # 72 weeks before the diagnosis window
    n, units = len(weeks), [f"R{i:02d}" for i in range(9)]
    swing = 1 + 0.45 * np.sin(2 * np.pi * np.arange(n) / 26)
    inflation = {"swinging": [], "steady": []}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        peers = rng.poisson(40.0, size=(8, n))
        for name, rate in (("swinging", 40.0 * swing), ("steady", np.full(n, 40.0))):
            panel = counts_panel(np.vstack([rng.poisson(rate), peers]), weeks=weeks)
            windows = stats.plan_windows(panel, "R00", plan_start=weeks[-12],
                                         as_of=weeks[-1] + pd.Timedelta(days=6))
            assert windows.diagnosis.first_week == weeks[-24]
            own = stats.counts.in_time_placebo_z(panel.assign(week=pd.to_datetime(panel["week"])), units, windows)
            assert 6 <= own.size <= stats.counts.MAX_OWN_PLACEBOS
            change = stats.count_change(panel, "R00", "emails_per_week", peers=units[1:], windows=windows)
            assert "placebo plan starts in the rep's own history" in change.model
            inflation[name].append(change.inflation)
    assert np.mean(inflation["swinging"]) > 1.2, inflation
    # a right model still widens a little: its scale is estimated from ~16 placebos (t_16 / z = 1.08), not known
    assert np.mean(inflation["steady"]) < 1.10, inflation


# -- information fractions per metric (issue 23) ----------------------------------------------------
def test_each_metric_s_fractions_are_the_information_it_has_accrued():
    """Looks at plan weeks 3, 6, 9 and 13 after a 12-week baseline: emails (no carry-over) accrue 3, 6, 9, 13
    judged weeks; the follow-up ratio (3 carry-over weeks) 0, 3, 6, 10, so it has no information at the first
    look; a week without the rep's rows (a leave set aside, plan week 5) is not information either."""
    rng = np.random.default_rng(3)
    panel = team_panel(simulate_team(rng, n_reps=10))
    ends = [PLAN_START + pd.Timedelta(weeks=w, days=-1) for w in (3, 6, 9, 13)]
    from pipnb.stats.assessment import measure_change, metric_fractions
    windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=ends[1])
    emails = measure_change(panel, "R00", "emails_per_week", windows=windows, peers=peers_of(10))
    ratio = measure_change(panel, "R00", "followup_meeting_ratio", windows=windows, peers=peers_of(10))
    assert metric_fractions(panel, "R00", emails, windows=windows, look_ends=ends) == pytest.approx(
        stats.information_fractions([3, 6, 9, 13], 12))
    own = metric_fractions(panel, "R00", ratio, windows=windows, look_ends=ends)
    assert own[0] < 1e-5 and own[1:] == pytest.approx(stats.information_fractions([0, 3, 6, 10], 12)[1:])
    away = panel[~((panel["rep_id"] == "R00") & (panel["week"] == PLAN_START + pd.Timedelta(weeks=4)))]
    emails = measure_change(away, "R00", "emails_per_week", windows=windows, peers=peers_of(10))
    assert metric_fractions(away, "R00", emails, windows=windows, look_ends=ends) == pytest.approx(
        stats.information_fractions([3, 5, 8, 12], 12))
    # assess judges each metric at its own boundary: the ratio's first look is out of reach
    rows = stats.assess(panel, "R00", metrics=["emails_per_week", "followup_meeting_ratio"], plan_start=PLAN_START,
                        as_of=ends[0], peers=peers_of(10), look_ends=ends, look=0).set_index("metric")
    assert rows.loc["emails_per_week", "boundary"] == pytest.approx(stats.sequential_boundaries(
        stats.information_fractions([3, 6, 9, 13], 12), 0.025)[0])
    assert not np.isfinite(rows.loc["followup_meeting_ratio", "boundary"]) or \
        rows.loc["followup_meeting_ratio", "verdict"] == "too early to tell"


def test_a_carry_over_metric_spends_alpha_on_its_own_fractions_by_simulation():
    """A metric judged after 3 carry-over weeks has 0, 3, 6, 9 judged weeks at looks in plan weeks 3-12. A
    generator written here (weekly N(0, 1) values, no change) shows its own fractions spend alpha over the looks,
    and the plan's shared fractions (0.40, 0.67, 0.86, 1) spend more (about 2.8% for 2.5%: they hold its later
    looks to boundaries meant for more information than it has)."""
    own = stats.information_fractions([0, 3, 6, 9], 12)
    shared = stats.information_fractions([3, 6, 9, 12], 12)
    rng = np.random.default_rng(12)
    n = 300_000
    base = rng.normal(size=n) / math.sqrt(12)
    plan = rng.normal(size=(n, 3)) * math.sqrt(3)
    weeks = np.array([3, 6, 9])
    z = (plan.cumsum(axis=1) / weeks - base[:, None]) / np.sqrt(1 / 12 + 1 / weeks)   # looks 2-4; look 1: none

    def error(t):
        return float((z >= stats.sequential_boundaries(t, 0.025)[1:]).any(axis=1).mean())
    assert error(own) == pytest.approx(0.025, abs=0.001)                  # MC sd 0.0003
    assert error(shared) > 0.0265


def test_the_stated_detectable_change_is_found_about_80_percent_of_the_time_by_simulation():
    """The promise of a review's smallest detectable change, on the rule that decides: a generator written here
    (ten reps, 20 emails a week times a log-normal AR(1) factor, rho 0.5, sd 0.2: weeks that swing together, so
    the placebo widening is well above 1). The change stated on a no-change history (final look of four, Holm
    across three focus metrics) is planted in the rep's plan weeks; the decision's z must cross the same boundary
    about 80% of the time. Counting the decision's allowances (``t_k / z``, the largest of several estimates)
    in the estimate's own scatter as well made the stated change too large (found 83-88% of the time)."""
    from dataclasses import replace

    from pipnb.stats.sequential import look_boundary
    from pipnb.stats.verdicts import rule_mde
    rng = np.random.default_rng(5)
    boundary = look_boundary(stats.information_fractions([3, 6, 9, 12], 12), 3, 0.05 / 3)
    found, n = 0, 150
    for _ in range(n):
        x = np.zeros((10, 37))
        x[:, 0] = rng.normal(0, 0.2, 10)
        for t in range(1, 37):
            x[:, t] = 0.5 * x[:, t - 1] + 0.2 * math.sqrt(0.75) * rng.normal(size=10)
        mean = 20 * np.exp(x - 0.02)
        panel = counts_panel(rng.poisson(mean))
        windows = stats.plan_windows(panel, "R00", plan_start=PLAN_START, as_of=AS_OF)
        change = stats.count_change(panel, "R00", "emails_per_week", peers=peers_of(10), windows=windows)
        stated = rule_mde(change, boundary)
        assert 1 < stated <= rule_mde(replace(change, widening={**change.widening, "scatter": change.inflation}),
                                      boundary)
        moved = mean.copy()
        moved[0, IS_PLAN] *= stated
        again = stats.count_change(counts_panel(rng.poisson(moved)), "R00", "emails_per_week", peers=peers_of(10),
                                   windows=windows)
        found += again.z >= boundary
    assert 0.70 <= found / n <= 0.88, found / n            # 80% +- 5 points, with room for 150 draws (sd 3.3)
