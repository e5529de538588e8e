"""``reports/index.html``, the page: the dashboard above, then every report with its status and versions.

The one module that writes the index's HTML. :func:`write_index` draws the page from what the batch layer
gathered (:func:`pipnb.batch.index.write_index`): the :class:`~pipnb.dashboard.Dashboard` (who is on a plan and
how they are doing, then the flagged reps without a plan; :func:`render_dashboard`, no script: marks are text,
sparklines inline SVG) and the list of every report (:class:`IndexEntry` rows). The page shell (header,
stylesheet, no script, nothing fetched) is the reports' own (:mod:`pipnb.report`); every text from the data is
escaped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipnb.dashboard import MARKS, Dashboard, Measure
from pipnb.io import atomic_write_text
from pipnb.record import IndexEntry
from pipnb.report import header_html, page
from pipnb.stages import stage_title

__all__ = ["render_dashboard", "sparkline", "write_index"]

def write_index(entries: Iterable[IndexEntry], path: str | os.PathLike[str], *,
                title: str = "pipnb reports", header: Mapping[str, Any] | None = None,
                board: Dashboard | None = None, heading: str = "") -> Path:
    """Write the index page: the dashboard, when given, then every report with its status and a relative link.

    Parameters
    ----------
    entries
        The rows, shown in the order given (group them by rep, then stage).
    path
        Where to write the page (e.g. ``reports/index.html``); links are relative to its folder.
    title
        The page heading.
    header
        Optional header facts (``as_of``, ``audience`` …) as for :func:`pipnb.report.export_html`.
    board, heading
        The dashboard shown above the list (:func:`render_dashboard`), and a heading for the list.

    Returns
    -------
    Path
        ``path``.
    """
    esc = html.escape
    base = Path(path).resolve().parent
    rows, counts = [], {}
    for entry in entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
        label = esc(entry.stage)
        if entry.path is not None:
            href = Path(os.path.relpath(Path(entry.path).resolve(), base)).as_posix()
            label = f'<a href="{esc(_href(href))}">{label}</a>'
        note = f"<br><small>{esc(entry.note)}</small>" if entry.note else ""
        for what, where, why in entry.earlier:
            href = Path(os.path.relpath(Path(where).resolve(), base)).as_posix()
            note += (f'<br><small><a href="{esc(_href(href))}">{esc(what)}</a>'
                     + (f": {esc(why)}" if why else "") + "</small>")
        kind = esc(entry.status.replace(" ", "-"))
        rows.append(
            f"<tr><td>{esc(entry.rep)}</td><td>{label}</td>"
            f'<td><span class="pipnb-status pipnb-status-{kind}">{esc(entry.status)}</span>'
            f"{note}</td></tr>"
        )
    summary = ", ".join(f"{counts[s]} {s}" for s in ("ok", "skipped", "failed", "missing", "not due") if s in counts)
    head = dict(header or {})
    head.setdefault("title", title)
    head.setdefault("audience", "the sales manager")
    page_title, header_block = header_html(head)
    body = (
        (render_dashboard(board) if board is not None else "") + (f"\n<h2>{esc(heading)}</h2>\n" if heading else "")
        + f"<p>{esc(summary or 'no reports')}</p>\n"
        '<div class="pipnb-table-wrap"><table class="pipnb-index">\n'
        "<thead><tr><th>Rep</th><th>Report</th><th>Status</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows) + "\n</tbody></table></div>"
    )
    return atomic_write_text(path, page(page_title, header_block, body))


_CSS = """
.pipnb-dash td, .pipnb-dash th { text-align: left; }
.pipnb-dash td.pipnb-wrap { min-width: 12rem; }
.pipnb-mark { display: inline-flex; align-items: center; gap: .3rem; margin: 0 .6rem .2rem 0; font-size: .85rem; }
.pipnb-mark b { display: inline-block; width: 1.3rem; text-align: center; border-radius: .65rem; }
.pipnb-met b { background: #dafbe1; color: #116329; }
.pipnb-not-met b { background: #ffebe9; color: #a40e26; }
.pipnb-not-yet-clear b, .pipnb-no-data b, .pipnb-not-reviewed-yet b { background: #eaeef2; color: #59636e; }
.pipnb-state-overdue { background: #ffebe9; color: #a40e26; }
.pipnb-state-due, .pipnb-state-decision-due { background: #fff8c5; color: #7d4e00; }
.pipnb-state-not-due, .pipnb-state-draft, .pipnb-state-closed { background: #eaeef2; color: #59636e; }
.pipnb-spark { vertical-align: middle; }
"""


def render_dashboard(board: Dashboard) -> str:
    """The dashboard's part of the index page (every text from the data escaped)."""
    esc = html.escape
    out = [f"<style>{_CSS}</style>",
           f'<p class="pipnb-asof"><strong>As of {esc(board.today)}</strong>; data up to '
           f"<strong>{esc(board.data_date or 'unknown')}</strong>"
           + (f'; latest <a href="{esc(board.scan)}">team scan</a> as of {esc(board.scan_as_of)}' if board.scan else "")
           + ".</p>",
           "<h2>Reps on a plan</h2>"]
    if not board.plans:
        out.append("<p>No rep is on a plan.</p>")
    for team, rows in board.teams():
        out.append(f"<h3>{esc(team)}</h3>")
        out.append('<div class="pipnb-table-wrap"><table class="pipnb-dash"><thead><tr><th>Rep and manager</th>'
                   "<th>Plan</th><th>Next review</th><th>Focus measures</th><th>Latest</th></tr></thead><tbody>")
        for r in rows:
            name = esc(f"{r.rep_name} ({r.rep_id})")
            if r.report:
                name = f'<a href="{esc(_href(r.report))}">{name}</a>'
            state = (f'<span class="pipnb-status pipnb-state-{esc(r.next_state.replace(" ", "-"))}">'
                     f"{esc(r.next_label)}</span>" if r.next_state else "")
            nxt = (f"{esc(stage_title(r.next_stage))}, {esc(r.next_date)} " if r.next_stage else "") + state
            if r.next_note:
                nxt += f"<br><small>{esc(r.next_note)}</small>"
            plan = (f"<strong>{esc(r.plan_status)}</strong>, {esc(r.start)} to {esc(r.end)}<br>"
                    f"<small>reached: {esc(r.stage_reached or '—')}"
                    + (f"; {esc(r.status_note)}" if r.status_note else "") + "</small>"
                    + (f"<br><small>Drafted without a shortfall, because: {esc(r.reason)}</small>" if r.reason else ""))
            marks = "".join(_mark_html(m) for m in r.measures if m.focus) or "—"
            earlier = " · ".join(f'<a href="{esc(_href(p))}">{esc(label)}</a>' for label, p in r.versions)
            out.append(
                f"<tr><td>{name}<br><small>manager: {esc(r.manager or '—')}</small></td>"
                f'<td class="pipnb-wrap">{plan}</td><td>{nxt}</td><td class="pipnb-wrap">{marks}</td>'
                f'<td class="pipnb-wrap">{esc(r.latest or "—")}'
                + (f"<br><small>Reports: {earlier}</small>" if earlier else "") + "</td></tr>")
        out.append("</tbody></table></div>")
    out.append("<h2>Flagged by the latest team scan, without a plan</h2>")
    if board.flagged:
        out.append('<div class="pipnb-table-wrap"><table class="pipnb-dash"><thead><tr><th>Rep</th><th>Team</th>'
                   "<th>Manager</th><th>Falls short on</th><th>Diagnosis</th></tr></thead><tbody>")
        for r in board.flagged:
            diag = f'<a href="{esc(_href(r.diagnosis))}">diagnosis</a>' if r.diagnosis else "not diagnosed yet"
            out.append(f"<tr><td>{esc(f'{r.rep_name} ({r.rep_id})')}</td><td>{esc(r.team)}</td>"
                       f"<td>{esc(r.manager or '—')}</td><td class=\"pipnb-wrap\">{esc(', '.join(r.metrics))}</td>"
                       f"<td>{diag}</td></tr>")
        out.append("</tbody></table></div>")
    else:
        out.append("<p>None" + ("" if board.scan else " (no team scan yet)") + ".</p>")
    if board.diagnosed:
        out.append("<h2>Diagnosed, not flagged by the latest scan, no plan</h2><ul>")
        out += [f'<li><a href="{esc(_href(r.diagnosis))}">{esc(f"{r.rep_name} ({r.rep_id})")}</a>'
                f"{' — ' + esc(r.team) if r.team else ''}</li>" for r in board.diagnosed]
        out.append("</ul>")
    out.append("<p><small>Marks: ✓ met, ✗ not met, ? not yet clear, – no data, · not reviewed yet; each line is the "
               "measure's weekly value since the diagnosis window.</small></p>")
    return "\n".join(out)


def _mark_html(m: Measure) -> str:
    esc = html.escape
    cls = "pipnb-" + m.status.replace(" ", "-")
    title = f' title="{esc(m.reason)}"' if m.reason else ""
    return (f'<span class="pipnb-mark {esc(cls)}"{title}><b>{MARKS.get(m.status, "?")}</b>{esc(m.label)}'
            f"{sparkline(m.weekly)}</span>")


def sparkline(points: Iterable[tuple[str, float | None]], *, width: int = 64, height: int = 16) -> str:
    """An inline SVG line of the values (gaps where a week has none); "" with fewer than two values."""
    values = [v for _, v in points]
    real = [v for v in values if v is not None]
    if len(real) < 2:
        return ""
    low, high = min(real), max(real)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    segments, current = [], []
    for i, v in enumerate(values):
        if v is None:
            if len(current) > 1:
                segments.append(current)
            current = []
            continue
        current.append(f"{i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}")
    if len(current) > 1:
        segments.append(current)
    lines = "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="#0969da" stroke-width="1.2"/>'
                    for s in segments)
    return (f'<svg class="pipnb-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="weekly values">{lines}</svg>')


def _href(path: str) -> str:
    """A relative link as an ``href`` (spaces and other characters quoted)."""
    return quote(path, safe="/#.-_~")
