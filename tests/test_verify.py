"""Tamper-evident plans and ``pipnb verify`` (issue 24, item 4): each tampering the issue found is its own test,
through the real command line, checking the exact line ``pipnb verify`` prints and its exit code 2; a clean
lifecycle verifies with exit 0.

One working folder is built once (the demo data, R14's plan activated and acknowledged with ``pipnb plan``, its
final review written with ``pipnb review``); each test tampers with a copy of it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cliproc import pipnb

import pipnb as pn
from pipnb.dashboard import dashboard
from pipnb.demo import DEMO_CASES, demo_plan_start
from pipnb.fingerprint import fingerprint_until
from pipnb.lifecycle import SHOWN, HistoryEntry, Lock
from pipnb.locks import LockedError, lock_file
from pipnb.plan import Plan
from pipnb.record import KEY_ENV, append_audit, audit_breaks, file_sha256, read_audit

REP = DEMO_CASES["non_responder"]
PLAN = f"params/plans/{REP}.yaml"
TODAY = dt.date.today()
REVIEW = ["review", "--data", "data/demo", "--plan", PLAN, "--checkpoint", "final"]


def cli(cwd: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    """``pipnb ARGS`` in ``cwd``; with ``key`` as the signing key, else without any."""
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if key is not None:
        env[KEY_ENV] = key
    return pipnb(*args, cwd=cwd, env=env)


def verify(cwd: Path, *args: str, key: str | None = None) -> list[str]:
    """The lines of ``pipnb verify``, checked to end with exit 2 (a break) and no traceback."""
    result = cli(cwd, "verify", *args, key=key)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    return result.stdout.splitlines()


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: ")
    return line


def short(text: str) -> str:
    """A value as a changed line shows it (pipnb.lifecycle: at most SHOWN characters)."""
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


@pytest.fixture(scope="module")
def base(tmp_path_factory, demo, demo_panel) -> Path:
    root = tmp_path_factory.mktemp("verify")
    demo.write(root / "data" / "demo")
    start = demo_plan_start()
    plan = pn.draft_plan(pn.diagnose(demo, REP, as_of=start - dt.timedelta(days=1), panel=demo_panel), start=start)
    plan = plan.model_copy(update={"data_fingerprint": fingerprint_until(demo, plan.diagnosis_window.end)})
    plan.to_yaml(root / PLAN)
    for step in (["activate", REP, "--by", "Ann Lee"], ["acknowledge", REP, "--by", "Dana Rep"]):
        assert cli(root, "plan", *step).returncode == 0
    final = cli(root, *REVIEW)
    assert final.returncode == 0, final.stdout + final.stderr
    return root


@pytest.fixture
def work(base, tmp_path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "work"))


def edit_plan(work: Path, change) -> dict:
    """Edit the plan file by hand as YAML; returns the raw plan before the edit."""
    raw = yaml.safe_load((work / PLAN).read_text())
    before = json.loads(json.dumps(raw))
    change(raw)
    (work / PLAN).write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return before


# -- a clean lifecycle ---------------------------------------------------------------------------------------
def test_a_clean_lifecycle_verifies_and_its_completion_rests_on_the_final_review(work):
    clean = cli(work, "verify")
    assert (clean.returncode, clean.stdout) == (0, f"{REP}: ok (acknowledged, 2 chained steps, sha256, unkeyed)\n")
    assert cli(work, "plan", "complete", REP, "--by", "Kim HR").returncode == 0
    done = cli(work, "verify", REP)
    assert (done.returncode, done.stdout) == (0, f"{REP}: ok (completed, 3 chained steps, sha256, unkeyed)\n")
    entry = Plan.from_yaml(work / PLAN).history[-1]
    folder = work / "reports" / REP
    assert set(entry.reports) == {"final.ipynb", "final.html"}
    assert entry.reports["final.ipynb"] == file_sha256(folder / "final.ipynb")
    steps = [line["action"] for line in read_audit(folder) if line["kind"] == "step"]
    assert steps == ["activate", "acknowledge", "complete"] and audit_breaks(read_audit(folder)) == []


# -- the whole text of an active plan is locked ------------------------------------------------------------
def test_edited_consequences_are_named_and_refused_even_with_force(work):
    before = edit_plan(work, lambda raw: raw.update(consequences=["IMMEDIATE-DISMISSAL-WITHOUT-APPEAL"]))
    assert verify(work) == [f"{REP}: {PLAN}: edited after it was locked: consequences[1] "
                            f"{short(before['consequences'][0])} → IMMEDIATE-DISMISSAL-WITHOUT-APPEAL"]
    written = sorted(p.name for p in (work / "reports" / REP).iterdir())
    forced = one_error_line(cli(work, *REVIEW, "--force"))
    assert "was edited after it was locked" in forced and "consequences[1]" in forced
    assert sorted(p.name for p in (work / "reports" / REP).iterdir()) == written       # nothing printed as the plan


def test_an_edited_rep_name_is_named(work):
    before = edit_plan(work, lambda raw: raw.update(rep_name="Someone Else"))
    assert verify(work) == [f"{REP}: {PLAN}: edited after it was locked: rep_name {before['rep_name']} → "
                            "Someone Else"]


def test_a_lock_recomputed_after_raising_a_target_is_detected(work):
    plan = Plan.from_yaml(work / PLAN)
    raised = plan.targets[0].model_copy(update={"target": plan.targets[0].target * 1.5})
    plan = plan.model_copy(update={"targets": [raised, *plan.targets[1:]]})
    terms = plan.terms()
    lock = plan.lock.model_copy(update={"terms": terms, "sha256": Lock.digest(terms, plan.lock.on, plan.lock.by)})
    plan.model_copy(update={"lock": lock}).to_yaml(work / PLAN)
    old = Plan.from_yaml(work / PLAN).signed_activation().lock
    assert verify(work) == [f"{REP}: {PLAN}: the lock was recomputed: its signature is not the one its active step "
                            f"of {TODAY} recorded ({old} ≠ {lock.sha256[:12]})"]


# -- the history is a hash chain, anchored in the rep's audit log ------------------------------------------
def test_an_older_acknowledged_file_replayed_after_close_is_detected_and_cannot_be_completed(work):
    acknowledged = (work / PLAN).read_text()
    assert cli(work, "plan", "close", REP, "--by", "Kim HR").returncode == 0
    (work / PLAN).write_text(acknowledged)
    line = (f"the plan file is an older copy, or its history was cut: reports/{REP}/audit.jsonl records 3 signed "
            f"steps, the last close (not-completed) on {TODAY} by Kim HR; its history ends with acknowledged on "
            f"{TODAY}")
    assert verify(work) == [f"{REP}: {PLAN}: {line}"]
    refused = one_error_line(cli(work, "plan", "complete", REP, "--by", "Kim HR"))
    assert line in refused and "put the last signed file back" in refused


def test_a_truncated_history_is_detected(work):
    plan = Plan.from_yaml(work / PLAN)
    history = plan.history[:-1]                      # the acknowledgement cut, the seal recomputed
    lock = plan.lock.model_copy(update={"record": Lock.seal(history[-1].status, history)})
    plan.model_copy(update={"history": history, "status": history[-1].status, "lock": lock}).to_yaml(work / PLAN)
    assert verify(work) == [f"{REP}: {PLAN}: the plan file is an older copy, or its history was cut: reports/{REP}/"
                            f"audit.jsonl records 2 signed steps, the last acknowledge (acknowledged) on {TODAY} by "
                            f"Dana Rep; its history ends with active on {TODAY}"]


def test_an_edited_step_breaks_the_chain(work):
    edit_plan(work, lambda raw: raw["history"][-1].update(by="Someone Else"))
    lines = verify(work)
    assert f"{REP}: {PLAN}: history: step 3 (acknowledged on {TODAY}) was edited (its hash does not match)" in lines


def test_a_plan_stripped_to_a_draft_is_detected_and_reactivation_needs_a_note(work):
    edit_plan(work, lambda raw: (raw.pop("lock"), raw.update(history=[], status="draft")))
    stripped = (f"the plan file was stripped back to a draft: reports/{REP}/audit.jsonl records 2 signed steps, the "
                f"last acknowledge (acknowledged) on {TODAY} by Dana Rep")
    assert verify(work) == [f"{REP}: {PLAN}: {stripped}"]
    refused = one_error_line(cli(work, "plan", "activate", REP, "--by", "Ann Lee"))
    assert "was activated before: say why it is re-activated with --note" in refused and stripped in refused
    again = cli(work, "plan", "activate", REP, "--by", "Ann Lee", "--note", "the file was restored by hand")
    assert again.returncode == 0, again.stderr
    assert stripped in Plan.from_yaml(work / PLAN).history[-1].note
    assert cli(work, "verify").stdout == f"{REP}: ok (active, 1 chained step, sha256, unkeyed)\n"


def test_a_removed_audit_line_breaks_the_log(work):
    log = work / "reports" / REP / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert f"{REP}: reports/{REP}/audit.jsonl: audit log: line 2 does not follow line 1 (a line was removed, added " \
           "or reordered)" in verify(work)


# -- an outcome is trusted only when its notebook matches what was recorded --------------------------------
def test_an_outcome_edited_in_the_final_notebook_is_not_believed(work):
    reports, params = work / "reports", work / "params"
    [row] = dashboard(reports, params).plans
    assert any(m.status == "not met" for m in row.measures)
    notebook = reports / REP / "final.ipynb"
    nb = json.loads(notebook.read_text())
    outcome = nb["metadata"]["pipnb"]["outcome"]
    outcome["recommendation"] = "complete"
    for measure in outcome["measures"]:
        measure["status"] = "met"
    notebook.write_text(json.dumps(nb))
    assert verify(work) == [f"{REP}: reports/{REP}/final.ipynb: edited after it was written (its SHA-256 is not the "
                            "one recorded); its outcome is not trusted"]
    [edited] = dashboard(reports, params).plans
    assert not any(m.status == "met" for m in edited.measures) and edited.decision != "completion recommended"
    assert edited.latest.startswith("Final review: its notebook was edited after it was written")
    assert "edited after it was written" in one_error_line(cli(work, "plan", "complete", REP, "--by", "Kim HR"))
    rerun = cli(work, *REVIEW)                 # never "up to date": a new version is written beside it
    assert rerun.returncode == 0 and "1 ok" in rerun.stdout, rerun.stdout + rerun.stderr
    assert (reports / REP / "final.v2.ipynb").is_file() and notebook.read_text() == json.dumps(nb)


# -- the signing key -----------------------------------------------------------------------------------------
def test_a_signing_key_present_absent_or_wrong(work):
    secret = "s3cret-signing-key"
    signed = cli(work, "plan", "activate", REP, "--by", "Ann Lee", "--note", "signed with the key", key=secret)
    assert signed.returncode == 0 and "(hmac-sha256 " in signed.stdout, signed.stderr
    ok = cli(work, "verify", key=secret)
    assert (ok.returncode, ok.stdout) == (0, f"{REP}: ok (active, 3 chained steps, hmac-sha256)\n")
    assert verify(work) == [
        f"{REP}: reports/{REP}/audit.jsonl: audit log: 1 line signed with a key: cannot verify signature",
        f"{REP}: {PLAN}: signed with {KEY_ENV} (hmac-sha256): cannot verify signature ({KEY_ENV} is not set)"]
    assert verify(work, key="another key") == [
        f"{REP}: reports/{REP}/audit.jsonl: audit log: 1 line signed with a key: signatures do not match {KEY_ENV}",
        f"{REP}: {PLAN}: its signatures do not match {KEY_ENV} (hmac-sha256): signed with another key, or edited"]
    # recomputing the lock without the key is caught
    plan = Plan.from_yaml(work / PLAN)
    terms = {**plan.terms(), "consequences": ["IMMEDIATE-DISMISSAL"]}
    forged = plan.lock.model_copy(update={"terms": terms, "sha256": Lock.digest(terms, plan.lock.on, plan.lock.by)})
    plan.model_copy(update={"consequences": ["IMMEDIATE-DISMISSAL"], "lock": forged}).to_yaml(work / PLAN)
    assert f"{REP}: {PLAN}: its signatures do not match {KEY_ENV} (hmac-sha256): signed with another key, or " \
           "edited" in verify(work, key=secret)
    # the key is never stored or printed
    for path in work.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".jsonl", ".json", ".ipynb", ".html", ".holder"):
            assert secret not in path.read_text(errors="replace"), path
    assert secret not in signed.stdout + signed.stderr + ok.stdout + ok.stderr
    refused = cli(work, "plan", "acknowledge", REP, "--by", "Dana Rep")       # no key: a keyed plan is not signed on
    assert f"signed with {KEY_ENV}: set it" in one_error_line(refused) and secret not in refused.stderr


def test_with_a_key_a_line_forged_without_it_cannot_bless_an_edited_outcome(work, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert cli(work, "plan", "activate", REP, "--by", "Ann Lee", "--note", "keyed", key="k3y").returncode == 0
    notebook = work / "reports" / REP / "final.ipynb"
    nb = json.loads(notebook.read_text())
    nb["metadata"]["pipnb"]["outcome"]["recommendation"] = "complete"
    notebook.write_text(json.dumps(nb))
    append_audit(notebook.parent, {"kind": "report", "file": notebook.name, "version": 1,    # forged, without the key
                                   "sha256": file_sha256(notebook)})
    assert f"{REP}: reports/{REP}/audit.jsonl: audit log: line 6 is not signed with the key, after lines that are " \
           f"(written without {KEY_ENV}, or forged)" in verify(work, key="k3y")
    [row] = dashboard(work / "reports", work / "params").plans
    assert row.decision != "completion recommended" and "edited after it was written" in row.latest


# -- plans from before the chain ---------------------------------------------------------------------------
def test_a_legacy_lock_verifies_unchained_and_is_chained_from_its_next_step(work):
    (work / "reports" / REP / "audit.jsonl").unlink()        # a folder from before the audit log
    plan = Plan.from_yaml(work / PLAN)
    draft = plan.model_copy(update={"status": "draft", "history": [], "lock": None})
    terms = draft.terms(whole=False)
    old = HistoryEntry(date=TODAY, status="active", by="Ann Lee", lock="")
    lock = Lock(sha256=Lock.digest(terms, TODAY, "Ann Lee"), on=TODAY, by="Ann Lee", terms=terms)
    old = old.model_copy(update={"lock": lock.sha256[:12]})
    lock = lock.model_copy(update={"record": Lock.seal("active", [old])})
    legacy = draft.model_copy(update={"status": "active", "history": [old], "lock": lock})
    legacy.to_yaml(work / PLAN)
    assert "scheme" not in (work / PLAN).read_text() and "prev:" not in (work / PLAN).read_text()
    assert cli(work, "verify").stdout == f"{REP}: ok (legacy lock, unchained)\n"
    assert cli(work, "plan", "acknowledge", REP, "--by", "Dana Rep").returncode == 0
    again = Plan.from_yaml(work / PLAN)
    assert again.lock.scheme == "sha256" and "consequences" in again.lock.terms
    assert "the whole text of the plan is locked from this step on" in again.history[-1].note
    assert cli(work, "verify").stdout == f"{REP}: ok (acknowledged, 1 chained step, sha256, unkeyed)\n"


# -- plan complete needs the final review (issue 26) ------------------------------------------------------
def test_complete_needs_the_final_review_or_a_note(work):
    for path in (work / "reports" / REP).glob("final*"):
        path.unlink()
    refused = one_error_line(cli(work, "plan", "complete", REP, "--by", "Kim HR"))
    assert f"no final review of the plan of {REP} (ending " in refused and "--note WHY" in refused
    done = cli(work, "plan", "complete", REP, "--by", "Kim HR", "--note", "the rep met every target by week 8")
    assert done.returncode == 0, done.stderr
    entry = Plan.from_yaml(work / PLAN).history[-1]
    assert (entry.status, entry.note, entry.reports) == ("completed", "the rep met every target by week 8", {})


# -- small gaps of issue 24 -------------------------------------------------------------------------------
def test_pdf_takes_the_reports_folder_lock(work, monkeypatch):
    from pipnb import pdf

    reports = work / "reports"
    hold = ("import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('held', "
            "flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock_file(reports))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("PIPNB_LOCK_WAIT", "0")
        monkeypatch.setattr(pdf, "find_chromium", lambda: "chromium-not-used")
        with pytest.raises(LockedError, match="is being written by"):
            pdf.print_pdfs([reports / REP / "final.html"], force=True)
    finally:
        holder.kill()
        holder.wait()
    assert not (reports / REP / "final.pdf").exists()


def test_locked_error_is_public():
    assert pn.LockedError is LockedError and "LockedError" in pn.__all__


def test_audit_log_lines_are_chained(tmp_path):
    for n in range(3):
        append_audit(tmp_path, {"kind": "step", "n_test": n})
    lines = read_audit(tmp_path)
    assert [line["n"] for line in lines] == [1, 2, 3] and audit_breaks(lines) == []
    assert lines[1]["prev"] == lines[0]["mac"]
    edited = [dict(lines[0]), {**lines[1], "n_test": 9}, lines[2]]
    assert audit_breaks(edited) == ["line 2 was edited (its hash does not match)"]
    assert audit_breaks(lines[1:]) == ["line 1 is not the first line written (the log was cut at its start)",
                                       "line 2 does not follow line 1 (a line was removed, added or reordered)"]


# -- how often verify is wrong: random hand edits, and clean signed plans ----------------------------------
def _small_plan() -> Plan:
    """A hand-built 12-week plan with two targets (no data needed)."""
    targets = [{"metric": "opps_created_per_week", "label": "Opportunities created per week",
                "direction": "at_least", "baseline": 4.0, "target": 5.0, "glide": [4.25, 4.5, 4.75, 5.0],
                "focus": True, "rule": "hand-built"},
               {"metric": "win_rate", "label": "Win rate", "direction": "at_least", "baseline": 0.2, "target": 0.25,
                "glide": [0.21, 0.22, 0.24, 0.25], "focus": False, "rule": "hand-built"}]
    return Plan.model_validate({
        "rep_id": "R01", "rep_name": "Rep One", "team": "Team A", "start": "2024-10-07", "weeks": 12,
        "checkpoints": [3, 6, 9], "diagnosis_window": {"start": "2024-07-15", "end": "2024-10-06"},
        "data_fingerprint": "", "targets": targets, "consequences": ["may lead to termination"],
        "resources": ["weekly 1:1"], "coaching": ["call reviews"]})


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _changed(value, rng):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + rng.choice([1, -1, 0.5])
    if value is None:
        return 1.0
    if isinstance(value, (dt.date, dt.datetime)):
        return value + dt.timedelta(days=1)
    return f"{value}x"


def test_random_hand_edits_are_always_named_and_clean_signed_plans_never(tmp_path):
    """A world written for this test: signed lifecycles of random steps (never a false alarm), then one random
    value changed by hand in the plan's text, its history or its lock's signed copy (always named). The report
    of the branch gives the larger run's rates with Wilson intervals."""
    import random

    from pipnb.plan import record_plan_event, sign_plan
    from pipnb.verify import verify as check

    rng = random.Random(24)
    alarms, missed, tried = 0, [], 0
    for i in range(24):
        params = tmp_path / f"w{i}" / "params"
        _small_plan().to_yaml(params / "plans" / "R01.yaml")
        sign_plan(params, "R01", "activate", by="Mia")
        for step in rng.sample(["acknowledge", "event", "extend"], k=rng.randint(0, 3)):
            if step == "event":
                record_plan_event(params, "R01", "territory", on=dt.date(2024, 10, 20), note="accounts moved", by="Mia")
            elif step == "extend":
                sign_plan(params, "R01", "extend", by="Mia", weeks=2)
            elif Plan.from_yaml(params / "plans" / "R01.yaml").status == "active":
                sign_plan(params, "R01", "acknowledge", by="Rep")
        if rng.random() < 0.5:
            sign_plan(params, "R01", rng.choice(["complete", "close"]), by="HR", note="no final review here")
        alarms += any(f.broken for f in check(params, params.parent / "reports"))
        path = params / "plans" / "R01.yaml"
        raw = yaml.safe_load(path.read_text())
        where = ("text", "history", "lock")[i % 3]
        node = ({k: v for k, v in raw.items() if k not in ("lock", "history", "status")} if where == "text" else
                {"history": raw["history"]} if where == "history" else {"lock": {"terms": raw["lock"]["terms"]}})
        key, value = rng.choice(list(_leaves(node)))
        target = raw
        for k in key[:-1]:
            target = target[k]
        target[key[-1]] = _changed(value, rng)
        path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
        try:
            Plan.from_yaml(path)
        except pn.PlanError:
            continue                       # refused by the file's own validation: not counted
        tried += 1
        if not any(f.broken for f in check(params, params.parent / "reports")):
            missed.append((where, key))
    assert alarms == 0 and missed == [] and tried >= 12, (alarms, missed, tried)
