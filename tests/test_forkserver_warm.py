"""The fork server's chart warm-up: done once before forking, invisible to the kernels it forks."""

from __future__ import annotations


def test_warming_the_charts_draws_a_figure_and_leaves_matplotlib_as_it_was():
    import matplotlib
    import matplotlib.pyplot as plt

    from pipnb.kernel.forkserver.process import warm_charts

    before = {k: v for k, v in matplotlib.rcParams.items()}
    figures = plt.get_fignums()
    assert warm_charts() == ""
    assert dict(matplotlib.rcParams.items()) == before             # the reports' theme is set by pipnb.plots
    assert plt.get_fignums() == figures                             # nothing left open


def test_a_warm_up_that_cannot_draw_is_a_reason_not_a_crash(monkeypatch):
    import matplotlib.figure
    import matplotlib.pyplot as plt

    from pipnb.kernel.forkserver.process import warm_charts

    def broken(*args, **kwargs):
        raise RuntimeError("no renderer")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    figures = plt.get_fignums()
    assert warm_charts() == "RuntimeError: no renderer"
    assert plt.get_fignums() == figures
