"""pipnb as a new user gets it: a built wheel in a fresh virtual environment, used from an empty folder.

The wheel is built offline from this checkout and installed (no dependencies) into a venv outside the repo
that reuses this environment's installed libraries through a ``.pth`` file (never its editable pipnb). Then,
in an empty folder: ``pipnb init``, ``demo-data``, ``scan``, ``diagnose``, ``run`` and a plain ``papermill`` +
``jupyter nbconvert --template pipnb_report``, each checked on what it wrote.
"""

import json
import os
import re
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
REP = "R07"


def _run(args, cwd, env, check=True):
    import time

    start = time.perf_counter()
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    print(f"{time.perf_counter() - start:6.1f} s  {' '.join(str(a) for a in args)[-90:]}")
    if check:
        assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, environment, empty work folder) with pipnb installed from its wheel."""
    import shutil

    base = tmp_path_factory.mktemp("wheel")
    source, dist = base / "source", base / "dist"         # built from a copy: the build writes build/ beside it
    for folder in ("pipnb", "notebooks"):                # the notebooks ship inside the wheel as pipnb/notebooks
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist, source], cwd=base, env=os.environ)
    [wheel] = dist.glob("pipnb-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base, env=os.environ)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # this environment's libraries (the deps), never its pipnb: a path in a .pth file is added as it is, its
    # own .pth files (the editable install's finder) are not run
    (purelib / "_project_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER", "VIRTUAL_ENV"))}
    # nbconvert's own templates (lab, base ...) are data files of this environment: shared the same way (never
    # this environment's pipnb_report or kernels); the user's Jupyter folder, which would come first, is empty
    shared = base / "jupyter-path" / "nbconvert" / "templates"
    shared.mkdir(parents=True)
    for template in (Path(sys.prefix) / "share" / "jupyter" / "nbconvert" / "templates").iterdir():
        if template.name != "pipnb_report":
            (shared / template.name).symlink_to(template)
    env.update(PATH=f"{bin_}{os.pathsep}{env.get('PATH', '')}", PIPNB_FORKSERVER_IDLE="20",
               JUPYTER_DATA_DIR=str(base / "jupyter-data"), JUPYTER_PATH=str(base / "jupyter-path"))
    _run([bin_ / "python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], cwd=base, env=env)
    work = base / "empty folder"
    work.mkdir()
    return bin_, env, work


def test_the_wheel_ships_notebooks_policy_and_template(installed):
    bin_, env, work = installed
    where = _run([bin_ / "python", "-c", "import pipnb, pipnb.workdir as w; print(pipnb.__file__); "
                  "print(sorted(p.name for p in w.NOTEBOOK_DIR.glob('*.ipynb'))); print(w.DEFAULT_POLICY.is_file()); "
                  "import pathlib; print((pathlib.Path(pipnb.__file__).parent / 'py.typed').is_file())"],
                 cwd=work, env=env).stdout.splitlines()
    assert str(bin_.parent) in where[0] and str(ROOT) not in where[0]          # the wheel's pipnb, not the repo's
    assert where[1] == str(["00-team-scan.ipynb", "10-diagnose.ipynb", "20-plan.ipynb", "30-checkpoint.ipynb",
                            "40-final-review.ipynb"])
    assert where[2] == "True"
    assert where[3] == "True"                                                  # typed: py.typed ships
    assert (bin_.parent / "share/jupyter/nbconvert/templates/pipnb_report/index.html.j2").is_file()
    version = _run([bin_ / "pipnb", "--version"], cwd=work, env=env).stdout
    assert re.search(r"\b\d+\.\d+\.\d+\b", version)


def test_init_notebooks_copies_the_shipped_notebooks(installed, tmp_path):
    bin_, env, work = installed
    _run([bin_ / "pipnb", "init", "--notebooks", tmp_path / "team"], cwd=work, env=env)
    copied = sorted((tmp_path / "team" / "notebooks").glob("*.ipynb"))
    assert [p.name for p in copied] == ["00-team-scan.ipynb", "10-diagnose.ipynb", "20-plan.ipynb",
                                        "30-checkpoint.ipynb", "40-final-review.ipynb"]
    assert all(p.read_bytes() == (ROOT / "notebooks" / p.name).read_bytes() for p in copied)


def test_init_then_every_command_in_an_empty_folder(installed):
    bin_, env, work = installed
    init = _run([bin_ / "pipnb", "init"], cwd=work, env=env)
    assert (work / "params" / "policy.yaml").read_text().startswith("# pipnb policy")
    assert (work / "params" / "plans").is_dir() and (work / "reports").is_dir()
    assert "created" in init.stdout
    kernel = _run([bin_ / "pipnb", "kernel", "install"], cwd=work, env=env)
    assert "pipnb-fast" in kernel.stdout and (bin_.parent / "share/jupyter/kernels/pipnb-fast").is_dir()

    _run([bin_ / "pipnb", "demo-data"], cwd=work, env=env)
    assert (work / "data" / "demo" / "reps.csv").is_file()
    quiet = _run([bin_ / "pipnb", "--quiet", "scan", "--data", "data/demo", "--format", "json"], cwd=work, env=env)
    assert quiet.stderr == ""                                        # --quiet: no note on what was loaded
    scan = json.loads(quiet.stdout)
    assert scan["window"]["weeks"] == 12 and scan["as_of"] and scan["basis"]["win_rate_basis"] == "closed"
    assert REP in {r["rep_id"] for r in scan["rows"] if r["flag"] == "shortfall"}

    dx = _run([bin_ / "pipnb", "diagnose", "--data", "data/demo", "--rep", REP], cwd=work, env=env)
    html = work / "reports" / REP / "diagnose.html"
    assert f"  {html}" in dx.stdout.splitlines()                 # every written report is listed
    assert "Improvement areas, most important first" in html.read_text()
    assert re.search(r"^pipnb: 1/1 jobs done$", dx.stderr, re.M)    # stderr is a pipe: plain lines, no \r
    assert "\r" not in dx.stderr

    env_quiet = {**env, "TQDM_DISABLE": "1"}
    other = "R14"
    run = _run([bin_ / "pipnb", "run", "--data", "data/demo", "--stage", "diagnose", "--reps", f"{REP},{other}",
                "--format", "json"], cwd=work, env=env_quiet)
    result = json.loads(run.stdout)
    assert result["summary"] == {**result["summary"], "ok": 1, "skipped": 1, "failed": 0, "jobs": 2}
    done, kept = result["jobs"][::-1] if result["jobs"][0]["status"] == "skipped" else result["jobs"]
    assert done["label"] == f"{other} diagnose" and done["status"] == "ok" and done["seconds"] > 0
    assert Path(done["html"]) == work / "reports" / other / "diagnose.html" and Path(done["html"]).is_file()
    assert kept["status"] == "skipped" and Path(kept["html"]) == html          # up to date: not run again
    assert Path(result["files"]["index"]).is_file()
    assert "jobs done" not in run.stderr and "\r" not in run.stderr         # TQDM_DISABLE: no progress


def test_plain_papermill_and_nbconvert_from_the_working_folder(installed):
    bin_, env, work = installed
    if not (work / "data" / "demo").is_dir():
        pytest.skip("needs test_init_then_every_command_in_an_empty_folder")
    notebook = _run([bin_ / "python", "-c", "from pipnb.workdir import notebook; print(notebook('10-diagnose.ipynb'))"],
                    cwd=work, env=env).stdout.strip()
    typo = _run([bin_ / "python", "-m", "papermill", notebook, "typo.ipynb", "-p", "rep_idd", REP, "-p", "data_source",
                 "data/demo", "-k", "pipnb-fast"], cwd=work, env=env, check=False)
    assert typo.returncode != 0 and "unknown parameter 'rep_idd': did you mean 'rep_id'?" in typo.stderr

    _run([bin_ / "python", "-m", "papermill", notebook, "out.ipynb", "-p", "rep_id", REP, "-p", "data_source",
          "data/demo", "-k", "pipnb-fast"], cwd=work, env=env)
    executed = nbformat.read(work / "out.ipynb", as_version=4)
    checked = next(c for c in executed.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT"))
    assert "avg_days_between_touches" in "".join(o.get("text", "") for o in checked.outputs)

    # `jupyter nbconvert` is this app (python -m nbconvert); the venv reuses the deps but not their scripts
    _run([bin_ / "python", "-m", "nbconvert", "--to", "html", "--template", "pipnb_report", "out.ipynb"], cwd=work,
         env=env)
    page = (work / "out.html").read_text()
    assert "<title>Diagnosis — R07</title>" in page and "Confidential" in page
    assert "import pipnb" not in page and "data_source" not in page and "<script" not in page.lower()
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) >= 3 and all('src="data:image/png;base64,' in i for i in images)      # inline, offline

    rendered = _run([bin_ / "pipnb", "render", "out.ipynb", "--out", "rendered.html"], cwd=work, env=env)
    assert "rendered.html" in rendered.stdout
    assert "Confidential — prepared for R07" in (work / "rendered.html").read_text()
    from pipnb.errors import PipnbError
    from pipnb.report import render

    with pytest.raises(PipnbError, match="is never replaced"):           # a written report is kept
        render(work / "out.ipynb", work / "rendered.html")
