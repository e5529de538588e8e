"""Write the lifecycle notebooks (run once by a developer after changing their story; not at run time).

The notebooks are the source of the reports; this script only keeps their JSON tidy and their parameter
cells consistent, and stores the expected output of each ``NBVAL_CHECK_OUTPUT`` cell by running the
notebook once on the demo data (``data/demo``; ``pipnb demo-data`` writes it). It writes the checkout's
top-level ``notebooks/`` (what ``make lab`` opens; the wheel ships it as ``pipnb/notebooks/``).
Importing it builds nothing: :func:`build` returns the notebooks in memory (what
``tests/test_notebooks.py`` compares the shipped ones with), :func:`main` writes them.
Run: .venv/bin/python tools/build_notebooks.py [--no-outputs]
"""

import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"       # shipped inside the wheel as pipnb/notebooks (pyproject.toml)
IMPORTS = "import pipnb as pn\nfrom IPython.display import Markdown, display"
LOAD = ("data, panel = pn.report_data(pn.data_path(data_source), panel_path=panel_path, prepared=prepared)\n"
        "policy = pn.Policy.find(policy_path)")
# Relative paths are the caller's (papermill runs the kernel in its working directory); empty ones mean the
# working folder's (pipnb.parameters), never the notebook's own folder.
COMMON = '''data_source: str = ""  # tables folder, source YAML or database URL; empty: data/demo of the working folder
panel_path: str = ""  # weekly panel precomputed by a batch run (Parquet); empty computes it here
policy_path: str = ""  # target and review rules; empty: params/policy.yaml of the working folder, else pipnb's
prepared: str = ""  # this report's slice of the data and panel, prepared by a batch run; empty loads them'''
#: Parameters without a default: a notebook run without them stops with a clear error.
REQUIRED = ("rep_id",)
#: What the tools pass when they run the notebooks (store_checked_outputs, the tests).
EXAMPLE_REP = "R07"


def md(text):
    return new_markdown_cell(text.strip())


def code(text, *tags):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def check(text, *tags):
    """A cell whose output nbval compares with the stored one; left out of the HTML report.

    Tagged ``pipnb-result``, its printed line is also what ``reports/index.html`` shows beside the report.
    """
    note = "# NBVAL_CHECK_OUTPUT\n# the key result, checked by the tests; not shown in the report\n"
    return code(note + text.strip(), "remove-cell", *tags)


def parameter_check(cells) -> str:
    """The imports cell's text: the imports, then the check of the parameters the notebook declares."""
    import ast

    source = next(c.source for c in cells if "parameters" in c.metadata.get("tags", []))
    declared = {n.target.id: ast.unparse(n.annotation) for n in ast.parse(source).body
                if isinstance(n, ast.AnnAssign)}
    required = [n for n in REQUIRED if n in declared]
    listed = "".join(f'\n    "{name}": {kind},' for name, kind in declared.items())
    return (f"{IMPORTS}\n\n# unknown, mistyped or missing parameters stop here, with a hint\n"
            f"pn.check_parameters(globals(), {{{listed}\n}}, required={required!r})")


def notebook(cells, title):
    for cell in cells:
        if cell.cell_type == "code" and cell.source == IMPORTS:
            cell.source = parameter_check(cells)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:02d}"     # stable ids: rebuilding does not churn the files
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["title"] = title
    return nb


def team_scan() -> NotebookNode:
    """The team scan: who falls short of their peers, on which metrics."""
    return notebook([
        md("""
# Team scan

Which reps fall short of their peers, on which metrics — before it becomes a problem. Each rep is compared
with the other reps of their peer group (the policy's; a group too small widens) over the same weeks; reps
still ramping up are shown but not judged.
"""),
        code(COMMON + '''
as_of: str = ""  # last day of the window, YYYY-MM-DD; empty means the last day with data
weeks: int = 0  # window length in weeks; 0 takes the policy's diagnosis_weeks
peer_by: str = ""  # team | segment | all; empty takes the policy's
win_rate_basis: str = ""  # closed: won ÷ (won + lost); all: won ÷ all opps; empty: the policy's''', "parameters"),
        code(IMPORTS),
        code(LOAD + "\ncard = pn.scorecard(data, as_of=as_of or None, weeks=weeks or None, peer_by=peer_by or None,\n"
             "                    win_rate_basis=win_rate_basis or None, policy=policy, panel=panel)"),
        md("## Summary"),
        code("display(Markdown(pn.text.scan_summary(card, data, panel=panel)))"),
        md("## Data quality"),
        code("display(Markdown(pn.quality.quality_section(data)))"),
        md("""
## Who falls short, and on what

A rep *falls short* on a metric when their rate lies beyond the funnel's lower limit — further from their
peers' pooled rate than their own sampling noise and the real spread between reps allow — and at least 20%
from the peer median. The same rule judges every metric it can (win rate, deal size, sales cycle and the
drivers); the others are context, never flagged. Each line gives the strength of the evidence.
"""),
        code("pn.text.show(pn.text.shortfall_table(card))"),
        md("""
## Funnel plots

Each dot is a rep: their rate against how much data it rests on (weeks, trials or days of open deals). The
dashed lines are the control limits around the company's level: wide where data is thin, narrow where it is
plentiful. Red dots are flagged shortfalls (each rep is judged against their own peer group).
"""),
        code("pn.plots.show(pn.plots.funnel_grid(card))"),
        md("""
## The team at a glance

Each cell's colour is the rep's percentile among their peers on one metric, oriented so that higher is always
better (for days between touches, fewer days scores higher). A low percentile alone is not a flag: a shortfall
beyond noise is outlined, hatched and marked "short". Reps shown but not judged are grey rows that say why.
"""),
        code("pn.plots.show(pn.plots.scan_heatmap(card))"),
        code("pn.outcome.record_outcome(pn.outcome.scan_outcome(card, data))", "remove-cell"),
        check("print(pn.flagged_reps(card, plan_metrics_only=True))"),
    ], "Team scan")


def diagnose() -> NotebookNode:
    """The diagnosis: which outcome falls short, and which behaviours explain it."""
    return notebook([
        md("""
# Diagnosis

The first step of a performance improvement plan: **which outcome falls short, and which selling behaviours
explain it**. Every finding below is backed by the rep's own numbers against the distribution of their
peers over the same weeks; no other rep is named.
"""),
        code(COMMON + '''
rep_id: str = ""  # rep to diagnose (required), e.g. R07
as_of: str = ""  # last day of the diagnosis window, YYYY-MM-DD; empty means the last day with data
weeks: int = 0  # diagnosis window in weeks; 0 takes the policy's diagnosis_weeks''', "parameters"),
        code(IMPORTS),
        code(LOAD + "\ndx = pn.diagnose(data, rep_id, as_of=as_of or None, weeks=weeks or None, policy=policy,\n"
             "                 panel=panel, card=pn.team_card(prepared))"),
        md("## Summary"),
        code("display(Markdown(pn.text.diagnosis_summary(dx)))"),
        md("""
## Outcomes

The results the business cares about, win rate first. *Percentile* is the share of peers this rep does better
than (50th = the middle of the team; higher is better for every metric, fewer days between touches
included). *Peers' middle half* is the range that holds the middle 50% of peers.
"""),
        code("pn.text.show(pn.text.outcome_table(dx))"),
        code("display(Markdown(pn.text.cost_of_gap(dx)))"),
        md("""
## The rep against the peer distribution

Each panel shows one metric: the grey dots and box are the peers (the box holds the middle half), the red
diamond is this rep.
"""),
        code('pn.plots.show(pn.plots.peer_distribution(dx.card, rep_id, ["win_rate", *pn.DRIVER_METRICS]))'),
        md("""
## Drivers: what explains the outcome

Each driver's finding says what its numbers show: a *shortfall* (an improvement area), *in line* with peers,
*below peers, within noise* (lower than peers but within the spread expected between reps: not a proven
shortfall), a *strength*, or *unavailable* with the reason. The last column estimates how much of the gap
in wins per week the driver accounts for: the funnel (opportunities → first meetings → second meetings →
wins) splits the gap exactly; email volume and days between touches are estimated from how wins vary with
them across peers.
"""),
        code("pn.text.show(pn.text.driver_table(dx))"),
        code("display(Markdown(pn.text.driver_notes(dx)))"),
        md("""
## The funnel

Per week, for this rep and for the median peer: where do deals stop?
"""),
        code("pn.plots.show(pn.plots.funnel(dx.card, rep_id))"),
        md("""
## Dead opportunities

Open opportunities of this rep that have gone more than 14 days without a touch (the policy's standard), oldest
first: close them out or re-engage them.
"""),
        code("display(Markdown(pn.text.dead_opportunity_notes(dx)))"),
        code("pn.text.show(pn.text.dead_opportunity_table(dx))"),
        md("""
## Trends of the improvement areas

The rep's value over a trailing four weeks (red) against the peers' median (grey line) and middle half
(grey band), over the last six months.
"""),
        code("pn.plots.show(pn.plots.trend_grid(panel, rep_id, dx.improvement_areas or [\"win_rate\"],\n"
             "                                    peers=pn.peer_ids(dx.card, rep_id), since=dx.history_start))"),
        code("pn.outcome.record_outcome(pn.outcome.diagnosis_outcome(dx, data))", "remove-cell"),
        check("print(dx.improvement_areas)"),
    ], "Diagnosis")


def plan() -> NotebookNode:
    """The plan: targets, timeline, consequences, resources and coaching commitments."""
    return notebook([
        md("""
# Performance improvement plan

The second step: **targets for each improvement area, computed from the data**, a timeline with three review
checkpoints and a final review, the consequences if expectations are not met, the resources available and
the manager's coaching commitments. The plan is stored as a YAML file that the manager may edit; every later
review reads it.
"""),
        code(COMMON + '''
rep_id: str = ""  # rep the plan is for (required), e.g. R07
as_of: str = ""  # last day of the diagnosis window, YYYY-MM-DD; empty means the last day with data
start: str = ""  # first day of the plan, YYYY-MM-DD; empty means the day after the diagnosis window
plan_path: str = ""  # plan YAML to present; empty drafts one here from the diagnosis (nothing is written)''',
             "parameters"),
        code(IMPORTS),
        code(LOAD + "\nplan = pn.Plan.from_yaml(plan_path) if plan_path else pn.draft_plan(\n"
             "    pn.diagnose(data, rep_id, as_of=as_of or None, policy=policy, panel=panel),\n"
             "    start=start or None, policy=policy)"),
        md("## Overview"),
        code("display(Markdown(pn.text.plan_overview(plan)))"),
        md("""
## Improvement areas and why they matter

Each area is tied to a business outcome and documented with the numbers that show the shortfall.
"""),
        code("display(Markdown(pn.text.plan_areas(plan)))"),
        md("""
## Targets and the glide path

Each target states the rule that set it and the numbers it came from. A focus target is set only on an area
short of peers beyond noise, or by a standard of the policy that applies to every rep. The glide path moves in
equal steps from where it starts — the rep's level in the weeks before the diagnosis, or the target itself when
that level already met it — to the final target, so each checkpoint has its own, fair target.
"""),
        code("pn.text.show(pn.text.target_table(plan))"),
        code("pn.plots.show(pn.plots.trend_grid(\n"
             "    panel, plan.rep_id, [t.metric for t in plan.targets if t.focus] or [\"win_rate\"],\n"
             "    peers=pn.plan_peers(data, plan), plan=plan, since=plan.diagnosis_window.start))"),
        md("## Consequences, resources and coaching commitments"),
        code("display(Markdown(pn.text.plan_commitments(plan)))"),
        md("## Dead opportunities: an action by checkpoint 1"),
        code("display(Markdown(pn.text.dead_action(plan)))"),
        code("pn.text.show(pn.text.dead_action_table(plan))"),
        md("""
## The plan's history

Every signed step: who signed it, when and why. An extension names the plan's new end date.
"""),
        code("pn.text.show(pn.text.plan_history(plan))"),
        check("print([(t.metric, t.focus) for t in plan.targets])"),
    ], "Plan")


def review_cells(checkpoint: str) -> list[NotebookNode]:
    """The cells the checkpoint and the final reviews share; ``checkpoint`` is the parameter's default."""
    cells = [
        code(COMMON + '''
plan_path: str = ""  # plan YAML (params/plans/<rep>.yaml); empty uses the demo's responding rep
checkpoint: str = "{checkpoint}"  # a checkpoint number (1 .. the policy's count) or final''', "parameters"),
        code(IMPORTS),
        code(LOAD + "\nplan = pn.Plan.from_yaml(plan_path) if plan_path else pn.demo_plan(data)\n"
             "rv = pn.review(data, plan, checkpoint, panel=panel, policy=policy)"),
        code("if plan.reason:  # drafted though the diagnosis found no shortfall: every report says why\n"
             "    display(Markdown(pn.text.plan_reason(plan)))"),
        md("## Summary"),
        code("display(Markdown(pn.text.review_summary(rv)))"),
        code("if rv.events:  # signed plan events: the weeks a leave set aside, the metrics a change rebaselined\n"
             "    display(Markdown(pn.text.event_notes(rv)))"),
        md("""
## Actual against target

Every level comes with a 95% interval: one window's number can be luck. At a checkpoint, *since plan start*
pools every plan week so far and is held to what the glide path (from the baseline to the final target)
expects *on average* over those weeks. At the final review the status judges the **final target** itself, on
the last weeks (since the last checkpoint); whether the rep kept to the glide path over the plan is its own
column. A measure is **met** when the whole interval reaches the level asked for, **not met** when the whole
interval falls short, and **not yet clear** otherwise. A count with no event in a window says so, with its
exact upper limit. *Peers* is the peers' median over the same plan weeks.

The level asked for moves with the team: when the peers' level changed between the diagnosis window (where the
targets were set) and the weeks a status reads — a season, a bad quarter for everyone — the target moves by the
same change (a ratio for counts and days, an odds ratio for rates), and the rep's interval widens by that change's
uncertainty. The table keeps the plan's target and shows the peers' change and the target with it; the status,
and the recommendation, use the moved target, and the sentences above say both what the rep did and what the team
did.
"""),
        code("pn.text.show(pn.text.status_table(rv))"),
        md("""
## The rep's book of accounts

Volumes (opportunities, meetings, emails) fall when the rep works less, and also when the rep has fewer accounts
to work. Where the data carries account ids, the rep's distinct accounts over the plan so far are compared with the
weeks before the diagnosis window, beyond the change the peers show over the same weeks. When the book shrank beyond
noise, no consequence rests on a volume measure alone.
"""),
        code("display(Markdown(pn.text.book_summary(rv)))\npn.text.show(pn.text.book_table(rv))"),
        md("""
## Dead opportunities

The plan listed the rep's open opportunities untouched for more than 14 days at the diagnosis, to be closed out
or re-engaged by checkpoint 1. Still open and untouched since the plan start:
"""),
        code("display(Markdown(pn.text.dead_followup(rv, data)))"),
        md("""
## Did the rep really change?

Reps are put on a plan after a bad stretch, so part of any rebound is chance (*regression to the mean*). The
verdicts below compare the plan weeks with a baseline that did **not** select the rep (the weeks before the
diagnosis window), against what the peers did over the same weeks. Only the plan's improvement areas are
judged; the three checkpoints and the final review share one error budget, so an early checkpoint says
*improved* only for a very large change. The *decision range* beside a verdict is the one it was decided on:
*improved* or *worse* exactly when the whole range lies on one side of no change. The *change found 80% of the
time* is what this review would find four times in five, not a floor: a smaller true change is found less
often. When it is larger than the change the target asks for, the verdict is *too early to tell*, not
*no improvement*.
"""),
        code("pn.text.show(pn.text.verdict_table(rv))"),
        code("display(Markdown(pn.text.baseline_notes(rv)))"),
        code("display(Markdown(pn.text.verdict_notes(rv)))"),
        md("""
## What happened against what the baseline predicted

Dashed: what the baseline predicts without a change — the rep's baseline level moved week by week as the
peers moved (seasonality, quarter ends). Solid red:
what happened. Grey: the peers' median over the same weeks.
"""),
        code("pn.plots.show(pn.plots.counterfactual_grid(data, rv, panel=panel))"),
        md("""
## Weekly trends with the plan's checkpoints

The rep's trailing four-week value against the peers, with the plan start (solid line), the checkpoints
(dotted) and the glide path to the targets (blue dashes).
"""),
        code("pn.plots.show(pn.plots.trend_grid(panel, plan.rep_id, [t.metric for t in plan.targets],\n"
             "                                    peers=pn.plan_peers(data, plan), plan=plan,\n"
             "                                    since=plan.diagnosis_window.start))"),
    ]
    cells[0].source = cells[0].source.replace("{checkpoint}", checkpoint)
    return cells


def checkpoint() -> NotebookNode:
    """The checkpoint review: how the rep is doing against the plan, and is there evidence of a real change."""
    return notebook([
        md("""
# Checkpoint review

The third step: at each of the three checkpoints, **how is the rep doing against the plan**, measure by
measure, and is there evidence of a real change?
"""),
        *review_cells("1"),
        code("pn.outcome.record_outcome(pn.outcome.review_outcome(rv, panel, data))", "remove-cell"),
        check("print(rv.table[['metric', 'status']].to_string(index=False))"),
    ], "Checkpoint review")


def final_review() -> NotebookNode:
    """The final review: did the rep meet the plan, and the recommendation (complete, extend, consequences)."""
    shared = review_cells("final")
    return notebook([
        md("""
# Final review

The end of the plan: **did the rep meet it, and what should happen next?** The recommendation needs positive
evidence either way: *complete* when every improvement area reached its final target (the whole 95% interval of
the last weeks at or beyond it) or its plan-period level lies, whole interval, within the practical margin of
the peers' level or better; *consequences* only when an improvement area is below its final target and, over
the plan, below the peers by more than the margin, both beyond chance; otherwise *extend*, with the new end date.
"""),
        *shared[:5],       # the summary, then the conclusion
        md("## Recommendation"),
        code("display(Markdown(pn.text.recommendation(rv)))"),
        *shared[5:],
        code("pn.outcome.record_outcome(pn.outcome.review_outcome(rv, panel, data))", "remove-cell"),
        check('print(f"recommendation: {rv.recommendation}")', "pipnb-result"),
    ], "Final review")


#: The lifecycle notebooks: file name (in ``notebooks/``) -> the function that builds it.
NOTEBOOKS: dict[str, Callable[[], NotebookNode]] = {
    "00-team-scan.ipynb": team_scan,
    "10-diagnose.ipynb": diagnose,
    "20-plan.ipynb": plan,
    "30-checkpoint.ipynb": checkpoint,
    "40-final-review.ipynb": final_review,
}


def build() -> dict[str, NotebookNode]:
    """Every lifecycle notebook as :func:`main` writes it, in memory: validated, no outputs, nothing run.

    Returns
    -------
    dict
        File name (``10-diagnose.ipynb``) -> notebook.
    """
    built = {}
    for name, make in NOTEBOOKS.items():
        nb = make()
        nbformat.validate(nb)
        built[name] = nb
    return built


def example_parameters(path: Path) -> dict:
    """The parameters the stored outputs come from: the demo data of the checkout, and the article's rep."""
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params = {"data_source": str(ROOT / "data" / "demo")}
    if "rep_id:" in source:
        params["rep_id"] = EXAMPLE_REP
    return params


def store_checked_outputs(path: Path) -> None:
    """Run the notebook with its defaults and keep the outputs of its NBVAL_CHECK_OUTPUT cells only,
    so that ``pytest --nbval-lax notebooks/`` has the expected values to compare with."""
    import tempfile

    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        ran = papermill.execute_notebook(str(path), f"{tmp}/out.ipynb", cwd=str(ROOT), progress_bar=False,
                                         parameters=example_parameters(path))
    nb = nbformat.read(path, as_version=4)
    executed = [c for c in ran.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell, done in zip(nb.cells, executed, strict=True):
        if cell.cell_type == "code" and cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            cell.outputs = [o for o in done.outputs if o.get("output_type") == "stream"]
            cell.execution_count = done.execution_count  # nbval refuses outputs of an unrun cell
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> None:
    """Write every notebook to :data:`OUT`, then store the outputs of its checked cells (unless ``--no-outputs``)."""
    argv = sys.argv[1:] if argv is None else argv
    OUT.mkdir(exist_ok=True)
    for name, nb in build().items():
        nbformat.write(nb, OUT / name)
        if "--no-outputs" not in argv:
            store_checked_outputs(OUT / name)
        print("wrote", OUT / name)


if __name__ == "__main__":
    main()
