"""``pipnb verify [REP]``: are the plans, their signed histories and the frozen reports as pipnb signed and wrote them?

For each rep (every plan file under ``params/plans`` and every rep folder under ``reports``, or the one rep asked
for), :func:`verify` checks

* the **plan file**: that it can be read; its lock (the signature of the plan's whole text: an edit of any
  key, a lock recomputed or removed); the seal of its status and history; its **hash chain** (each signed step
  carries the previous step's signature, so a step edited, removed or inserted shows);
* the rep's **audit log** (``reports/<rep>/audit.jsonl``, :mod:`pipnb.record`): its own chain of lines, and that
  the plan file is the one last signed (an older copy put back, a history cut, a plan stripped back to a draft, a
  lock recomputed after a target was raised);
* the **frozen reports**: every executed notebook and HTML report pipnb recorded in the audit log still has the
  recorded SHA-256 (an outcome edited in ``final.ipynb``), and the files a close or a completion rests on still
  have the hashes the step recorded.

Signatures are plain SHA-256, or HMAC-SHA256 with ``PIPNB_SIGNING_KEY`` (from the environment; never stored,
printed or written): each ``ok`` line says which. A keyed signature checked without the key is a break ("cannot
verify signature"), never ``ok``. A plan locked before pipnb locked the whole text and chained its history is
``legacy lock, unchained`` (not a break); its next signed step chains it.

Each finding is a :class:`Finding`: the rep, the file, what broke (or ``ok ...``) and whether it is a break.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipnb.errors import PipnbError
from pipnb.lifecycle import chain_breaks
from pipnb.plan import Plan, audit_mismatch
from pipnb.record import (
    AUDIT,
    KEY_ENV,
    KEYED,
    PLAIN,
    audit_breaks,
    file_sha256,
    read_audit,
    read_record,
    recorded_state,
    signing_key,
    versions,
)
from pipnb.workdir import rep_info, safe_name

__all__ = ["Finding", "verify"]


@dataclass(frozen=True)
class Finding:
    """One line of ``pipnb verify``: whose, which file, what (a break, or ``ok ...``)."""

    rep: str
    file: str
    what: str
    broken: bool

    def __str__(self) -> str:
        return f"{self.rep}: {self.file}: {self.what}" if self.file else f"{self.rep}: {self.what}"


def verify(params: str | Path, reports: str | Path, rep_id: str | None = None) -> list[Finding]:
    """Every break of the plans, histories, audit logs and frozen reports of the working folder (or of one rep),
    and an ``ok`` line for each rep without one.

    Raises
    ------
    PipnbError
        ``rep_id`` names a rep with neither a plan file nor a reports folder.
    """
    params, reports = Path(params), Path(reports)
    plan_dir = params / "plans"
    reps: dict[str, tuple[Path | None, Path | None]] = {}
    for path in sorted(plan_dir.glob("*.yaml")) if plan_dir.is_dir() else []:
        reps[path.stem] = (path, None)
    for folder in sorted(p for p in reports.iterdir() if p.is_dir()) if reports.is_dir() else []:
        if (folder / AUDIT).is_file() or (folder / "rep.json").is_file():
            reps[folder.name] = (reps.get(folder.name, (None, None))[0], folder)
    if rep_id is not None:
        name = safe_name(rep_id)
        if name not in reps:
            raise PipnbError(f"no plan and no reports for {rep_id} (looked in {plan_dir} and {reports})")
        reps = {name: reps[name]}
    out: list[Finding] = []
    for name, (plan_file, folder) in reps.items():
        folder = folder or (reports / name)
        out += _rep(name, plan_file, folder)
    return out


def _rep(name: str, plan_file: Path | None, folder: Path) -> list[Finding]:
    info = rep_info(folder) or {}
    who = info.get("rep_id", name)
    log = read_audit(folder)
    breaks = audit_breaks(log)
    unchecked = [b for b in breaks if "cannot verify" in b or "another key, or edited" in b]
    found = [Finding(who, _shown(folder / AUDIT), f"audit log: {b}", True) for b in breaks if b not in unchecked]
    if unchecked:                 # one line for the lines a missing or another key cannot check
        what = "cannot verify signature" if signing_key() is None else f"signatures do not match {KEY_ENV}"
        lines = f"{len(unchecked)} line{'s' if len(unchecked) != 1 else ''}"
        found.append(Finding(who, _shown(folder / AUDIT), f"audit log: {lines} signed with a key: {what}", True))
    how = "no plan"
    if plan_file is not None:
        try:
            plan = Plan.from_yaml(plan_file)
        except (PipnbError, RecursionError, MemoryError) as err:
            return [*found, Finding(who, _shown(plan_file), f"cannot be read: {str(err)[:200]}", True)]
        who = plan.rep_id
        if plan_file.stem != safe_name(plan.rep_id):      # a backup copy: reviews never read it either
            return [*found, Finding(who, _shown(plan_file), f"a copy of the plan of {plan.rep_id}, not its plan file "
                                    f"({safe_name(plan.rep_id)}.yaml): not checked", False)]
        plan_found, how = _plan(plan, plan_file, folder, log)
        found += plan_found
    found += _reports(who, folder, log)
    if not any(f.broken for f in found):
        found.append(Finding(who, "", f"ok ({how})", False))
    return found


def _plan(plan: Plan, path: Path, folder: Path, log: list[dict]) -> tuple[list[Finding], str]:
    """The breaks of a plan file, and how it is signed in words (for its ``ok`` line)."""
    shown = _shown(path)
    out = []

    def broke(what: str) -> None:
        out.append(Finding(plan.rep_id, shown, what, True))

    lock = plan.lock
    keyed = lock is not None and lock.how() == KEYED
    wrong_key = keyed and signing_key() is not None and lock.signature() == "bad"
    if keyed and signing_key() is None:
        broke(f"signed with {KEY_ENV} (hmac-sha256): cannot verify signature ({KEY_ENV} is not set)")
    elif wrong_key:
        broke(f"its signatures do not match {KEY_ENV} (hmac-sha256): signed with another key, or edited")
    elif lock is not None and lock.signature() == "bad":
        broke("the lock's hash does not match its terms: the lock was edited")
    edit = plan.edits()
    repeated = ("its lock was edited", "its history was edited by hand")      # named by the lines below
    if edit is not None and not edit.startswith(repeated) and not (wrong_key and "by hand" in edit):
        broke(f"edited after it was locked: {edit}")
    for what in chain_breaks(plan.history):
        unchecked = "cannot verify" in what or (wrong_key and "signature does not match" in what)
        if not unchecked:
            broke(f"history: {what}")
    locking = plan.signed_activation()
    if lock is not None and locking is not None and locking.hash and locking.lock != lock.sha256[:12]:
        broke(f"the lock was recomputed: its signature is not the one its {locking.status} step of {locking.date} "
              f"recorded ({locking.lock} ≠ {lock.sha256[:12]})")
    mismatch = audit_mismatch(plan, log, folder)
    if mismatch:
        broke(mismatch)
    steps = [line for line in log if line.get("kind") == "step" and line.get("rep_id") == plan.rep_id]
    recomputed = any("the lock was recomputed" in f.what for f in out)
    if steps and lock is not None and steps[-1].get("lock") not in (None, lock.sha256) and not mismatch \
            and not recomputed:
        broke(f"the lock was recomputed: the audit log recorded lock {str(steps[-1].get('lock'))[:12]} at the last "
              f"step, the file holds {lock.sha256[:12]}")
    if any(h.hash for h in plan.history) and not steps:
        broke(f"its history is chained but {_shown(folder / AUDIT)} records none of its steps (the audit log was "
              "removed, or the plan was signed with another reports folder)")
    for entry in plan.history:
        for name, digest in entry.reports.items():
            file = folder / name
            if not file.is_file():
                broke(f"{name}, which the {entry.status} step of {entry.date} rests on, is missing")
            elif file_sha256(file) != digest:
                broke(f"{name} is not the file the {entry.status} step of {entry.date} rests on (its hash changed)")
    if lock is None:
        how = plan.status if plan.history else "draft, not signed"
    elif not lock.scheme:
        how = "legacy lock, unchained"
    else:
        chained = len([h for h in plan.history if h.hash])
        how = f"{plan.status}, {chained} chained step{'s' if chained != 1 else ''}, " + (
            "hmac-sha256" if lock.how() == KEYED else f"{PLAIN}, unkeyed")
    return out, how


def _reports(who: str, folder: Path, log: list[dict]) -> list[Finding]:
    """The breaks of a rep's reports: a recorded file missing or changed, a review notebook written after the
    audit log began but never recorded."""
    out = []
    recorded: dict[str, str] = {}
    for line in log:
        if line.get("kind") == "report" and isinstance(line.get("file"), str):
            recorded[line["file"]] = str(line.get("sha256", ""))
    for name, digest in recorded.items():
        file = folder / name
        if "/" in name or name.startswith("."):
            out.append(Finding(who, _shown(folder / AUDIT), f"records a file outside the folder ({name[:60]})", True))
        elif not file.is_file():
            out.append(Finding(who, _shown(file), "missing (the audit log recorded it as written)", True))
        elif file_sha256(file) != digest:
            what = "edited after it was written (its SHA-256 is not the one recorded)"
            if file.suffix == ".ipynb":
                what += "; its outcome is not trusted"
            out.append(Finding(who, _shown(file), what, True))
    for base in sorted({p.name.split(".")[0] for p in folder.glob("*.ipynb")}) if folder.is_dir() else []:
        for v in versions(folder / base):
            record = read_record(v.ipynb) if v.ipynb.is_file() else None
            if v.ipynb.name in recorded or record is None or not record.ok:
                continue
            if recorded_state(v.ipynb, record.written_at) == "unrecorded":
                out.append(Finding(who, _shown(v.ipynb), "not recorded in the audit log, though written after it "
                                   "began (a line was removed, or the file was put there by hand)", True))
    return out


def _shown(path: Path) -> str:
    """A path as a line shows it: relative to the current folder when under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)

