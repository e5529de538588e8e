"""The lifecycle's stages as batch jobs: which notebook, which parameters, which report paths.

This module only *describes* work (pure functions returning :class:`pipnb.runner.Job` lists and the
files a batch shares); :mod:`pipnb.runner` executes it. Paths are built with :func:`rep_dir`, so a rep
id can never point outside ``reports/`` or ``params/plans/``.
"""

from __future__ import annotations

import glob
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipnb.data import SalesData
from pipnb.errors import PipnbError, PlanError
from pipnb.io import atomic_path
from pipnb.plan import Plan, Policy

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {
    "scan": "00-team-scan.ipynb", "diagnose": "10-diagnose.ipynb", "plan": "20-plan.ipynb",
    "checkpoint": "30-checkpoint.ipynb", "final": "40-final-review.ipynb",
}
STAGES = ("scan", "diagnose", "plan", "checkpoint-1", "checkpoint-2", "checkpoint-3", "final")
STAGE_TITLES = {"scan": "Team scan", "diagnose": "Diagnosis", "plan": "Performance improvement plan",
                "checkpoint-1": "Checkpoint 1 review", "checkpoint-2": "Checkpoint 2 review",
                "checkpoint-3": "Checkpoint 3 review", "final": "Final review"}
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def safe_name(rep_id: str) -> str:
    """A file-system name for a rep id: the id itself when it is plain, else a readable slug plus a hash.

    The result never contains a path separator or ``..``, so it cannot leave its folder.
    """
    text = str(rep_id)
    if _SAFE.match(text) and ".." not in text:
        return text
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "rep"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def rep_dir(root: Path, rep_id: str) -> Path:
    """``root/<safe rep name>``, checked to be inside ``root``."""
    root = Path(root).resolve()
    path = (root / safe_name(rep_id)).resolve()
    if path.parent != root:
        raise PipnbError(f"rep id {rep_id!r} cannot be used as a folder name")
    return path


def plan_path(params: Path, rep_id: str) -> Path:
    """Where a rep's plan YAML lives: ``params/plans/<rep>.yaml``."""
    plans = (Path(params) / "plans").resolve()
    return plans / f"{safe_name(rep_id)}.yaml"


@dataclass(frozen=True)
class Batch:
    """What every job of one batch shares.

    Attributes
    ----------
    data
        The loaded data (validated once per batch).
    source
        What the notebooks load: a validated Parquet snapshot of the data (written once per batch, read
        back without validating again).
    panel_path
        The weekly panel computed once per batch and handed to every notebook as a Parquet path.
    """

    data: SalesData
    source: str
    panel: pd.DataFrame
    panel_path: Path
    reports: Path
    params: Path
    policy_path: Path
    policy: Policy

    @property
    def fingerprint(self) -> str:
        policy_hash = hashlib.sha256(self.policy_path.read_bytes()).hexdigest()[:12]
        return f"{self.data.fingerprint()}-{policy_hash}"


def prepare(source: str, *, reports: str | Path = "reports", params: str | Path = "params",
            policy: str | Path | None = None) -> Batch:
    """Load and validate the data, compute the weekly panel once and save it for the notebooks."""
    from pipnb.metrics import weekly_panel
    from pipnb.sources import load

    data = load(source)
    reports, params = Path(reports).resolve(), Path(params).resolve()
    policy_path = Path(policy).resolve() if policy else params / "policy.yaml"
    if not policy_path.is_file():
        policy_path = ROOT / "params" / "policy.yaml"
    rules = Policy.from_yaml(policy_path)
    panel = weekly_panel(data)
    cache = reports / ".batch"
    panel_path = cache / f"panel-{data.fingerprint()}.parquet"
    if not panel_path.exists():
        write_panel(panel, panel_path)
    snapshot = cache / f"data-{data.fingerprint()}"
    if not (snapshot / "snapshot.json").exists():
        data.write_snapshot(snapshot)
    return Batch(data=data, source=str(snapshot), panel=panel, panel_path=panel_path, reports=reports,
                 params=params, policy_path=policy_path, policy=rules)


def write_panel(panel: pd.DataFrame, path: Path) -> Path:
    """Save a weekly panel as Parquet, atomically."""
    with atomic_path(path) as tmp:
        panel.to_parquet(tmp, index=False)
    return path


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read a weekly panel saved by a batch run."""
    return pd.read_parquet(path)


# -- jobs ---------------------------------------------------------------------------------------
def _job(batch: Batch, notebook: str, out: Path, parameters: dict, header: dict, label: str,
         extra_fingerprint: str = ""):
    from pipnb.runner import Job

    params = {"data_source": batch.source, "panel_path": str(batch.panel_path),
              "policy_path": str(batch.policy_path), **parameters}
    return Job(notebook=ROOT / "notebooks" / notebook, output_ipynb=out.with_suffix(".ipynb"),
               output_html=out.with_suffix(".html"), parameters=params, header=header, label=label,
               cwd=ROOT / "notebooks", fingerprint=batch.fingerprint + extra_fingerprint)


def scan_job(batch: Batch, *, as_of: str = "", weeks: int = 12):
    as_of = as_of or f"{batch.data.period[1]:%Y-%m-%d}"
    header = {"stage": "Team scan", "as_of": as_of, "title": "Team scan",
              "audience": "sales managers and sales operations"}
    return _job(batch, NOTEBOOKS["scan"], batch.reports / "team-scan",
                {"as_of": as_of, "weeks": weeks, "peer_by": batch.policy.peer_by}, header, "team scan")


def diagnose_jobs(batch: Batch, rep_ids: list[str], *, as_of: str = ""):
    as_of = as_of or f"{batch.data.period[1]:%Y-%m-%d}"
    jobs = []
    for rep_id in rep_ids:
        rep = batch.data.rep(rep_id)
        remember_rep(batch, rep_id)
        header = {"rep_name": rep["rep_name"], "team": rep["team"], "stage": STAGE_TITLES["diagnose"],
                  "as_of": as_of}
        jobs.append(_job(batch, NOTEBOOKS["diagnose"], rep_dir(batch.reports, rep_id) / "diagnose",
                         {"rep_id": str(rep_id), "as_of": as_of, "weeks": batch.policy.diagnosis_weeks},
                         header, f"{rep_id} diagnose"))
    return jobs


def draft_plans(batch: Batch, rep_ids: list[str], *, as_of: str = "", start: str = "",
                force: bool = False) -> list[Path]:
    """Draft and write ``params/plans/<rep>.yaml`` for each rep (in-process; fast).

    An existing plan is kept unless it is still a draft and ``force`` is set, so a manager's edits and a
    plan that is already active are never overwritten.
    """
    from pipnb.diagnose import diagnose
    from pipnb.plan import draft_plan

    paths = []
    for rep_id in rep_ids:
        path = plan_path(batch.params, rep_id)
        if path.exists():
            existing = Plan.from_yaml(path)
            if existing.status != "draft" or not force:
                paths.append(path)
                continue
        dx = diagnose(batch.data, rep_id, as_of=as_of or None, weeks=batch.policy.diagnosis_weeks,
                      peer_by=batch.policy.peer_by, win_rate_basis=batch.policy.win_rate_basis,
                      panel=batch.panel)
        draft_plan(dx, start=start or None, policy=batch.policy).to_yaml(path)
        paths.append(path)
    return paths


def plan_jobs(batch: Batch, plan_paths: list[Path]):
    jobs = []
    for path in plan_paths:
        plan = Plan.from_yaml(path)
        remember_rep(batch, plan.rep_id)
        header = {"rep_name": plan.rep_name, "team": plan.team, "stage": STAGE_TITLES["plan"],
                  "as_of": f"{plan.diagnosis_window.end}", "plan_period": f"{plan.start} to {plan.end}"}
        jobs.append(_job(batch, NOTEBOOKS["plan"], rep_dir(batch.reports, plan.rep_id) / "plan",
                         {"rep_id": plan.rep_id, "plan_path": str(path)}, header, f"{plan.rep_id} plan",
                         _file_hash(path)))
    return jobs


def review_jobs(batch: Batch, plan_paths: list[Path], stage: str):
    """Jobs for ``checkpoint-N`` or ``final`` over the given plans."""
    checkpoint = "final" if stage == "final" else stage.rsplit("-", 1)[1]
    notebook = NOTEBOOKS["final" if stage == "final" else "checkpoint"]
    jobs = []
    for path in plan_paths:
        plan = Plan.from_yaml(path)
        if stage not in plan.stages():
            raise PlanError(f"the plan has no {stage} (its stages: {', '.join(plan.stages())})", file=str(path))
        remember_rep(batch, plan.rep_id)
        header = {"rep_name": plan.rep_name, "team": plan.team, "stage": STAGE_TITLES[stage],
                  "as_of": f"{plan.checkpoint_dates()[stage]}", "plan_period": f"{plan.start} to {plan.end}"}
        jobs.append(_job(batch, notebook, rep_dir(batch.reports, plan.rep_id) / stage,
                         {"plan_path": str(path), "checkpoint": checkpoint}, header, f"{plan.rep_id} {stage}",
                         _file_hash(path)))
    return jobs


def find_plans(batch: Batch, *, pattern: str | None = None, rep_ids: list[str] | None = None) -> list[Path]:
    """Plan YAMLs by glob (``--plans``), by rep id (``--reps``), or every plan under ``params/plans``."""
    if rep_ids:
        paths = [plan_path(batch.params, r) for r in rep_ids]
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise PlanError("no plan yet; draft it with `pipnb plan` or `pipnb run --stage plan`",
                            file=str(missing[0]))
        return paths
    found = sorted(Path(p) for p in glob.glob(pattern or str(batch.params / "plans" / "*.yaml")))
    if not found:
        raise PlanError(f"no plan YAML matches {pattern or batch.params / 'plans' / '*.yaml'}")
    return found


def _file_hash(path: Path) -> str:
    return "-" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


# -- index --------------------------------------------------------------------------------------
def remember_rep(batch: Batch, rep_id: str) -> None:
    """Record the rep's display name beside their reports, for the index."""
    import json

    from pipnb.io import atomic_write_text

    rep = batch.data.rep(rep_id)
    folder = rep_dir(batch.reports, rep_id)
    atomic_write_text(folder / "rep.json", json.dumps({"rep_id": str(rep_id), "rep_name": str(rep["rep_name"]),
                                                       "team": str(rep["team"])}))


def index_entries(reports: Path, params: Path, results=()) -> list:
    """Every report under ``reports/`` with its status; stages a plan expects but lacks are *missing*."""
    import json

    from pipnb.report import IndexEntry

    by_path = {Path(r.job.output_ipynb).resolve(): r for r in results}
    entries = []
    scan = reports / "team-scan.html"
    if scan.exists() or (reports / "team-scan.ipynb").exists():
        entries.append(_entry("", "scan", reports / "team-scan", by_path))
    plans = {}
    plan_dir = Path(params) / "plans"
    for path in sorted(plan_dir.glob("*.yaml")) if plan_dir.is_dir() else []:
        try:
            plan = Plan.from_yaml(path)
        except PipnbError:
            continue
        plans[safe_name(plan.rep_id)] = plan
    folders = sorted(p for p in Path(reports).iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if Path(reports).is_dir() else []
    for folder in folders:
        meta = folder / "rep.json"
        info = json.loads(meta.read_text()) if meta.exists() else {"rep_id": folder.name, "rep_name": folder.name}
        who = f"{info['rep_name']} ({info['rep_id']})"
        plan = plans.get(folder.name)
        wanted = ["diagnose", "plan", *(plan.stages() if plan is not None and plan.status != "draft" else [])]
        for stage in [s for s in STAGES if s != "scan"]:
            base = folder / stage
            if stage in wanted or base.with_suffix(".ipynb").exists():
                entry = _entry(who, stage, base, by_path)
                if stage == "plan" and plan is not None and entry.status == "ok":
                    entry = IndexEntry(who, stage, "ok", entry.path, f"plan status: {plan.status}")
                entries.append(entry)
    return entries


def _entry(who: str, stage: str, base: Path, by_path: dict):
    import json

    from pipnb.report import IndexEntry

    html, ipynb = base.with_suffix(".html"), base.with_suffix(".ipynb")
    result = by_path.get(ipynb.resolve())
    if result is not None and result.status == "failed":
        return IndexEntry(who, stage, "failed", ipynb if ipynb.exists() else None, result.error)
    if result is not None and result.status == "skipped" and html.exists():
        return IndexEntry(who, stage, "ok", html, _result_line(ipynb) or "up to date")
    if html.exists():
        return IndexEntry(who, stage, "ok", html, _result_line(ipynb))
    if ipynb.exists():
        status = json.loads(ipynb.read_text(encoding="utf-8")).get("metadata", {}).get("pipnb", {}).get("status")
        return IndexEntry(who, stage, "failed" if status == "failed" else "missing", ipynb,
                          "the executed notebook is kept for inspection")
    return IndexEntry(who, stage, "missing", None, "not run yet")


def _result_line(ipynb: Path) -> str:
    """The printed line of the executed notebook's cell tagged ``pipnb-result`` (e.g. the final review's
    recommendation), or ""."""
    import json

    try:
        cells = json.loads(ipynb.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    for cell in cells:
        if "pipnb-result" in cell.get("metadata", {}).get("tags", []):
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("name") == "stdout")
            return text.strip().splitlines()[0] if text.strip() else ""
    return ""


def write_index(reports: Path, params: Path, results=()) -> Path:
    from pipnb.report import write_index as write_page

    return write_page(index_entries(Path(reports), Path(params), results), Path(reports) / "index.html",
                      title="pipnb — performance improvement plans",
                      header={"audience": "sales managers and HR partners"})


# -- the demo lifecycle -------------------------------------------------------------------------
def demo_jobs(batch: Batch, *, force: bool = False) -> list:
    """Every job of the demo: scan, diagnosis and plan of each flagged rep, and the whole review cycle
    of the two reps whose plans started 12 weeks before the data ends."""
    from pipnb.demo import DEMO_CASES, demo_plan_start
    from pipnb.diagnose import diagnose
    from pipnb.peers import scorecard
    from pipnb.plan import draft_plan
    from pipnb.scan import flagged_reps

    start = demo_plan_start(f"{batch.data.period[1]:%Y-%m-%d}")
    active = [DEMO_CASES["responder"], DEMO_CASES["non_responder"]]
    for rep_id in active:
        path = plan_path(batch.params, rep_id)
        if path.exists() and not force:
            continue
        dx = diagnose(batch.data, rep_id, as_of=start - pd.Timedelta(days=1), weeks=batch.policy.diagnosis_weeks,
                      peer_by=batch.policy.peer_by, win_rate_basis=batch.policy.win_rate_basis, panel=batch.panel)
        plan = draft_plan(dx, start=start, policy=batch.policy)
        plan.with_status("active", on=start.date(), note="agreed with the rep at the plan meeting").to_yaml(path)
    card = scorecard(batch.data, weeks=batch.policy.diagnosis_weeks, peer_by=batch.policy.peer_by,
                     win_rate_basis=batch.policy.win_rate_basis, panel=batch.panel)
    flagged = [r for r in flagged_reps(card, plan_metrics_only=True) if r not in active]
    plans = draft_plans(batch, flagged, force=force) + [plan_path(batch.params, r) for r in active]
    before = f"{start - pd.Timedelta(days=1):%Y-%m-%d}"
    jobs = [scan_job(batch), *diagnose_jobs(batch, flagged), *diagnose_jobs(batch, active, as_of=before),
            *plan_jobs(batch, plans)]
    for stage in ("checkpoint-1", "checkpoint-2", "checkpoint-3", "final"):
        jobs += review_jobs(batch, [plan_path(batch.params, r) for r in active], stage)
    return jobs


def demo_plan(data: SalesData, case: str = "responder") -> Plan:
    """The demo's active plan for ``case`` ("responder" or "non_responder"), drafted in memory.

    What the review notebooks use when they are opened with their defaults (no plan file yet).
    """
    from pipnb.demo import DEMO_CASES, demo_plan_start
    from pipnb.diagnose import diagnose
    from pipnb.plan import DEFAULT_POLICY, draft_plan

    policy = Policy.from_yaml(DEFAULT_POLICY)
    start = demo_plan_start(f"{data.period[1]:%Y-%m-%d}")
    dx = diagnose(data, DEMO_CASES[case], as_of=start - pd.Timedelta(days=1), weeks=policy.diagnosis_weeks,
                  peer_by=policy.peer_by, win_rate_basis=policy.win_rate_basis)
    return draft_plan(dx, start=start, policy=policy).with_status("active", on=start.date())
