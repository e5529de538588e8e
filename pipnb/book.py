"""The rep's book of accounts: how many accounts the rep worked before and during a plan, against the peers.

A volume metric (opportunities created, first meetings, emails) falls when the rep works less, and also when the
rep has fewer accounts to work: a territory that shrank, accounts reassigned. Where the data carries ``account_id``
(on opportunities and/or activities; both optional, see :data:`pipnb.schema.OPTIONAL`), this module counts the
rep's book in two windows and compares its change with the change the peers show over the same weeks:

* ``accounts_worked`` — distinct accounts with any activity (an activity's own ``account_id``, else its
  opportunity's) or any opportunity created in the window;
* ``new_opp_accounts`` — distinct accounts of the opportunities created in the window.

The test (per measure): the rep's count ratio ``during / before`` over the peers' pooled ratio, on the log scale.
Its variance is quasi-Poisson: ``phi (1/a1 + 1/a0)`` for the rep, plus the variance of the peers' pooled ratio
(the larger of ``phi (1/P1 + 1/P0)`` and the spread of the peers' own ratios over ``k``). ``phi`` is the
one-sided 95% upper bound of the peers' Pearson dispersion (their own log ratios around the pooled one, against
their Poisson variances: ``X2 / chi2_{0.05, k-1}``; 1 with fewer than three peers). Distinct accounts vary less
than Poisson counts when a rep works most of the book (the count is then close to the book's size), so ``phi``
may be below 1; taking its upper bound rather than its estimate keeps a small group's luck from making noise look
like a shrink. The book *shrank* when the whole one-sided interval at :data:`SHRINK_LEVEL` lies more than
:data:`SHRINK_MARGIN` below no change: a rep who works nearly every account of the book has a count that barely
varies, and a precise 3% dip in it is no territory change. Statistics return facts; the words are
:func:`pipnb.text.book_sentence`'s.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipnb._lazy import sps
from pipnb.data import SalesData

BOOK_MEASURES = {"accounts_worked": "accounts worked", "new_opp_accounts": "accounts of new opportunities"}
SHRINK_LEVEL = 0.95     # one-sided: the book shrank when the change's upper 95% bound lies below no change
DISPERSION_LEVEL = 0.95  # the dispersion used is the upper 95% bound of the peers' Pearson estimate
SHRINK_MARGIN = 0.10     # a book within 10% of its size (beyond the peers' change) is never called shrunk
COLUMNS = ["measure", "label", "rep_before", "rep_during", "weeks_before", "weeks_during", "peers_before",
           "peers_during", "n_peers", "rep_change", "peer_change", "relative", "low", "high", "dispersion",
           "level", "shrank", "before_start", "before_end", "during_start", "during_end"]


def has_accounts(data: SalesData) -> bool:
    """Whether any opportunity or activity carries an ``account_id``."""
    return any("account_id" in frame.columns and frame["account_id"].notna().any()
               for frame in (data.opportunities, data.activities) if frame is not None)


def book_counts(data: SalesData, rep_ids: list[str], start: dt.date, end: dt.date) -> pd.DataFrame:
    """Distinct accounts per rep in ``start``..``end`` (dates inclusive): ``rep_id`` x :data:`BOOK_MEASURES`.

    A measure is absent (a missing column) when no row of its tables carries an account."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    opps = data.opportunities
    opp_account = (opps.set_index("opp_id")["account_id"] if "account_id" in opps else pd.Series(dtype=object))
    new = opps[(opps["created_at"] >= lo) & (opps["created_at"] < hi) & opps["rep_id"].isin(rep_ids)]
    new = new.assign(account=new["account_id"] if "account_id" in new else np.nan)[["rep_id", "account"]]
    acts = data.activities
    acts = acts[(acts["occurred_at"] >= lo) & (acts["occurred_at"] < hi) & acts["rep_id"].isin(rep_ids)]
    account = acts["account_id"] if "account_id" in acts else pd.Series(np.nan, index=acts.index, dtype=object)
    if "opp_id" in acts and len(opp_account):
        account = account.where(account.notna(), acts["opp_id"].map(opp_account))
    worked = pd.concat([new, pd.DataFrame({"rep_id": acts["rep_id"], "account": account})]).dropna()
    new = new.dropna()
    out = pd.DataFrame(index=pd.Index(rep_ids, name="rep_id"))
    if opp_account.notna().any():
        out["new_opp_accounts"] = new.groupby("rep_id")["account"].nunique().reindex(out.index).fillna(0)
    if len(worked) or opp_account.notna().any() or ("account_id" in data.activities
                                                    and data.activities["account_id"].notna().any()):
        out["accounts_worked"] = worked.groupby("rep_id")["account"].nunique().reindex(out.index).fillna(0)
    return out[[m for m in BOOK_MEASURES if m in out]]


def book_change(data: SalesData, rep_id: str, peers: list[str], *, before: tuple[dt.date, dt.date],
                during: tuple[dt.date, dt.date], level: float = SHRINK_LEVEL) -> pd.DataFrame:
    """The rep's book during a plan against before it, beyond the peers' same change (one row per measure).

    Parameters
    ----------
    data
        Validated sales data.
    rep_id, peers
        The rep and the peer group.
    before, during
        First and last day of each window (the plan's baseline, and the plan weeks so far).
    level
        One-sided confidence that the book shrank (:data:`SHRINK_LEVEL`).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`: the counts, ``rep_change`` (the rep's per-week ratio), ``peer_change`` (the peers'
        pooled ratio), ``relative`` (their quotient) with its two-sided ``level`` interval ``low``..``high``
        (so ``high`` is the one-sided bound), the dispersion and ``shrank``. Empty when the data carries no
        account (nothing is claimed about territory).
    """
    if not has_accounts(data):
        return pd.DataFrame(columns=COLUMNS)
    weeks_before = ((before[1] - before[0]).days + 1) / 7
    weeks_during = ((during[1] - during[0]).days + 1) / 7
    then, now = (book_counts(data, [rep_id, *peers], *window) for window in (before, during))
    z = float(sps.norm.ppf(level))
    rows = []
    for measure in then.columns:
        a0, a1 = float(then.loc[rep_id, measure]), float(now.loc[rep_id, measure])
        p0, p1 = then.loc[peers, measure].to_numpy(float), now.loc[peers, measure].to_numpy(float)
        keep = (p0 + p1) > 0
        p0, p1 = p0[keep], p1[keep]
        if a0 <= 0 or not len(p0) or p0.sum() <= 0 or p1.sum() <= 0:
            continue
        pooled = np.log(p1.sum() / p0.sum())
        own = np.log((p1 + 0.5) / (p0 + 0.5))
        pearson = float(np.sum((own - pooled) ** 2 / (1 / (p1 + 0.5) + 1 / (p0 + 0.5))))
        phi = pearson / float(sps.chi2.ppf(1 - DISPERSION_LEVEL, len(own) - 1)) if len(own) >= 3 else 1.0
        peer_var = phi * (1 / p1.sum() + 1 / p0.sum())
        if len(own) >= 2:
            peer_var = max(peer_var, float(np.var(own, ddof=1)) / len(own))
        estimate = np.log((a1 + 0.5) / (a0 + 0.5)) - pooled
        se = float(np.sqrt(phi * (1 / (a1 + 0.5) + 1 / (a0 + 0.5)) + peer_var))
        rows.append({
            "measure": measure, "label": BOOK_MEASURES[measure], "rep_before": a0, "rep_during": a1,
            "weeks_before": weeks_before, "weeks_during": weeks_during, "peers_before": float(p0.sum()),
            "peers_during": float(p1.sum()), "n_peers": int(len(p0)),
            "rep_change": (a1 / weeks_during) / (a0 / weeks_before),
            "peer_change": float((p1.sum() / weeks_during) / (p0.sum() / weeks_before)),
            "relative": float(np.exp(estimate)), "low": float(np.exp(estimate - z * se)),
            "high": float(np.exp(estimate + z * se)), "dispersion": phi, "level": level,
            "shrank": bool(estimate + z * se < np.log(1 - SHRINK_MARGIN)), "before_start": before[0],
            "before_end": before[1], "during_start": during[0], "during_end": during[1],
        })
    return pd.DataFrame(rows, columns=COLUMNS)
