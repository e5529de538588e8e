"""Reviews: a plan's checkpoints and its final review, against the glide path, with honest statistics.

The article's third step. Each target gets a status from a 95% interval of the rep's level
(:mod:`pipnb.stats.intervals`): *met* when the whole interval reaches the level asked for, *not met* when it all
falls short, *not yet clear* otherwise. At a checkpoint the level is the pool of every plan week so far, held to
what the glide path expects on average by now. At the final review the status judges the **final target**: the
level over the last review window (the weeks since the last checkpoint) against the target itself; whether the
rep kept to the glide path over the plan is a separate column (``glide_status``). Every sentence about a target
(the table, the reasons, the "Target" line of a verdict) reads the same status.

A review also carries the statistical verdicts of :mod:`pipnb.stats` on the plan's improvement areas (did the
rep change, beyond chance and beyond what peers did over the same weeks; the checkpoints and the final review
share one error budget). The final review recommends *consequences* only with positive evidence of a remaining
shortfall (an improvement area below its final target and below the peers' level by the practical margin, both
beyond chance), *complete* only with the evidence its reason names for every improvement area (its final
target reached, or its plan-period level within the margin of the peers' level or better), and *extend*
otherwise.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipnb.book import COLUMNS as BOOK_COLUMNS
from pipnb.book import SHRINK_MARGIN, book_change
from pipnb.data import SalesData
from pipnb.display import card_html, review_facts, short_repr
from pipnb.errors import PlanError
from pipnb.events import event_facts, event_verdicts, without_leave
from pipnb.metrics import touch_gaps, weekly_panel
from pipnb.peers import plan_peers
from pipnb.plan import Plan
from pipnb.policy import Policy, resolve_policy
from pipnb.schema import METRICS
from pipnb.sources import accepts_path
from pipnb.stages import parse_stage
from pipnb.statuses import (
    MET,
    NO_DATA,
    NOT_MET,
    NOT_YET_CLEAR,
    pooled,
    rebaselined,
    status_table,
    weekly_numerators,
)


@dataclass
class Review:
    """One checkpoint (or the final review) of one plan.

    Attributes
    ----------
    table
        Per plan metric: baseline, target (the glide path's average over the plan weeks so far: what the
        pooled level is held to), glide_target (the path's value at this review), final_target, actual
        over the review's own window with actual_low / actual_high (its 95% interval), its counts and
        window_weeks, since_start with since_low / since_high (its 95% interval) and since_numerator /
        since_denominator (the pooled counts), peer_level (the peers' median over the plan weeks),
        short_of_peers / at_peer_level (the plan-period interval wholly beyond the margin below the peers'
        level, or wholly within it or better), glide_status (the plan weeks so far against the glide path),
        final_status (final review only: the window against the final target) and status
        (:data:`STATUSES`): ``final_status`` at the final review, ``glide_status`` at a checkpoint. The levels
        asked for move with the peers (issue 23): adjusted_target / adjusted_final_target are the glide average and
        the final target moved by the peers' change from the diagnosis window (team_before, team_now,
        team_change with team_change_low / team_change_high, team_peers, from plan week team_weeks_from to
        team_weeks_to: over the status's own weeks), status_low / status_high the rep's interval widened by that
        change's uncertainty; the statuses read those, and ``unadjusted`` is the status by the rep's level alone (the
        raw interval against the raw target).
    verdicts
        The statistics of improvement per metric (see :func:`pipnb.stats.assess`).
    recommendation, reasons, extended_end
        Final review only: ``complete``, ``extend`` or ``consequences``, why, and the new end date of an
        extension.
    events
        One record per signed plan event (:func:`pipnb.events.event_facts`): what each sentence about it says.
        A table row a territory, segment or other event rebaselined has ``rebaselined`` true, its re-anchored
        numbers, ``event_factor`` and ``event_judged`` (see :mod:`pipnb.events`).
    book
        The rep's book of accounts in the plan weeks so far against the plan's baseline, beyond the peers' same
        change (:func:`pipnb.book.book_change`); empty without account ids.
    """

    plan: Plan
    stage: str
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    table: pd.DataFrame
    verdicts: pd.DataFrame
    attainment: float | None = None
    recommendation: str | None = None
    reasons: list[str] = field(default_factory=list)
    extended_end: dt.date | None = None
    events: list[dict] = field(default_factory=list)
    book: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        return short_repr("Review", review_facts(self))

    def _repr_html_(self) -> str:
        return card_html("Review", review_facts(self), [("status per measure", self.table)])

    @property
    def is_final(self) -> bool:
        return self.stage == "final"

    def to_dict(self) -> dict:
        """Plain JSON-ready fields, for ``pipnb review --format json``."""
        def records(frame: pd.DataFrame) -> list[dict]:
            clean = frame.astype(object).where(frame.notna(), None)
            return [{k: (v.isoformat() if isinstance(v, (pd.Timestamp, dt.date)) else v) for k, v in row.items()}
                    for row in clean.to_dict(orient="records")]

        return {
            "rep_id": self.plan.rep_id, "stage": self.stage, "as_of": self.as_of.isoformat(),
            "plan_start": self.plan.start.isoformat(), "plan_end": self.plan.end.isoformat(),
            "window_start": self.window_start.isoformat(), "window_end": self.window_end.isoformat(),
            "metrics": records(self.table), "verdicts": records(self.verdicts),
            "attainment": self.attainment, "recommendation": self.recommendation, "reasons": self.reasons,
            **({"events": _plain(self.events)} if self.events else {}),
        }


@accepts_path
def review(data: SalesData, plan: Plan, checkpoint: int | str, *, panel: pd.DataFrame | None = None,
           policy: Policy | None = None) -> Review:
    """Review a plan at a checkpoint (1, 2, 3) or at the final review (``"final"``).

    Parameters
    ----------
    data
        Validated sales data reaching at least the checkpoint's last day.
    plan
        The plan (``Plan.from_yaml("params/plans/<rep>.yaml")``).
    checkpoint
        ``1``, ``2``, ``3`` or ``"final"``.
    panel
        A precomputed weekly panel (one per batch).
    policy
        Review rules (default ``params/policy.yaml``).

    Raises
    ------
    PlanError
        When the plan was edited after it was locked (one line saying what changed), the checkpoint does not
        exist or the data does not reach its last day yet.

    Warns
    -----
    UserWarning
        When the data behind the plan (up to the end of its diagnosis) is not the data it was drafted from.
    """
    if not isinstance(plan, Plan):
        raise PlanError(f"review takes a plan, not a {type(plan).__name__}: pn.review(data, "
                        "pn.Plan.from_yaml('params/plans/<rep>.yaml'), 1)")
    plan.check_lock()                          # an edited locked plan is refused until it is re-activated
    for note in plan.data_notes(data):         # the data behind the plan changed since it was drafted
        warnings.warn(note, stacklevel=2)
    policy = resolve_policy(policy)
    data.rep(plan.rep_id)
    stage = parse_stage(checkpoint, len(plan.checkpoints))
    week = plan.checkpoint_week(checkpoint)
    previous = ([0, *plan.checkpoints])[plan.stages().index(stage)]
    as_of = plan.start + dt.timedelta(weeks=week, days=-1)
    data_end = data.period[1].date()
    if not plan.data_reaches(stage, data_end):
        raise PlanError(not_reached(plan, stage, data_end), key=stage)
    panel = without_leave(weekly_panel(data) if panel is None else panel, plan)   # a leave's weeks set aside
    start_window = plan.start + dt.timedelta(weeks=previous)
    look = plan.stages().index(stage)
    peers = plan_peers(data, plan, policy=policy)
    mine = panel[panel["rep_id"].isin([plan.rep_id, *peers])]
    pooled_window = pooled(mine, start_window, as_of, plan)
    window = pooled_window.loc[plan.rep_id]
    since = pooled(mine, plan.start, as_of, plan)
    weekly = weekly_numerators(mine, plan.rep_id, plan.start, as_of)
    before = pooled(mine, plan.diagnosis_window.start, plan.diagnosis_window.end, plan)
    season = weekly_numerators(mine[mine["rep_id"].isin(peers)], None, plan.start, as_of)
    table = status_table(plan, look, week, window, since, weekly, peers, policy, final=stage == "final",
                          window_start=start_window, team=(before, pooled_window, season))
    table = rebaselined(table, plan, mine, peers, policy, look=look, final=stage == "final",
                         window_start=start_window, as_of=as_of)
    verdicts = with_target_status(plan_verdicts(data, plan, panel=panel, as_of=as_of, look=look, peers=peers),
                                  table)
    out = Review(plan=plan, stage=stage, as_of=as_of, window_start=start_window, window_end=as_of, table=table,
                 verdicts=verdicts, events=event_facts(plan, table, as_of=as_of),
                 book=plan_book(data, plan, peers, as_of))
    if out.is_final:
        out.attainment, out.recommendation, out.reasons = _recommend(table, verdicts, plan, policy, book=out.book)
        if out.recommendation == "extend":
            out.extended_end = plan.end + dt.timedelta(weeks=policy.review.extension_weeks)
    return out


def not_reached(plan: Plan, stage: str, data_end: dt.date) -> str:
    """Why data ending ``data_end`` cannot review ``stage`` yet, and what to do: the latest review it covers, or
    the data to pass."""
    ends, first = plan.checkpoint_dates(), plan.stages()[0]
    covered = [s for s in plan.stages() if plan.data_reaches(s, data_end)]
    if covered:
        instead = f"run {covered[-1]} (ends {ends[covered[-1]]}) with this data, or "
    else:
        instead = "" if stage == first else f"no review is due with this data ({first} ends {ends[first]}); "
    return (f"the data ends {data_end}; the {stage} review needs data to {ends[stage]}: {instead}pass data that "
            f"reaches {ends[stage]}")


BOOK_BASELINE_WEEKS = 12       # the verdicts' default baseline: the 12 weeks before the diagnosis window
MIN_BOOK_WEEKS = 4


def plan_book(data: SalesData, plan: Plan, peers: list[str], as_of: dt.date) -> pd.DataFrame:
    """The rep's book over the plan weeks so far against the plan's baseline (the weeks before the diagnosis
    window, as the verdicts take them; at least :data:`MIN_BOOK_WEEKS` of data), beyond the peers' change."""
    first = max(plan.diagnosis_window.start - dt.timedelta(weeks=BOOK_BASELINE_WEEKS), data.period[0].date())
    last = plan.diagnosis_window.start - dt.timedelta(days=1)
    if (last - first).days + 1 < 7 * MIN_BOOK_WEEKS or as_of < plan.start:
        return pd.DataFrame(columns=BOOK_COLUMNS)
    return book_change(data, plan.rep_id, peers, before=(first, last), during=(plan.start, as_of))


def _plain(records: list[dict]) -> list[dict]:
    """Event records with their dates as ISO strings (JSON-ready)."""
    def plain(v):
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, list):
            return [plain(x) for x in v]
        return {k: plain(x) for k, x in v.items()} if isinstance(v, dict) else v
    return [plain(r) for r in records]


def _recommend(table: pd.DataFrame, verdicts: pd.DataFrame, plan: Plan,
               policy: Policy, *, book: pd.DataFrame | None = None) -> tuple[float, str, list[str]]:
    """*Consequences* only with positive evidence of a remaining shortfall; *complete* only with the evidence its
    reason names for every improvement area; otherwise *extend*.

    A remaining shortfall on an improvement area: its final status is *not met* (the last window's whole 95%
    interval short of the final target) **and** its plan-period interval lies wholly short of the peers' level
    over the same weeks by the practical margin. Completion: every improvement area either reached its final
    target (final status *met*) or has its plan-period interval wholly within the margin of the peers' level
    or better. The reasons are worded from the same table row as the status column.

    No consequence rests on a volume metric alone (a count: opportunities created, first meetings, emails) when
    the rep's ``book`` of accounts shrank beyond noise (:func:`pipnb.book.book_change`): fewer accounts give fewer
    events whatever the rep does. When every remaining shortfall is on a volume metric and the book shrank, the
    recommendation is *extend*, and the reason says so with the book's numbers.
    """
    focus = table[table["focus"]] if table["focus"].any() else table
    met = focus["status"].eq(MET)
    attainment = float(met.mean()) if len(focus) else 0.0
    judged = verdicts.set_index("metric")["verdict"] if len(verdicts) else pd.Series(dtype=object)
    weeks = int(focus["window_weeks"].max()) if len(focus) else 0
    reasons = [f"{met.sum()} of {len(focus)} focus targets reached at the final review (the whole 95% interval of "
               f"the last {weeks} week{'s' * (weeks != 1)} at or beyond the final target)."]
    for row in focus.itertuples():
        reasons.append(f"{row.label}: {target_reason(row)}; peers {METRICS[row.metric].fmt(row.peer_level)} over the "
                       f"same weeks; change since the baseline: {judged.get(row.metric, 'not assessed')}.")
    short = focus[focus["status"].eq(NOT_MET) & focus["short_of_peers"]]
    line = f"{policy.margin:.0%}"
    shrank = book[book["shrank"].astype(bool)] if book is not None and len(book) else pd.DataFrame()
    volume_only = len(short) and all(METRICS[m].kind == "count" for m in short["metric"])
    if volume_only and len(shrank):
        labels = ", ".join(r.lower() for r in short["label"])
        new_end = plan.end + dt.timedelta(weeks=policy.review.extension_weeks)
        return attainment, "extend", [*reasons, *(f"{book_sentence(row)}." for row in shrank.itertuples()), (
            f"The remaining shortfall is on volume alone ({labels}), and the rep's book of accounts shrank beyond "
            "noise: fewer accounts give fewer opportunities, meetings and emails whatever the rep does, so no "
            f"consequence rests on a volume measure alone. Extend the plan by {policy.review.extension_weeks} weeks, "
            f"to {new_end:%d %B %Y}, and review the territory.")]
    if len(short):
        labels = ", ".join(r.lower() for r in short["label"])
        return attainment, "consequences", [*reasons, (
            f"The evidence shows a remaining shortfall on {labels}: the whole 95% interval of the last {weeks} weeks "
            f"falls short of the final target, and the whole 95% interval over the plan weeks lies more than {line} "
            "short of the peers' median over the same weeks. Apply the consequences stated in the plan.")]
    done = focus["status"].eq(MET) | focus["at_peer_level"]
    if len(focus) and done.all():
        evidence = "; ".join(
            f"{r.label.lower()} reached its final target" if r.status == MET else
            f"{r.label.lower()} over the plan weeks lies, its whole 95% interval, within {line} of the peers' median "
            "or better" for r in focus.itertuples())
        return attainment, "complete", [*reasons, (
            f"Every improvement area has the evidence for completion: {evidence}. Close the plan as completed.")]
    new_end = plan.end + dt.timedelta(weeks=policy.review.extension_weeks)
    return attainment, "extend", [*reasons, (
        f"No improvement area is shown both below its final target and more than {line} short of the peers beyond "
        "chance, and not every improvement area has reached its final target or the peers' level: extend the plan by "
        f"{policy.review.extension_weeks} weeks, to {new_end:%d %B %Y}, rather than act on a guess.")]


def target_reason(row) -> str:
    """One clause on a status-table row: its status and the interval it reads (final target or glide path), and,
    when the peers moved the expected level, what the peers did and what the rep's own level says."""
    spec = METRICS[row.metric]
    plan = _level_text(spec, row.since_start, row.since_low, row.since_high, row.since_numerator)
    team = team_clause(row)
    if row.final_status is not None:
        weeks = int(row.window_weeks)
        last = _level_text(spec, row.actual, row.actual_low, row.actual_high, row.numerator)
        goal = _moved_text(spec, row.final_target, row.adjusted_final_target)
        return (f"final target {spec.fmt(row.final_target)}{goal} {row.status}: {last} over the last {weeks} "
                f"week{'s' * (weeks != 1)}; glide path {row.glide_status}: {plan} over the plan vs "
                f"{spec.fmt(row.target)}{_moved_text(spec, row.target, row.adjusted_target)} expected on average"
                f"{team}")
    return (f"{row.status} on the glide path: {plan} over the plan weeks so far vs {spec.fmt(row.target)}"
            f"{_moved_text(spec, row.target, row.adjusted_target)} expected on average by now{team}")


def _moved_text(spec, raw: float, adjusted: float) -> str:
    """' (37.2/wk with the team's change)' when the peers' change moved the expected level as shown."""
    if adjusted is None or not np.isfinite(adjusted) or spec.fmt(adjusted) == spec.fmt(raw):
        return ""
    return f" ({spec.fmt(adjusted)} with the team's change)"


def team_clause(row) -> str:
    """'; the peers' emails per week fell 38% in plan weeks 10-12 against the diagnosis window (95% interval
    -42% to -34%, 9 peers); by the rep's level alone: not met' — from the row's team columns, or '' when the
    peers' change does not move the expected level as shown."""
    spec = METRICS[row.metric]
    final = row.final_status is not None
    raw, adjusted = (row.final_target, row.adjusted_final_target) if final else (row.target, row.adjusted_target)
    if not _moved_text(spec, raw, adjusted):
        return ""
    first, last = int(row.team_weeks_from), int(row.team_weeks_to)     # calendar weeks: the peers took no leave
    weeks = f"plan week {first}" if first == last else f"plan weeks {first}–{last}"
    what = spec.label[0].lower() + spec.label[1:]
    if (spec.model or "count") == "ratio":
        moved_words = f"went from {spec.fmt(row.team_before)} to {spec.fmt(row.team_now)}"
        spread = (f"odds ratio {row.team_change:.2f}, 95% interval {row.team_change_low:.2f}–"
                  f"{row.team_change_high:.2f}")
    else:
        pct = abs(row.team_change - 1)
        moved_words = f"{'rose' if row.team_change > 1 else 'fell'} {pct:.0%}"
        spread = f"95% interval {_pct_change(row.team_change_low)} to {_pct_change(row.team_change_high)}"
    peers = int(row.team_peers)
    return (f"; the peers' {what} {moved_words} in {weeks} against the diagnosis window ({spread}, {peers} "
            f"peer{'s' * (peers != 1)}), and against the same change the rep is {_status_words(row.status)}; "
            f"by the rep's level alone: {row.unadjusted}")


def book_sentence(row) -> str:
    """One row of a review's book (:func:`pipnb.book.book_change`) in words, e.g. 'Accounts of new opportunities:
    22 in the 12 plan weeks so far against 36 in the 12 weeks before the diagnosis window (-39% a week); peers over
    the same weeks: -2% (9 peers); beyond the peers' change, -38% (one-sided 95% bound -21%, a shrink needs it
    below -10%): the book shrank beyond noise'."""
    verdict = ("the book shrank beyond noise" if row.shrank else
               "no shrinking beyond noise")
    during, before = row.weeks_during, row.weeks_before
    return (f"{row.label[0].upper()}{row.label[1:]}: {row.rep_during:.0f} in the {during:.0f} plan "
            f"week{'s' * (round(during) != 1)} so far against {row.rep_before:.0f} in the {before:.0f} weeks before "
            f"the diagnosis window ({_pct_change(row.rep_change)} a week); peers over the same weeks: "
            f"{_pct_change(row.peer_change)} ({row.n_peers} peers); beyond the peers' change, "
            f"{_pct_change(row.relative)} (one-sided {row.level:.0%} bound {_pct_change(row.high)}, a shrink needs it "
            f"below {_pct_change(1 - SHRINK_MARGIN)}): {verdict}")


def _pct_change(factor: float) -> str:
    return f"{(factor - 1) * 100:+.0f}%"


def _status_words(status: str) -> str:
    return {MET: "on track", NOT_MET: "short of it", NOT_YET_CLEAR: "not yet clearly on track or short",
            NO_DATA: "without data"}.get(status, status)


def _level_text(spec, level: float, low: float, high: float, events: float) -> str:
    if not np.isfinite(level):
        return "no data"
    if (spec.model or "count") == "count" and events == 0:
        return f"none (95% interval up to {spec.fmt(high)})"
    return f"{spec.fmt(level)} (95% interval {spec.fmt(low)}–{spec.fmt(high)})"


def with_target_status(verdicts: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The verdict rows with their target's status from the review's table (the same rule, for the sentence)."""
    if verdicts.empty:
        return verdicts
    rows = table.set_index("metric")
    out = verdicts.copy()
    for i, metric in zip(out.index, out["metric"]):
        if metric not in rows.index:
            continue
        row = rows.loc[metric]
        final = row["final_status"] is not None
        out.loc[i, ["target_status", "target_basis"]] = [row["status"], "final" if final else "glide"]
        level = ("actual", "actual_low", "actual_high") if final else ("since_start", "since_low", "since_high")
        out.loc[i, "target_unadjusted"] = float(row["final_target"] if final else row["target"])
        out.loc[i, ["target_expected", "target_level", "target_low", "target_high", "target_weeks"]] = [
            float(row["adjusted_final_target"] if final else row["adjusted_target"]), *(float(row[c]) for c in level),
            float(row["window_weeks"] if final else row["plan_weeks"])]
    return out


def plan_verdicts(data: SalesData, plan: Plan, *, panel: pd.DataFrame, as_of: dt.date, look: int = -1,
                  peers: list[str] | None = None) -> pd.DataFrame:
    """The statistics of improvement for every plan metric (see :func:`pipnb.stats.assess`).

    The baseline is the weeks before the diagnosis window recorded in the plan; peers are the rep's
    peers when that window began, compared over the same weeks. Only the plan's focus metrics get a
    verdict; ``look`` is this review's place among the plan's checkpoints and final review, which share
    one error budget.
    """
    from pipnb.stats import assess  # statsmodels (1.5 s): the change models behind assess

    peers = plan_peers(data, plan) if peers is None else peers
    metrics = [t.metric for t in plan.targets]
    focus = [t.metric for t in plan.targets if t.focus] or metrics
    panel = with_win_rate_basis(panel[panel["rep_id"].isin([plan.rep_id, *peers])], plan.win_rate_basis)
    gaps = touch_gaps(data, as_of, rep_ids=[plan.rep_id, *peers]) if "avg_days_between_touches" in metrics \
        else None
    panel = without_leave(panel, plan)            # a leave's weeks are not plan weeks
    args = dict(metrics=metrics, peers=peers, targets={t.metric: t.target for t in plan.targets}, gaps=gaps,
                diagnosis_start=plan.diagnosis_window.start, diagnosis_end=plan.diagnosis_window.end,
                focus=focus, look_ends=[plan.start + dt.timedelta(weeks=plan.checkpoint_week(s), days=-1)
                                        for s in plan.stages()], look=look)    # each metric's own information
    verdicts = assess(panel, plan.rep_id, plan_start=plan.start, as_of=as_of, **args)
    return event_verdicts(verdicts, panel, plan, as_of=as_of, **args)   # metrics a plan event rebaselined


def with_win_rate_basis(panel: pd.DataFrame, basis: str) -> pd.DataFrame:
    """The panel with ``win_rate`` rows on the plan's basis (``"all"`` takes the ``win_rate_all`` rows)."""
    if basis != "all":
        return panel
    rest = panel[panel["metric"] != "win_rate"]
    return pd.concat([rest[rest["metric"] != "win_rate_all"],
                      panel[panel["metric"] == "win_rate_all"].assign(metric="win_rate")], ignore_index=True)
