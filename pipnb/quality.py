"""Data quality: what a load kept, set aside, blanked, filtered and corrected, and the facts it would
otherwise keep silent.

The ledger of each load (:mod:`pipnb.ledger`) records every row it did not keep as read; this module words it.

:func:`quality_report` gathers it into the report ``pipnb check`` prints; :func:`summary_line` is the one
line ``pipnb scan`` prints; :func:`write_quality_csv` writes a batch's ``reports/data-quality.csv``;
:func:`quality_section` is the short Markdown section of the team-scan report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipnb.alerts import DataWarning, ledger_warnings, warning_line, window_warnings
from pipnb.data import SalesData
from pipnb.errors import DataError
from pipnb.io import atomic_write_text, safe_csv
from pipnb.ledger import (
    BEFORE_DEAL,
    BEFORE_HIRE,
    BLANKED,
    CORRECTED,
    DUPLICATE,
    FACT,
    FACT_ONE,
    FACTS,
    FILTERED,
    ISSUE_COLUMNS,
    NOTES,
    REMOVED,
    SET_ASIDE,
    UNTOUCHED,
)
from pipnb.metrics import data_window, weekly_panel, window_metrics
from pipnb.peers import missing_sources
from pipnb.policy import Policy
from pipnb.sources import accepts_path, load
from pipnb.text import esc

#: why a stopped load's facts are not known
STOPPED = "not known: the load stopped before the data was complete"


@dataclass(frozen=True)
class QualityReport:
    """The data-quality report of one loaded source (what ``pipnb check`` prints).

    Attributes
    ----------
    source, bad_rows
        The source and how bad rows were handled.
    files
        Rows read and kept per file (see :class:`DataQuality`).
    reasons
        ``action, table, column, reason, count, first`` for every action but facts.
    facts
        ``fact, count, first``: the silent facts (activities before hire or before their deal, open deals
        without a touch, deals without an owner, inactive reps without an end date), zeros included; a fact
        the source cannot tell (open deals without a touch, with no activities table) has ``count`` None and
        says why in ``first``.
    notes
        Counted rules that list no rows (``open_close_dates_ignored`` ...).
    warnings
        The warnings that matter (:mod:`pipnb.alerts`), one line each: the load's own, and those of the scan's
        default window (nobody created an opportunity in it, a metric 0 for every rep).
    """

    source: str
    bad_rows: str
    files: pd.DataFrame
    reasons: pd.DataFrame
    facts: pd.DataFrame
    notes: dict[str, int]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"source": self.source, "bad_rows": self.bad_rows,
                "files": self.files.to_dict(orient="records"), "reasons": self.reasons.to_dict(orient="records"),
                "facts": self.facts.to_dict(orient="records"), "notes": self.notes, "warnings": list(self.warnings)}


@accepts_path
def quality_report(data: SalesData, *, values: bool = True, window: bool = False) -> QualityReport:
    """Gather what the load of ``data`` kept, listed and noticed; with ``window``, also the warnings of the scan's
    default window (:func:`check_warnings`; the load's own warnings always).

    Example
    -------
    >>> report = quality_report(pn.load("export.yaml", bad_rows="skip"))   # doctest: +SKIP
    >>> report.facts                                                        # doctest: +SKIP
    """
    quality = data.quality
    counts = quality.counts(values=values)
    facts = []
    unknown = unknowable_facts(data)
    if data.reps.empty and data.opportunities.empty:    # a load that stopped (pipnb.sources.explain)
        unknown = dict.fromkeys(FACTS, STOPPED)
    for reason, label in FACTS.items():
        rows = counts[counts["reason"] == reason]
        if reason in unknown:
            facts.append({"fact": label, "count": None, "first": unknown[reason]})
            continue
        facts.append({"fact": label, "count": int(rows["count"].sum()),
                      "first": "; ".join(rows["first"]) if len(rows) else ""})
    notes = {k: int(v) for k, v in data.notes.items() if v}
    warnings = check_warnings(data) if window else ledger_warnings(data)
    return QualityReport(source=data.source, bad_rows=quality.bad_rows, files=quality.files.copy(),
                         reasons=counts[~counts["action"].isin([FACT, "warning"])].reset_index(drop=True),
                         facts=pd.DataFrame({key: pd.Series([f[key] for f in facts], dtype=object)
                                            for key in ("fact", "count", "first")}), notes=notes,
                         warnings=tuple(warning_line(w) for w in warnings))


def check_warnings(data: SalesData, *, policy: Policy | None = None) -> list[DataWarning]:
    """The load's warnings, then those of the scan's default window: the policy's ``diagnosis_weeks`` up to the
    data's last day (./params/policy.yaml when it exists, as ``pipnb scan``). A load that stopped has no window."""
    out = ledger_warnings(data)
    if data.reps.empty or data.opportunities.empty:
        return out
    policy = policy or Policy.find(None, params="params")
    window = data_window(data, None, policy.diagnosis_weeks)
    pooled = window_metrics(weekly_panel(data), window.start, window.end,
                            win_rate_basis=policy.win_rate_basis)
    active = set(data.reps.loc[~data.inactive(window.last_day).to_numpy(bool), "rep_id"].astype(str))
    pooled = pooled[pooled["rep_id"].astype(str).isin(active)]
    return out + window_warnings(pooled, start=window.start, end=window.last_day,
                                 unavailable=set(missing_sources(data)))


def unknowable_facts(data: SalesData) -> dict[str, str]:
    """The silent facts the source cannot tell, and why: without activities nobody knows whether an open deal
    was touched (saying "0 open deals without a touch" would be a false fact)."""
    if not data.has("activities"):
        why = "cannot be known: the source has no activities table"
        return {BEFORE_HIRE: why, BEFORE_DEAL: why, UNTOUCHED: why}
    if "opp_id" not in data.activities or not data.activities["opp_id"].notna().any():
        return {UNTOUCHED: "cannot be known: the source's activities are not linked to opportunities",
                BEFORE_DEAL: "cannot be known: the source's activities are not linked to opportunities"}
    return {}


def format_report(report: QualityReport, fmt: str = "table") -> str:
    """The report as a plain-text table, CSV (every listed row) or JSON."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=1, default=str)
    if fmt == "csv":
        raise ValueError("the CSV of a check is the list of rows: use issues_csv(data)")
    files = report.files
    stopped = len(report.facts) and (report.facts["first"] == STOPPED).all()
    lines = [f"Data quality — {report.source} (bad rows: {report.bad_rows})" + (
        "; the load stopped (the error follows): kept = not left out before it stopped" if stopped else ""),
        "", "Files"]
    header = f"  {'table':<14} {'file':<28} {'read':>9} {'kept':>9} {'set aside':>9} {'filtered':>9} " \
             f"{'duplicates':>10} {'blanked':>8} {'corrected':>9}"
    lines.append(header)
    for r in files.itertuples(index=False):
        lines.append(f"  {r.table:<14} {r.file:<28} {r.rows_read:>9,} {r.rows_kept:>9,} {r.set_aside:>9,} "
                     f"{r.filtered:>9,} {r.duplicates:>10,} {r.blanked:>8,} {r.corrected:>9,}")
    titles = {SET_ASIDE: "Rows set aside, by reason", BLANKED: "Values blanked, by reason",
              FILTERED: "Rows filtered, by reason", DUPLICATE: "Duplicates resolved",
              CORRECTED: "Values corrected"}
    nothing = {SET_ASIDE: "no row set aside", BLANKED: "no value blanked", FILTERED: "no row filtered",
               DUPLICATE: "no duplicate", CORRECTED: "no value corrected"}
    quiet = [nothing[action] for action in titles if not (report.reasons["action"] == action).any()]
    for action, title in titles.items():
        rows = report.reasons[report.reasons["action"] == action]
        if not len(rows):
            continue
        lines += ["", f"{title}: {int(rows['count'].sum()):,}"]
        for r in rows.itertuples(index=False):
            lines.append(f"  {r.count:>7,}  {r.table} {r.column}: {r.reason}")
            lines.append(f"           first: {r.first}")
    if quiet:
        lines += ["", f"{', '.join(quiet).capitalize()}."]
    lines += ["", "Facts"] + ([f"  {'?':>7}  {STOPPED}"] if stopped else [])
    for r in report.facts.itertuples(index=False) if not stopped else ():
        if not _known(r.count):
            lines.append(f"  {'?':>7}  {r.fact}: {r.first}")
            continue
        lines.append(f"  {int(r.count):>7,}  {r.fact}" + (f"\n           first: {r.first}" if r.count else ""))
    if report.warnings:
        lines += ["", "Warnings"] + [f"  warning: {w}" for w in report.warnings]
    if report.notes:
        lines += ["", "Notes"]
        lines += [f"  {count:>7,}  {NOTES.get(key, key.replace('_', ' '))}" for key, count in report.notes.items()]
    return "\n".join(lines)


def run_check(source: str, *, bad_rows: str | None, fmt: str, echo) -> None:
    """``pipnb check``: print the data-quality report (``table``, ``json``, or ``csv``: every listed row). A load
    that stops still prints the report of what it read and left out, then raises its error (one line, exit
    non-zero). Invalid rows are set aside (``bad_rows`` "skip") unless ``bad_rows`` is "stop"."""
    try:
        data = load(source, bad_rows=bad_rows or "skip")
    except DataError as err:
        partial = getattr(err, "data", None)
        if partial is not None and len(partial.quality.files):    # nothing read: the error says it all
            echo(issues_csv(partial) if fmt == "csv" else format_report(quality_report(partial), fmt),
                 nl=fmt != "csv")
        raise
    if fmt == "csv":
        echo(issues_csv(data), nl=False)
        for line in quality_report(data, values=False, window=True).warnings:   # beside the rows, not among them
            echo(f"pipnb: warning: {line}", err=True)
        return
    echo(format_report(quality_report(data, window=True), fmt))


def counted(count: float, fact: str) -> str:
    """``1 open deal without a touch``, ``3 open deals without a touch``: a fact's count with its label."""
    n = int(count)
    return f"{n:,} {FACT_ONE.get(fact, fact) if n == 1 else fact}"


def summary_line(data: SalesData) -> str:
    """One line: rows read and kept, what was left out or changed, and the silent facts.

    Example
    -------
    ``data: 3 files, 12,480 rows read, 12,410 kept; 40 set aside, 30 filtered, 0 duplicates, 2 values
    blanked, 1 corrected; facts: 1,255 activities before the rep's hire date, ... (pipnb check for the list)``
    """
    quality = data.quality
    files = quality.files
    if files.empty:
        return f"data: {len(data.reps):,} reps, {len(data.opportunities):,} opportunities" + (
            f", {len(data.activities):,} activities" if data.activities is not None else "")
    read, kept = int(files["rows_read"].sum()), int(files["rows_kept"].sum())
    parts = [f"{int(files[c].sum()):,} {label}" for c, label in (
        ("set_aside", "set aside"), ("filtered", "filtered"), ("duplicates", "duplicates resolved"),
        ("blanked", "values blanked"), ("corrected", "corrected"))]
    report = quality_report(data, values=False)
    facts = [counted(r.count, r.fact) for r in report.facts.itertuples(index=False) if _known(r.count) and r.count]
    line = (f"data: {len(files)} file{'s' if len(files) != 1 else ''}, {read:,} rows read, {kept:,} kept; "
            f"{', '.join(parts)}")
    if facts:
        line += f"; facts: {', '.join(facts)}"
    listed = len(quality.issues)
    return line + (" (pipnb check --data SRC lists them)" if listed else "")


def issues_csv(data: SalesData) -> str:
    """Every listed row of ``data``'s load as CSV (``table, file, row, column, value, action, reason``),
    safe to open in a spreadsheet (a value starting like a formula is written as text)."""
    return safe_csv(data.quality.issues[ISSUE_COLUMNS])


def write_quality_csv(data: SalesData, folder: str | Path) -> Path:
    """Write every listed row of ``data``'s load to ``folder/data-quality.csv`` (atomically; see
    :func:`issues_csv`). A batch writes it to ``reports/``."""
    return atomic_write_text(Path(folder) / "data-quality.csv", issues_csv(data))


@accepts_path
def quality_section(data: SalesData) -> str:
    """A short Markdown section on the data's quality, for the team-scan report (its body: the report's own
    "Data quality" heading stands above it).

    Counts only (rows read and kept, left out by reason, the silent facts) with file and row numbers:
    no value from the data, so it names no rep.
    """
    quality = data.quality
    files = quality.files
    lines: list[str] = []
    if files.empty:
        lines.append(f"{len(data.reps)} reps and {len(data.opportunities):,} opportunities, loaded from memory.")
        lines += [f"\n**Warning**: {esc(warning_line(w))}." for w in ledger_warnings(data)]
        return "\n".join(lines)
    read, kept = int(files["rows_read"].sum()), int(files["rows_kept"].sum())
    lines.append(f"{read:,} rows read from {len(files)} file{'s' if len(files) != 1 else ''}, {kept:,} kept "
                 f"(bad rows: {quality.bad_rows}).")
    report = quality_report(data, values=False)
    left = report.reasons[report.reasons["action"].isin([*REMOVED, BLANKED, CORRECTED])]
    if len(left):
        lines.append("")
        lines += [f"- {r.count:,} {r.action}: {esc(r.table)} {esc(r.column)}, {esc(r.reason)} "
                  f"(first: {esc(r.first)})" for r in left.head(8).itertuples(index=False)]
        if len(left) > 8:
            lines.append(f"- … {len(left) - 8} more reasons: the full list is in data-quality.csv")
    facts = report.facts[[_known(c) and c > 0 for c in report.facts["count"]]]
    if len(facts):
        lines.append("\nWorth knowing: " + "; ".join(esc(counted(r.count, r.fact)) for r in facts.itertuples())
                     + ".")
    unknown = report.facts[[not _known(c) for c in report.facts["count"]]]
    if len(unknown):
        lines.append("\nNot known from this source: " + "; ".join(f"{esc(r.fact)} ({esc(r.first)})"
                                                                 for r in unknown.itertuples()) + ".")
    for key, count in report.notes.items():
        lines.append(f"\n{count:,} {esc(NOTES.get(key, key.replace('_', ' ')))}.")
    lines += [f"\n**Warning**: {esc(w)}." for w in report.warnings]       # the load's own (the window's: the summary)
    return "\n".join(lines)


def _known(count) -> bool:
    """Whether a fact's count is known (None or NaN: the source cannot tell)."""
    return count is not None and count == count
