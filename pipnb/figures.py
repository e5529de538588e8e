"""The report figures' machinery: the style, a figure pyplot never manages, alt text, and showing a figure.

Neither importing this module nor drawing a chart changes pyplot's state: no backend switch, no interactive
mode, no seaborn theme, no rcParams, no current figure. The report style (seaborn's ``whitegrid``, text never
parsed as math) is applied inside each function only (:func:`styled`), and every chart is a
:class:`ReportFigure` built without pyplot (:func:`new_figure`): pyplot never registers it, so its backend is not
loaded inside the style's ``rc_context`` (IPython's inline backend, set up on that first load, would be undone
when the context ends, and the analyst's next ``plt.plot(...)`` would show nothing), and the inline backend
does not show it a second time at the end of the cell. An analyst's own ``plt.plot(...)`` in the same notebook
looks and displays as usual, and a chart returned as a cell's value displays once.

Every chart carries its description, written from the numbers it draws (:func:`describe`); :func:`show` gives
it to the image as its alt text. A chart of several metrics is a figure of *panels* (:func:`panel_grid`):
:func:`show` shows each panel as its own image, cut out of one drawing of the whole figure, so a report sets them
side by side as far as the screen allows. Legends sit above the plotting area, never on the data
(:func:`legend_above`), and markers are kept wholly inside their axes (:func:`fit_markers`). The charts themselves
are in :mod:`pipnb.plots`.
"""

from __future__ import annotations

import functools
import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from IPython.display import Image, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

REP_COLOR, PEER_COLOR, TARGET_COLOR = "#c0392b", "#7f8c8d", "#2471a3"
#: Text sizes (points) of the report charts: at the 90 dpi of :func:`show`, 8 points are 10 CSS pixels.
TITLE_PT, LABEL_PT, TICK_PT = 10, 9, 8
#: The width a report gives a chart on a 390 px phone (the page's padding taken off), in CSS pixels.
PHONE_WIDTH_PX = 358
#: The dots per inch :func:`show` renders at (one image pixel is one CSS pixel).
DPI = 90


def report_style() -> dict:
    """The rcParams of the report charts: seaborn's ``whitegrid`` style and ``notebook`` context, and
    "$...$" in a rep's name shown as text, never as math."""
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook"), "text.parse_math": False}


def styled(draw):
    """Run ``draw`` inside ``matplotlib.rc_context(report_style())``: the style applies to its figure only."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(report_style()):
            return draw(*args, **kwargs)

    return wrapper


class ReportFigure(Figure):
    """A report chart: a matplotlib Figure that pyplot does not manage, shown once as a PNG when a notebook cell
    returns it (at :data:`DPI`; :func:`show` gives one image per panel, with alt text)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        return buffer.getvalue()


def new_figure(rows: int = 1, columns: int = 1, *, figsize: tuple[float, float]):
    """A :class:`ReportFigure` of ``rows`` × ``columns`` axes (a 2-D array), drawn by Agg, unknown to pyplot."""
    fig = ReportFigure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns, squeeze=False)


def describe(target, text: str):
    """Attach ``text``, a description written from the chart's numbers, to a Figure or one of its Axes (a panel);
    :func:`show` makes it the image's alt text. Returns ``target``."""
    target.pipnb_alt = " ".join(str(text).split())
    return target


def alt_text(fig: plt.Figure) -> str:
    """A figure's description: the one :func:`describe` attached, else its panels' descriptions, else its
    titles (an analyst's own chart)."""
    own = getattr(fig, "pipnb_alt", "")
    if own:
        return own
    parts = [getattr(ax, "pipnb_alt", "") or ax.get_title() for ax in fig.axes]
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return "; ".join(p for p in [title, *parts] if p) or "A chart"


def panels(fig: plt.Figure) -> list[plt.Axes]:
    """The panels :func:`show` shows one image each: the described Axes of a panel figure (none otherwise)."""
    if not getattr(fig, "pipnb_panels", False):
        return []
    return [ax for ax in fig.axes if getattr(ax, "pipnb_alt", "")]


def panel_grid(n: int, columns: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    """A panel figure: ``n`` panels of ``width`` × ``height`` inches, ``columns`` to a row (unused cells hidden)."""
    n = max(n, 1)
    columns = min(columns, n)
    rows = -(-n // columns)
    fig, axes = new_figure(rows, columns, figsize=(width * columns, height * rows))
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.pipnb_panels = True
    return fig, flat[:n]


def legend_above(ax, *, columns: int = 2) -> None:
    """The axes' legend above its plotting area, under the title: it never covers data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=columns, frameon=False,
              fontsize=TICK_PT, borderaxespad=0.0, handlelength=1.6, columnspacing=1.0)
    rows = -(-len(handles) // columns)
    ax.title.set_y(1.0)
    ax.set_title(ax.get_title(), fontsize=TITLE_PT, pad=rows * TICK_PT * 1.45 + 6)


def fit_markers(ax, pad_px: float = 2.0) -> None:
    """Widen the axes' limits so that every marker (scatter dots, line markers) lies wholly inside the plotting
    area: a marker on the edge would be cut in half by the axis. Call once the figure is laid out."""
    points, radii = marker_points(ax)
    if not len(points):
        return
    xy, radius = points, float(radii.max())
    box = ax.get_window_extent()
    need = radius + pad_px
    for column, get, set_, size in ((0, ax.get_xlim, ax.set_xlim, box.width), (1, ax.get_ylim, ax.set_ylim,
                                                                               box.height)):
        lo, hi = float(xy[:, column].min()), float(xy[:, column].max())
        a, b = get()
        for _ in range(4):                            # widening changes the scale a little: settle it
            per_px = (b - a) / max(size, 1.0)
            a, b = min(a, lo - need * per_px), max(b, hi + need * per_px)
        set_(a, b)


def marker_points(ax) -> tuple[np.ndarray, np.ndarray]:
    """Every scatter dot and line marker of ``ax``: their centres (data units, n × 2) and how far each reaches
    from its centre (pixels: the marker's own shape, a diamond's corner included, and half its edge)."""
    from matplotlib.collections import PathCollection  # matplotlib (loaded with pyplot)
    from matplotlib.markers import MarkerStyle  # matplotlib (loaded with pyplot)

    px_per_pt = ax.figure.dpi / 72
    centres, reach = [], []
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if isinstance(coll, PathCollection) and len(offsets) and len(coll.get_paths()):
            corner = float(np.abs(coll.get_paths()[0].vertices).max())
            sizes = np.broadcast_to(np.sqrt(coll.get_sizes()), len(offsets)) if len(coll.get_sizes()) else \
                np.zeros(len(offsets))
            edge = float(np.max(coll.get_linewidths(), initial=0.0)) / 2
            centres.append(offsets)
            reach.append((corner * sizes + edge) * px_per_pt)
    for line in ax.lines:
        if line.get_marker() not in (None, "None", "", " ") and len(line.get_xdata()):
            style = MarkerStyle(line.get_marker())
            corner = float(np.abs(style.get_path().transformed(style.get_transform()).vertices).max())
            xy = np.column_stack([ax.convert_xunits(line.get_xdata()), ax.convert_yunits(line.get_ydata())])
            centres.append(xy.astype(float))
            reach.append(np.full(len(xy), (corner * line.get_markersize() + line.get_markeredgewidth() / 2)
                                 * px_per_pt))
    if not centres:
        return np.empty((0, 2)), np.empty(0)
    xy, r = np.vstack(centres), np.concatenate(reach)
    keep = np.isfinite(xy).all(axis=1)
    return xy[keep], r[keep]


@styled
def show(fig: plt.Figure, *, dpi: int = DPI, alt: str | None = None):
    """Display a figure as inline PNGs, each with its description as alt text, and close it (a pyplot figure of the
    analyst's own is closed in pyplot, so the inline backend does not show it again).

    A panel figure (:func:`panels`) shows one image per panel, cut out of the drawn figure, so a report sets
    them side by side as far as the screen allows; any other figure is one image. ``alt`` replaces the
    figure's own description (:func:`alt_text`). The same in any kernel or backend.
    """
    pieces = panels(fig) if alt is None else []
    if not pieces:
        _display_png(fig, dpi, alt or alt_text(fig))
    else:
        for ax, png in zip(pieces, _panel_pngs(fig, dpi, pieces)):
            display(Image(data=png, format="png", alt=ax.pipnb_alt))
    plt.close(fig)


def _display_png(fig: plt.Figure, dpi: int, alt: str) -> None:
    buffer = io.BytesIO()
    # the figures are laid out already (tight_layout): no second "tight" drawing pass; light compression
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    display(Image(data=buffer.getvalue(), format="png", alt=alt))


def _panel_pngs(fig: plt.Figure, dpi: int, pieces: list[plt.Axes]) -> list[bytes]:
    """Each panel's PNG, cut (with a 0.04-inch margin) out of one drawing of the whole figure at ``dpi``: one
    drawing for all the panels, not one per panel."""
    from PIL import Image as Picture  # pillow, matplotlib's own PNG writer

    was = fig.dpi
    fig.set_dpi(dpi)
    try:
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())
        renderer = fig.canvas.get_renderer()
        height, width = pixels.shape[:2]
        margin = 0.04 * dpi
        pngs = []
        for ax in pieces:
            box = ax.get_tightbbox(renderer)                 # display pixels, origin at the bottom left
            left, right = max(int(box.x0 - margin), 0), min(int(np.ceil(box.x1 + margin)), width)
            top, bottom = max(int(height - box.y1 - margin), 0), min(int(np.ceil(height - box.y0 + margin)), height)
            buffer = io.BytesIO()
            Picture.fromarray(pixels[top:bottom, left:right]).save(buffer, format="png", compress_level=3)
            pngs.append(buffer.getvalue())
        return pngs
    finally:
        fig.set_dpi(was)
