"""The claims check: every sentence a report says about a rep, held against the structured record beside it.

A report's words come from :mod:`pipnb.text`, :mod:`pipnb.sentences` and :mod:`pipnb.drafting`, its numbers from
the scorecard's findings, the plan's targets and the review's table and verdicts. This module renders the words of
every stage for simulated teams (``tests/simworld.py``, a generator that never imports the demo's) and checks each
claim against its record:

* **parity** — "in line with peers" (or the old fixed phrases "matches peers", "not low", "as often as peers") is
  said of a metric only when its finding is *in line*;
* **missing** — a metric whose finding is *unavailable* because its source is absent (no meetings, no activities,
  no amounts, no records in the window) is never shown as zero (``0.0/wk``, ``0%``) in a sentence about it (a metric
  with too few events to judge shows its real counts);
* **arithmetic** — "N% of the way from the rep's A to the peers' median B: C" states C = A + N% (B − A), to the
  precision shown;
* **final met** — a final-review status *met* has its last window's interval (widened by the uncertainty of the
  peers' change) at or beyond the final target moved with the peers' change; *not met* has it wholly short; the
  status by the rep's level alone reads the raw interval against the raw target the same way;
* **team change** — "the peers' X fell N% / rose N%" states the row's peers' change to the percent shown;
* **book** — a book sentence says "shrank beyond noise" exactly when its one-sided bound lies below the margin,
  and a recommendation that rests on the book ("volume alone") has a shrunken book and only volume shortfalls;
* **complete** — a *complete* recommendation has, for every focus area, the final target met or the plan period
  within the margin of peers; never *complete* with every focus target not met and the rep still short of peers;
* **verdict ranges** — a verdict of *improved* or *worse* is printed beside a range that excludes no change, on the
  side the verdict says;
* **target lines** — a verdict sentence's "Target: …" status is the table's status for that measure;
* **needs a plan** — a diagnosis needs a plan exactly when a finding on the win rate or a driver is a shortfall;
  a plan carries a recorded reason exactly when it was drafted without one (**plan reason**).

:func:`check_team` returns the :class:`Claim` list of one team (each with ``ok`` and, when false, why), so that
``tests/test_claims.py`` (a few teams) and ``benchmarks/bench_claims.py`` (hundreds of plans and the demo's
rendered reports) count the same things.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

import pipnb as pn
from pipnb import sentences, text
from pipnb.book import SHRINK_MARGIN
from pipnb.reviews import book_sentence, target_reason
from pipnb.schema import DRIVER_METRICS, METRICS, OUTCOME_METRICS

PARITY = ("in line with peers", "matches peers", "match peers", "are not low", "is not low", "as often as peers")
HALF_WAY = re.compile(r"(\d+)% of the way from the rep's ([^ ]+(?: days)?) to the peers' median "
                      r"([^ :]+(?: days)?): ([^ ;,)]+(?: days)?)")
#: Markdown emphasis that must never reach a report's HTML as text
LITERAL_MARKDOWN = re.compile(r"\*\*[^*\n]+\*\*|(?<![\w/])__[^_\n]+__(?!\w)")


@dataclass(frozen=True)
class Claim:
    kind: str
    where: str
    ok: bool
    why: str = ""


def _number(shown: str) -> float:
    """A value as :meth:`Metric.fmt` shows it, back to a number (``18%`` -> 0.18, ``$24,500`` -> 24500)."""
    s = shown.strip().rstrip(".")
    pct = s.endswith("%")
    s = s.replace("$", "").replace(",", "").replace("/wk", "").replace("/day", "").replace(" days", "").rstrip("%")
    return float(s) / (100 if pct else 1)


def _resolution(shown: str) -> float:
    """Half a unit of the last digit shown (``18%`` -> 0.005, ``3.5/wk`` -> 0.05, ``$24,500`` -> 0.5)."""
    s = shown.strip()
    if s.endswith("%"):
        return 0.005
    digits = s.replace("$", "").replace(",", "").split("/")[0].split(" ")[0]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return 0.5 * 10 ** -decimals


# -- the checks ---------------------------------------------------------------------------------------------
def check_findings(card: pd.DataFrame, rep_id: str, words: str, where: str) -> list[Claim]:
    """Parity words and missing numbers in ``words`` (a report's text about ``rep_id``) against its findings.

    A parity phrase is said of the metric whose label comes last before it in the same line or clause.
    """
    claims = []
    mine = card[card["rep_id"] == rep_id].set_index("metric")
    labels = {METRICS[m].label.lower(): m for m in mine.index if m in METRICS}
    for piece in re.split(r"\n|(?<=\.)\s", html.unescape(words)):
        low = piece.lower()
        for phrase in PARITY:
            at = low.find(phrase)
            if at < 0:
                continue
            before = [(low.rfind(label, 0, at), label) for label in labels if low.rfind(label, 0, at) >= 0]
            # said of the last metric named before it ("Emails per week 60/wk: in line with peers"), else of
            # every metric listed after it ("In line with peers: opportunities created per week, ...")
            said_of = [max(before)[1]] if before else [label for label in labels if low.find(label, at) >= 0]
            for label in said_of:
                flag = mine.loc[labels[label], "flag"]
                claims.append(Claim("parity", where, flag == "in line",
                                    f"{labels[label]} is {flag!r}: {piece.strip()}"))
        for label, metric in labels.items():
            why = str(mine.loc[metric].get("why_unavailable") or "")
            if label in low and mine.loc[metric, "flag"] == "unavailable" and not why.startswith("too few"):
                shows_zero = re.search(re.escape(label) + r"[^.;\n]{0,12}?\b0(\.0)?(/wk|%| days)", low) is not None
                claims.append(Claim("missing", where, not shows_zero, f"{metric} unavailable: {piece.strip()}"))
    return claims


def check_arithmetic(words: str, where: str) -> list[Claim]:
    """Every "N% of the way from the rep's A to the peers' median B: C" recomputed."""
    claims = []
    for share, a, b, c in HALF_WAY.findall(words):
        try:
            x, lo, hi, stated = int(share) / 100, _number(a), _number(b), _number(c)
        except ValueError:
            claims.append(Claim("arithmetic", where, False, f"unreadable numbers: {a} {b} {c}"))
            continue
        want = lo + x * (hi - lo)
        slack = _resolution(a) + _resolution(b) + _resolution(c) + 1e-9
        claims.append(Claim("arithmetic", where, abs(stated - want) <= slack,
                            f"{share}% of the way from {a} to {b} is {want:.4g}, stated {c}"))
    return claims


def check_needs_plan(dx, where: str) -> list[Claim]:
    judged = dx.card[(dx.card["rep_id"] == dx.rep_id)
                     & dx.card["metric"].isin([*OUTCOME_METRICS[:1], *DRIVER_METRICS])]
    short = bool(judged.loc[judged["metric"].isin(["win_rate", *DRIVER_METRICS]), "flag"].eq("shortfall").any())
    return [Claim("needs plan", where, dx.needs_plan == short,
                  f"needs_plan {dx.needs_plan} but shortfall on the win rate or a driver: {short}")]


def check_review(rv, where: str) -> list[Claim]:
    """Final statuses, the recommendation's evidence, verdict ranges and Target lines of one review."""
    claims = []
    table = rv.table
    for row in table.itertuples():
        up = METRICS[row.metric].higher_is_better
        if rv.is_final and row.final_status in ("met", "not met") and np.isfinite(row.actual_low):
            goal = row.adjusted_final_target
            reached = (row.status_low >= goal - 1e-9) if up else (row.status_high <= goal + 1e-9)
            short = (row.status_high < goal) if up else (row.status_low > goal)
            ok = reached if row.final_status == "met" else short
            claims.append(Claim("final met", where, bool(ok),
                                f"{row.metric} {row.final_status}: window {row.status_low:.4g}–{row.status_high:.4g} "
                                f"vs final target {goal:.4g} (with the peers' change)"))
        if rv.is_final and row.unadjusted in ("met", "not met") and np.isfinite(row.actual_low):
            goal = row.final_target
            reached = (row.actual_low >= goal - 1e-9) if up else (row.actual_high <= goal + 1e-9)
            short = (row.actual_high < goal) if up else (row.actual_low > goal)
            claims.append(Claim("final met", where, bool(reached if row.unadjusted == "met" else short),
                                f"{row.metric} by its level alone {row.unadjusted}: window {row.actual_low:.4g}–"
                                f"{row.actual_high:.4g} vs final target {goal:.4g}"))
        said = re.search(r"the peers' .+? (fell|rose) (\d+)% in plan week", target_reason(row))
        if said:
            change = (row.team_change - 1) * 100
            ok = (said.group(1) == ("rose" if change > 0 else "fell")) and int(said.group(2)) == round(abs(change))
            claims.append(Claim("team change", where, bool(ok),
                                f"{row.metric}: says {said.group(1)} {said.group(2)}%, row {change:+.1f}%"))
    book = rv.book if rv.book is not None else pd.DataFrame()
    for row in book.itertuples():
        says = book_sentence(row).endswith("shrank beyond noise")
        claims.append(Claim("book", where, says == bool(row.high < 1 - SHRINK_MARGIN),
                            f"{row.measure}: says shrank {says}, bound {row.high:.3g}"))
    if rv.is_final and any("volume alone" in r for r in rv.reasons):
        focus = table[table["focus"]] if table["focus"].any() else table
        short = focus[focus["status"].eq("not met") & focus["short_of_peers"]]
        ok = bool(len(book)) and bool(book["shrank"].any()) and all(METRICS[m].kind == "count"
                                                                    for m in short["metric"])
        claims.append(Claim("book", where, ok and rv.recommendation == "extend",
                            "'volume alone' without a shrunken book or with a non-volume shortfall"))
    if rv.is_final:
        focus = table[table["focus"]] if table["focus"].any() else table
        if rv.recommendation == "complete":
            evidence = focus["status"].eq("met") | focus["at_peer_level"]
            claims.append(Claim("complete", where, bool(evidence.all()),
                                f"complete without evidence for {list(focus.loc[~evidence, 'metric'])}"))
            hopeless = focus["status"].eq("not met").all() and focus["short_of_peers"].all()
            claims.append(Claim("complete", where, not hopeless, "complete with every focus target not met"))
    verdicts = rv.verdicts
    if len(verdicts):
        said = sentences.verdict_sentences(verdicts)
        for (_, v), sentence in zip(verdicts.iterrows(), said, strict=True):
            if v["verdict"] in ("improved", "worse"):
                null = 0.0 if v["effect"] == "difference in points" else 1.0
                lo, hi = float(v["ci_low"]), float(v["ci_high"])
                up = METRICS[v["metric"]].higher_is_better if v["metric"] in METRICS else True
                better = (lo > null) if up else (hi < null)
                worse = (hi < null) if up else (lo > null)
                ok = better if v["verdict"] == "improved" else worse
                claims.append(Claim("verdict range", where, bool(ok),
                                    f"{v['metric']} {v['verdict']} beside {lo:.4g} to {hi:.4g}"))
            status = table.set_index("metric")["status"].get(v["metric"])
            said_status = re.search(r"(?:Final target|Target) [^:]*: (met|not met|not yet clear|no data) —", sentence)
            if said_status and isinstance(status, str):
                claims.append(Claim("target line", where, said_status.group(1) == status,
                                    f"{v['metric']}: sentence says {said_status.group(1)!r}, table {status!r}"))
    return claims


def check_html(html: str, where: str) -> list[Claim]:
    visible = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S | re.I)
    visible = re.sub(r"<[^>]+>", " ", visible)
    found = LITERAL_MARKDOWN.search(visible)
    return [Claim("literal markdown", where, found is None, found.group(0) if found else "")]


# -- one team, every stage --------------------------------------------------------------------------------------
def check_team(world, *, reps: int | None = None, looks: tuple = (1, 2, 3, "final")) -> list[Claim]:
    """Render and check the scan, every diagnosis, the plans and their reviews of one simulated team.

    Every rep is diagnosed at the diagnosis week; a plan is drafted for each rep that needs one, and for the
    others with a recorded reason (so that plans without a shortfall are checked too); each plan is reviewed at
    ``looks``. ``reps`` limits how many plans (the first reps by id) are reviewed.
    """
    import simworld

    data, panel = world.data, world.panel
    as_of = world.week_end(simworld.DIAGNOSIS_WEEK)
    claims: list[Claim] = []
    card = pn.scorecard(data, as_of=as_of, panel=panel)
    scan_words = text.scan_summary(card, data, panel=panel)
    for rep_id in card["rep_id"].unique():
        claims += check_findings(card, rep_id, scan_words, f"seed {world.seed} scan")
    reviewed = 0
    for rep_id in sorted(card["rep_id"].unique()):
        where = f"seed {world.seed} {rep_id}"
        try:
            dx = pn.diagnose(data, rep_id, as_of=as_of, panel=panel)
        except pn.PipnbError:
            continue
        words = "\n".join([text.diagnosis_summary(dx), text.driver_notes(dx), text.driver_table(dx).to_string(),
                           text.outcome_table(dx).to_string()])
        claims += check_findings(dx.card, rep_id, words, where + " diagnosis")
        claims += check_needs_plan(dx, where)
        if reps is not None and reviewed >= reps:
            continue
        reason = None if dx.needs_plan else "simulation: checking the words of a plan without a shortfall"
        plan = pn.draft_plan(dx, start=world.week_start(simworld.DIAGNOSIS_WEEK + 1).date(), reason=reason)
        claims.append(Claim("plan reason", where, bool(plan.reason) == (not dx.needs_plan),
                            f"needs_plan {dx.needs_plan}, plan reason {plan.reason!r}"))
        plan_words = "\n".join([text.plan_overview(plan), text.plan_areas(plan), text.target_table(plan).to_string()])
        claims += check_arithmetic(plan_words, where + " plan")
        claims += check_findings(dx.card, rep_id, text.plan_areas(plan), where + " plan")
        for look in looks:
            rv = pn.review(data, plan, look, panel=panel)
            claims += check_review(rv, f"{where} {rv.stage}")
        reviewed += 1
    return claims


def summary(claims: list[Claim]) -> pd.DataFrame:
    """Claims checked and false, by kind."""
    frame = pd.DataFrame([(c.kind, c.ok) for c in claims], columns=["kind", "ok"])
    out = frame.groupby("kind")["ok"].agg(checked="size", false=lambda s: int((~s).sum()))
    return out.reset_index()


def false_claims(claims: list[Claim]) -> list[Claim]:
    return [c for c in claims if not c.ok]

