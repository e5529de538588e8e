"""The command line in scripts and CI: progress that can be turned off or is plain lines in a pipe, a working
folder made by ``pipnb init``, and options that cannot apply are errors."""

import io
import subprocess

import pytest

from pipnb import progress
from pipnb.demo import DEMO_CASES


@pytest.fixture(autouse=True)
def _settings(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    yield
    progress.configure(progress=True, quiet=False)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere():
    assert progress.progress_mode(True, _Tty()) == "bar"
    assert progress.progress_mode(True, io.StringIO()) == "lines"
    assert progress.progress_mode(False, _Tty()) == "off"


@pytest.mark.parametrize("value, mode", [("1", "off"), ("true", "off"), ("0", "bar"), ("", "bar")])
def test_tqdm_disable_is_honoured(monkeypatch, value, mode):
    monkeypatch.setenv("TQDM_DISABLE", value)
    assert progress.progress_mode(True, _Tty()) == mode


def test_quiet_and_no_progress_turn_it_off():
    progress.configure(progress=False)
    assert progress.progress_mode(True, _Tty()) == "off" and not progress.quiet()
    progress.configure(progress=True, quiet=True)
    assert progress.progress_mode(True, _Tty()) == "off" and progress.quiet()


def test_lines_mode_writes_one_plain_line_per_update(monkeypatch, capsys):
    with progress.progress_bar(3, True) as bar:          # pytest's stderr is not a terminal
        bar.update(0)
        bar.update(1)
        bar.update(2)
    err = capsys.readouterr().err
    assert err.splitlines() == ["pipnb: 1/3 jobs done", "pipnb: 3/3 jobs done"] and "\r" not in err


def cli(*args):
    """The real command line, in this process (``returncode``, ``stdout``, ``stderr``)."""
    from click.testing import CliRunner

    from pipnb.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_init_makes_a_working_folder_and_keeps_what_exists(tmp_path):
    first = cli("init", tmp_path / "team", "--notebooks")
    assert first.returncode == 0, first.stderr
    team = tmp_path / "team"
    assert (team / "params" / "policy.yaml").is_file() and (team / "params" / "plans").is_dir()
    assert sorted(p.name for p in (team / "notebooks").glob("*.ipynb"))[0] == "00-team-scan.ipynb"
    (team / "params" / "policy.yaml").write_text("plan_weeks: 10\n")
    again = cli("init", team)
    assert again.returncode == 0 and "kept" in again.stdout
    assert (team / "params" / "policy.yaml").read_text() == "plan_weeks: 10\n"       # never overwritten
    (tmp_path / "file").write_text("x")
    clash = cli("init", tmp_path / "file")
    assert clash.returncode == 2 and clash.stderr.count("\n") == 1 and "Traceback" not in clash.stderr


def test_a_working_folders_notebook_copy_takes_precedence(tmp_path):
    from pipnb.workdir import NOTEBOOK_DIR, init, notebook

    init(tmp_path, notebooks=True)
    assert notebook("10-diagnose.ipynb", tmp_path) == (tmp_path / "notebooks" / "10-diagnose.ipynb").resolve()
    assert notebook("10-diagnose.ipynb", tmp_path / "elsewhere") == NOTEBOOK_DIR / "10-diagnose.ipynb"


def test_plan_start_when_the_plan_exists_is_an_error_not_ignored(tmp_path, demo, demo_folder):
    from pipnb.batch import demo_plan, plan_path

    rep = DEMO_CASES["responder"]
    active = demo_plan(demo, "responder")
    active.to_yaml(plan_path(tmp_path / "params", rep))
    result = cli("plan", "--data", demo_folder, "--rep", rep, "--start", "2026-07-06", "--params",
                 tmp_path / "params", "--reports", tmp_path / "reports")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("pipnb: error: --start cannot apply:") and "status active" in line and "\n" not in line
    assert not (tmp_path / "reports").exists()                 # nothing ran


def test_version():
    result = cli("--version")
    assert result.returncode == 0 and "0.1.0" in result.stdout


@pytest.mark.parametrize("args, named", [
    (["--stage", "scan", "--reps", "R07"], "--reps"),
    (["--stage", "diagnose", "--plans", "params/plans/*.yaml"], "--plans"),
    (["--stage", "final", "--as-of", "2026-06-01"], "--as-of"),
    (["--stage", "checkpoint-1", "--flagged"], "--flagged"),
])
def test_run_options_the_stage_cannot_use_are_errors(tmp_path, demo_folder, args, named):
    result = cli("run", "--data", demo_folder, *args, "--reports", tmp_path / "reports", "--params", tmp_path / "p")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{named} cannot apply to --stage" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "reports").exists()


def test_run_json_gives_each_job_the_status_the_text_summary_counts_it_as(demo, demo_panel, demo_folder, tmp_path):
    """Drafts and reviews not due yet are counted apart in the summary; the JSON's jobs say the same (not all
    "skipped")."""
    import collections
    import json
    import re
    import shutil
    from pathlib import Path

    import pipnb as pn
    from pipnb.workdir import plan_path

    params = tmp_path / "params"
    for case in ("article", "responder", "non_responder"):
        plan = pn.draft_plan(pn.diagnose(demo, DEMO_CASES[case], panel=demo_panel), reason="the test")
        if case == "non_responder":                    # active, its final review weeks after the data ends
            plan = plan.with_status("active", on=plan.start)
        plan.to_yaml(plan_path(params, plan.rep_id))
    shutil.copy(plan_path(params, DEMO_CASES["article"]), params / "plans" / "copy.yaml")   # not run: a copy
    args = ["run", "--data", demo_folder, "--stage", "final", "--params", params, "--reports", tmp_path / "reports"]
    text = cli(*args)
    assert text.returncode == 0, text.stderr
    first = next(line for line in text.stdout.splitlines() if re.match(r"\d+ ok, ", line))
    counted = {name: int(n) for n, name in re.findall(r"(\d+) (ok|skipped|failed|not due|draft)\b", first)}
    assert counted == {"ok": 0, "skipped": 1, "failed": 0, "not due": 1, "draft": 2}, first
    result = cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    statuses = collections.Counter(job["status"] for job in out["jobs"])
    assert {name: statuses[name] for name in counted} == counted == {k: out["summary"][k] for k in counted}
    by_label = {Path(job["label"]).name: job["status"] for job in out["jobs"]}
    assert by_label == {f"{DEMO_CASES['article']} final": "draft", f"{DEMO_CASES['responder']} final": "draft",
                        f"{DEMO_CASES['non_responder']} final": "not due", "copy.yaml": "skipped"}
