"""pipnb in an analyst's notebook: no global plotting state, short reprs and summary cards, paths accepted,
mistakes as PipnbError with a hint, and the notebooks' parameter check."""

import subprocess
import sys

import nbformat
import pytest

import pipnb as pn
from pipnb.demo import DEMO_CASES
from pipnb.parameters import check_parameters, injected_names

ARTICLE = DEMO_CASES["article"]

pytestmark = pytest.mark.slow(7)       # seconds on a quiet machine: scheduled first (conftest.py)


def test_importing_pipnb_plots_changes_no_matplotlib_or_seaborn_state():
    code = """
import matplotlib, matplotlib.pyplot as plt
backend, before = matplotlib.get_backend(), dict(matplotlib.rcParams)
import pipnb.plots
changed = sorted(k for k in before if before[k] != matplotlib.rcParams[k])
print(backend == matplotlib.get_backend(), changed)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True []"


def test_report_style_applies_inside_the_chart_only(demo, demo_panel):
    import matplotlib

    card = pn.scorecard(demo, panel=demo_panel)
    before = dict(matplotlib.rcParams)
    fig = pn.plots.funnel(card, ARTICLE)
    ax = fig.axes[0]
    assert any(line.get_visible() for line in ax.get_ygridlines())               # seaborn's whitegrid ...
    assert ax.spines["left"].get_edgecolor()[:3] != (0.0, 0.0, 0.0)              # ... light spines
    assert all(not t.get_parse_math() for t in ax.texts + [ax.title, ax.xaxis.label])   # "$" is text
    assert dict(matplotlib.rcParams) == before                                   # and nothing global
    import matplotlib.pyplot as plt

    plain = plt.figure().add_subplot()
    assert not any(line.get_visible() for line in plain.get_ygridlines())       # the analyst's own chart
    plt.close("all")


@pytest.mark.parametrize("kernel", ["python3", "pipnb-fast"])
def test_plt_plot_after_importing_pipnb_plots_shows_an_image(tmp_path, kernel):
    from jupyter_client.kernelspec import NoSuchKernel, find_kernel_specs
    from nbclient import NotebookClient

    if kernel not in find_kernel_specs():
        pytest.skip(f"kernel {kernel} is not installed")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import pipnb as pn\nimport pipnb.plots\nimport matplotlib.pyplot as plt"),
        nbformat.v4.new_code_cell("plt.plot([1, 3, 2]);"),
    ])
    try:
        NotebookClient(nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    except NoSuchKernel:
        pytest.skip(f"kernel {kernel} is not installed")
    outputs = nb.cells[1].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs


def test_short_reprs_and_summary_cards(demo, demo_panel):
    assert repr(demo).startswith("<SalesData ") and "reps=24" in repr(demo) and len(repr(demo)) < 300
    dx = pn.diagnose(demo, ARTICLE, panel=demo_panel)
    assert repr(dx).startswith("<Diagnosis rep='") and f"({ARTICLE})" in repr(dx) and "\n" not in repr(dx)
    assert ", ".join(dx.improvement_areas) in repr(dx) and "avg_days_between_touches" in repr(dx)
    html = dx._repr_html_()
    assert "<table" in html and ARTICLE in html and "<script" not in html
    plan = pn.draft_plan(dx)
    assert repr(plan).startswith("<Plan ") and "status='draft'" in repr(plan) and len(repr(plan)) < 400
    assert "draft" in plan._repr_html_()
    rv = pn.review(demo, pn.demo_plan(demo), 1, panel=demo_panel)
    assert repr(rv).startswith("<Review ") and "stage=" in repr(rv) and len(repr(rv)) < 300
    assert "status per measure" in rv._repr_html_()


def test_a_card_escapes_text_from_the_data(demo):
    evil = demo.reps.copy()
    evil.loc[evil["rep_id"] == ARTICLE, "rep_name"] = "<img src=x onerror=alert(1)>"
    data = type(demo)(evil, demo.opportunities, demo.activities)
    html = pn.diagnose(data, ARTICLE)._repr_html_()
    assert "<img" not in html and "&lt;img src=x" in html


def test_functions_taking_data_accept_a_path(demo_folder):
    dx = pn.diagnose(str(demo_folder), ARTICLE)
    assert dx.rep_id == ARTICLE
    assert set(pn.scorecard(demo_folder)["rep_id"]) >= {ARTICLE}
    assert pn.quality.quality_section(str(demo_folder)) == pn.quality.quality_section(pn.load(demo_folder))
    with pytest.raises(pn.PipnbError, match="not a int"):
        pn.diagnose(42, ARTICLE)


def test_a_rep_id_in_the_wrong_case_gets_a_did_you_mean(demo):
    with pytest.raises(pn.UnknownRepError, match=f"did you mean '{ARTICLE}'"):
        pn.diagnose(demo, ARTICLE.lower())


def test_draft_plan_start_in_words_is_a_pipnb_error_with_a_hint(demo, demo_panel):
    dx = pn.diagnose(demo, ARTICLE, panel=demo_panel)
    with pytest.raises(pn.PlanError, match=r"'next monday' is not a date: use YYYY-MM-DD, e\.g\. '\d{4}-\d\d-\d\d'"):
        pn.draft_plan(dx, start="next monday")
    assert str(pn.draft_plan(dx, start="2026-07-06").start) == "2026-07-06"
    with pytest.raises(pn.PlanError, match="takes a diagnosis"):
        pn.draft_plan(demo)


# -- the notebooks' parameter check ---------------------------------------------------------------
DECLARED = {"data_source": str, "rep_id": str, "weeks": int}


def namespace(injected: str = "", **values):
    history = ["", 'data_source: str = ""\nrep_id: str = ""\nweeks: int = 0']
    if injected:
        history.append("# Parameters\n" + injected)
    return {"In": history, "data_source": "", "rep_id": "", "weeks": 0, **values}


def test_injected_names_are_read_from_papermills_cell():
    assert injected_names(["x = 1", '# Parameters\nrep_id = "R07"\nweeks = 4\n', "import pipnb"]) == ["rep_id",
                                                                                                   "weeks"]
    assert injected_names(["x = 1"]) == []


def test_an_unknown_parameter_is_an_error_naming_the_closest():
    ns = namespace('rep_idd = "R07"\n', rep_idd="R07")
    with pytest.raises(pn.PipnbError, match="unknown parameter 'rep_idd': did you mean 'rep_id'"):
        check_parameters(ns, DECLARED, required=["rep_id"])


def test_the_rep_has_no_default():
    with pytest.raises(pn.PipnbError, match="parameter 'rep_id' is not set: pass it"):
        check_parameters(namespace(), DECLARED, required=["rep_id"])


def test_types_are_checked_and_a_number_for_text_becomes_text():
    ns = namespace("rep_id = 7\n", rep_id=7)
    check_parameters(ns, DECLARED, required=["rep_id"])
    assert ns["rep_id"] == "7"
    with pytest.raises(pn.PipnbError, match="parameter 'weeks' is 'four', not a int"):
        check_parameters(namespace('weeks = "four"\n', rep_id="R07", weeks="four"), DECLARED)


def test_a_users_own_variable_in_a_live_kernel_is_not_a_parameter():
    ns = namespace(rep_id="R07", my_threshold=3)          # set in JupyterLab, not injected by papermill
    check_parameters(ns, DECLARED, required=["rep_id"])


def test_every_notebook_checks_the_parameters_it_declares():
    import ast

    from pipnb.workdir import NOTEBOOK_DIR

    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        declared = [n.target.id for n in ast.parse(code[0].source).body if isinstance(n, ast.AnnAssign)]
        check = ast.parse(code[1].source).body[-1].value
        assert ast.unparse(check.func) == "pn.check_parameters", path.name
        assert [k.value for k in check.args[1].keys] == declared, path.name
        if "rep_id:" in code[0].source:
            assert 'rep_id: str = ""' in code[0].source, path.name         # no real-looking default
