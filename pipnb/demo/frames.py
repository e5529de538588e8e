"""Turn the demo's drawn arrays into the canonical tables of a :class:`~pipnb.data.SalesData`.

The generators work on integer codes and business-day floats; :func:`to_sales_data` numbers the
opportunities by creation time and the activities by time, gathers ids and labels with Arrow (fast for
millions of rows), and gives every column the order and type that loading the tables back from
``data.write(folder)`` gives, so a written and reloaded demo has the same fingerprint.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipnb.data import SalesData
from pipnb.demo.activities import Acts
from pipnb.demo.opportunities import Opps
from pipnb.demo.team import ACCOUNT_BOOK, Roster
from pipnb.demo.workdays import Calendar
from pipnb.schema import OPTIONAL, REQUIRED

_KINDS = pa.array(["email", "call", "meeting"])   # by activities.EMAIL, CALL, MEETING
_OUTCOMES = pa.array(["open", "won", "lost"])


def to_sales_data(roster: Roster, opps: Opps, acts: Acts, cal: Calendar, seed: int) -> SalesData:
    """The ``reps``, ``opportunities`` and ``activities`` tables, with a ``source`` naming the arguments."""
    hired = cal.start.to_datetime64().astype("datetime64[D]") + (7 * roster.hire_week).astype("m8[D]")
    reps = roster.frame.assign(hire_date=hired.astype("datetime64[ns]"))
    rep_ids = pa.array(reps["rep_id"].tolist())
    order = np.argsort(opps.created, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    opp_ids = _ids("OPP", order.size, 6)
    accounts = _ids("ACC", len(rep_ids) * ACCOUNT_BOOK, 5)
    tables = {"reps": reps,
              "opportunities": _opportunity_frame(opps, order, opp_ids, rep_ids, accounts, cal),
              "activities": _activity_frame(acts, rank, opp_ids, rep_ids, accounts, cal)}
    return SalesData(**{name: frame[[c for c in REQUIRED[name] + OPTIONAL[name] if c in frame]]
                        for name, frame in tables.items()},
                     source=f"pipnb demo (seed={seed}, reps={len(reps)}, weeks={cal.weeks})")


def _pick(table: pa.Array, index: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    """``table[index]`` as a ``str`` column, with NaN where ``missing``; gathered by Arrow, fast."""
    return table.take(pa.array(index, mask=missing)).to_pandas()


def _ids(prefix: str, count: int, least: int) -> pa.Array:
    """``prefix`` + 1..count zero-padded to at least ``least`` digits."""
    digits = pc.cast(pa.array(np.arange(1, count + 1)), pa.string())
    padded = pc.utf8_lpad(digits, width=max(least, len(str(count))), padding="0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _opportunity_frame(opps: Opps, order: np.ndarray, opp_ids: pa.Array, rep_ids: pa.Array,
                       accounts: pa.Array, cal: Calendar) -> pd.DataFrame:
    is_open = opps.closed[order] >= cal.end_x
    closed_at = cal.stamps(opps.closed[order]).astype("datetime64[ns]")
    closed_at[is_open] = np.datetime64("NaT")
    outcome = np.where(is_open, 0, np.where(opps.won[order], 1, 2))
    return pd.DataFrame({
        "opp_id": opp_ids.to_pandas(),
        "rep_id": _pick(rep_ids, opps.rep[order]),
        "account_id": _pick(accounts, opps.account[order]),
        "created_at": cal.stamps(opps.created[order]).astype("datetime64[ns]"),
        "closed_at": closed_at,
        "outcome": _pick(_OUTCOMES, outcome),
        "amount": opps.amount[order],
    })


def _activity_frame(acts: Acts, rank: np.ndarray, opp_ids: pa.Array, rep_ids: pa.Array,
                    accounts: pa.Array, cal: Calendar) -> pd.DataFrame:
    stamps = cal.stamps(acts.x) + acts.weekend.astype("timedelta64[D]")
    order = np.argsort(stamps, kind="stable")
    opp = acts.opp[order]
    return pd.DataFrame({
        "activity_id": _ids("ACT", order.size, 7).to_pandas(),
        "rep_id": _pick(rep_ids, acts.rep[order]),
        "kind": _pick(_KINDS, acts.kind[order]),
        "occurred_at": stamps[order].astype("datetime64[ns]"),
        "opp_id": _pick(opp_ids, rank[np.maximum(opp, 0)], missing=opp < 0),
        "account_id": _pick(accounts, acts.account[order]),
    })
