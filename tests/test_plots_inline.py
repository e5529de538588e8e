"""pipnb's charts leave pyplot as they found it: after a pipnb chart the analyst's own ``plt.plot(...)`` shows
inline, and a pipnb chart returned as a cell's value shows once.

The cause of the old behaviour: a chart made with ``plt.subplots`` inside the report style's ``rc_context``
loaded pyplot's backend there; IPython's inline backend switches interactive mode on when it loads, and the
context's end switched it off again, so the next ``plt.plot`` was never shown. And a returned pyplot figure was
shown twice: as the cell's value and by the inline backend at the end of the cell."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib
import nbformat
import pandas as pd
import pytest

import pipnb as pn
from pipnb import figures, plots
from pipnb.demo import DEMO_CASES

ARTICLE = DEMO_CASES["article"]


@pytest.fixture(scope="module")
def card_file(tmp_path_factory, demo, demo_panel):
    path = tmp_path_factory.mktemp("card") / "card.pkl"
    pn.scorecard(demo, panel=demo_panel).to_pickle(path)
    return path


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.outputs)


@pytest.mark.parametrize("kernel", ["python3", "pipnb-fast"])
def test_pipnb_charts_and_the_analysts_own_plots_each_show_once_inline(tmp_path, card_file, kernel):
    from jupyter_client.kernelspec import NoSuchKernel, find_kernel_specs
    from nbclient import NotebookClient

    if kernel not in find_kernel_specs():
        pytest.skip(f"kernel {kernel} is not installed")
    cells = [
        "import pandas as pd\nimport pipnb as pn\nimport matplotlib.pyplot as plt\n"        # no figure before it:
        f"card = pd.read_pickle({str(card_file)!r})\npn.plots.show(pn.plots.funnel(card, {ARTICLE!r}))",  # the bug
        "plt.plot([1, 2, 3]);",
        "pn.plots.scan_heatmap(card)",                                      # returned as the cell's value
        "plt.plot([3, 2, 1]);",
        "fig = pn.plots.funnel_grid(card)\nplt.figure()\nplt.plot([1, 2]);",  # a pipnb chart made, not shown
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    try:
        NotebookClient(nb, kernel_name=kernel, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()
    except NoSuchKernel:
        pytest.skip(f"kernel {kernel} is not installed")
    assert [_images(cell) for cell in nb.cells] == [1, 1, 1, 1, 1], [cell.outputs for cell in nb.cells]
    assert [out.output_type for out in nb.cells[2].outputs] == ["execute_result"]


def _pyplot_state() -> tuple:
    import matplotlib.pyplot as plt

    return (dict(matplotlib.rcParams), plt.isinteractive(), matplotlib.get_backend(), plt.gcf(), plt.get_fignums())


def _charts(card, demo, demo_panel):
    """Every public chart of pn.plots, made once (the review's charts from the demo plan)."""
    rv = pn.review(demo, pn.demo_plan(demo), 1, panel=demo_panel)
    peers = pn.peer_ids(card, ARTICLE)
    return {
        "funnel_grid": lambda: plots.funnel_grid(card),
        "scan_heatmap": lambda: plots.scan_heatmap(card),
        "peer_distribution": lambda: plots.peer_distribution(card, ARTICLE, ["win_rate", *pn.DRIVER_METRICS]),
        "funnel": lambda: plots.funnel(card, ARTICLE),
        "trend_grid": lambda: plots.trend_grid(demo_panel, ARTICLE, ["win_rate"], peers=peers),
        "counterfactual_grid": lambda: plots.counterfactual_grid(demo, rv, panel=demo_panel),
    }


def test_every_chart_and_show_leave_rcparams_interactive_mode_backend_and_current_figure_unchanged(
        card_file, demo, demo_panel, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(figures, "display", lambda image: None)        # show() renders, without a front end
    card = pd.read_pickle(card_file)
    was_interactive = plt.isinteractive()
    plt.ion()                                                        # an analyst's state, not the default
    mine = plt.figure()
    try:
        for name, make in _charts(card, demo, demo_panel).items():
            before = _pyplot_state()
            fig = make()
            assert _pyplot_state() == before, name                 # pyplot's figures (numbers) included
            assert isinstance(fig, plots.ReportFigure), name
            plots.show(fig)
            assert _pyplot_state() == before, f"show({name})"
            assert plt.gcf() is mine
    finally:
        plt.close(mine)
        plt.interactive(was_interactive)


def test_a_chart_in_a_fresh_process_does_not_load_pyplots_backend(card_file):
    """The mechanism itself: with no backend chosen yet, a pipnb chart leaves the choice to the analyst's first
    pyplot figure (in IPython, where the inline backend sets itself up)."""
    code = f"""
import matplotlib, pandas as pd
import matplotlib.pyplot as plt
import pipnb as pn
card = pd.read_pickle({str(card_file)!r})
png = pn.plots.funnel(card, {ARTICLE!r})._repr_png_()
print(matplotlib.get_backend(auto_select=False), plt.get_fignums(), png[:4] == b"\\x89PNG")
"""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["None", "[]", "True"]
