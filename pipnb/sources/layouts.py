"""Write sales data in a CRM's export layout: the demo team as a Salesforce or HubSpot export.

The files follow what each product's export holds, so the vendor adapters can be tried (and tested) on
the demo team: ``pipnb demo-data --layout salesforce`` writes Opportunity.csv, Task.csv, Event.csv and
User.csv; ``--layout hubspot`` writes deals.csv, meetings.csv, emails.csv, calls.csv and owners.csv.
Loading the folder back gives the same tables, except that Salesforce keeps a close *date*
(``CloseDate``), not a close time, and gives reps Salesforce ids.

Example
-------
>>> from pipnb.demo import demo_data
>>> write_layout(demo_data(), "data/demo-sf", "salesforce")      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.errors import SourceError
from pipnb.io import atomic_write_table
from pipnb.sources.salesforce import salesforce_id18

LAYOUTS = ("salesforce", "hubspot")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def write_layout(data: SalesData, folder: str | Path, layout: Literal["salesforce", "hubspot"]) -> Path:
    """Write ``data`` as a Salesforce or HubSpot export into ``folder`` (each file atomically).

    Parameters
    ----------
    data
        Validated sales data (e.g. :func:`pipnb.demo.demo_data`).
    folder
        Created when missing.
    layout
        ``"salesforce"`` or ``"hubspot"``.

    Returns
    -------
    pathlib.Path
        The folder, ready for ``pipnb scan --data FOLDER``.
    """
    if layout not in LAYOUTS:
        raise SourceError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = _salesforce(data) if layout == "salesforce" else _hubspot(data)
    for name, frame in files.items():
        atomic_write_table(frame, folder / name)
    return folder


# -- Salesforce ------------------------------------------------------------------------------------
def _salesforce(data: SalesData) -> dict[str, pd.DataFrame]:
    reps, opps = data.reps, data.opportunities
    managers = _managers(reps)
    user_id = dict(zip([*reps["rep_id"], *managers], _sf_ids("005", len(reps) + len(managers)), strict=True))
    opp_id = dict(zip(opps["opp_id"], _sf_ids("006", len(opps)), strict=True))
    accounts = _accounts(data)
    account_id = dict(zip(accounts, _sf_ids("001", len(accounts)), strict=True))
    files = {"User.csv": _sf_users(reps, managers, user_id),
             "Opportunity.csv": _sf_opportunities(opps, user_id, opp_id, account_id, data.timezone)}
    if data.activities is not None:
        acts = data.activities
        none = pd.Series(np.nan, index=acts.index)
        what = acts["opp_id"].map(opp_id) if "opp_id" in acts else none
        account = acts["account_id"].map(account_id) if "account_id" in acts else none
        links = pd.DataFrame({"OwnerId": acts["rep_id"].map(user_id), "WhatId": what.fillna(account),
                              "AccountId": account})
        meeting = acts["kind"] == "meeting"
        files["Task.csv"] = _sf_tasks(acts[~meeting], links[~meeting], data.timezone)
        files["Event.csv"] = _sf_events(acts[meeting], links[meeting], data.timezone)
    return files


def _sf_users(reps: pd.DataFrame, managers: list[str], user_id: dict) -> pd.DataFrame:
    team_of = reps.drop_duplicates("manager").set_index("manager")["team"] if "manager" in reps else {}
    people = pd.DataFrame({"key": [*reps["rep_id"], *managers], "Name": [*reps["rep_name"], *managers],
                           "team": [*reps["team"], *(team_of[m] for m in managers)]})
    people["Id"] = people["key"].map(user_id)
    by_name = dict(zip(people["Name"], people["Id"], strict=True))
    manager = reps["manager"].map(by_name) if "manager" in reps else pd.Series(None, index=reps.index)
    users = pd.DataFrame({"Id": people["Id"], "Name": people["Name"],
                          "FirstName": people["Name"].str.split(" ", n=1).str[0],
                          "LastName": people["Name"].str.split(" ", n=1).str[1],
                          "IsActive": "true", "UserRole.Name": people["team"],
                          "ManagerId": [*manager, *[None] * len(managers)]})
    if "segment" in reps:
        users["Division"] = [*reps["segment"], *[None] * len(managers)]
    if "hire_date" in reps:
        users["Hire_Date__c"] = [*_day(reps["hire_date"]), *[None] * len(managers)]
    return users


def _sf_opportunities(opps: pd.DataFrame, user_id: dict, opp_id: dict, account_id: dict,
                      timezone: str) -> pd.DataFrame:
    outcome = opps["outcome"]
    expected = opps["created_at"] + pd.Timedelta(days=45)
    frame = pd.DataFrame({
        "Id": opps["opp_id"].map(opp_id), "Name": "Opportunity " + opps["opp_id"].astype(str),
        "AccountId": opps["account_id"].map(account_id) if "account_id" in opps else None,
        "OwnerId": opps["rep_id"].map(user_id),
        "StageName": outcome.map({"won": "Closed Won", "lost": "Closed Lost", "open": "Qualification"}),
        "IsClosed": np.where(outcome == "open", "false", "true"),
        "IsWon": np.where(outcome == "won", "true", "false"),
        "CreatedDate": _sf_datetime(opps["created_at"], timezone),
        "CloseDate": _day(opps["closed_at"].where(outcome != "open", expected)),
    })
    if "amount" in opps:
        frame["Amount"] = opps["amount"]
    return frame


def _sf_tasks(acts: pd.DataFrame, links: pd.DataFrame, timezone: str) -> pd.DataFrame:
    email = acts["kind"] == "email"
    return pd.DataFrame({
        "Id": _sf_ids("00T", len(acts)), **links, "WhoId": None,
        "Subject": np.where(email, "Email: Follow-up", "Call"), "Status": "Completed",
        "Type": np.where(email, "Email", "Call"), "TaskSubtype": np.where(email, "Email", "Call"),
        "ActivityDate": _day(acts["occurred_at"]),
        "CompletedDateTime": _sf_datetime(acts["occurred_at"], timezone),
        "IsClosed": "true",
    })


def _sf_events(acts: pd.DataFrame, links: pd.DataFrame, timezone: str) -> pd.DataFrame:
    start = _sf_datetime(acts["occurred_at"], timezone)
    return pd.DataFrame({
        "Id": _sf_ids("00U", len(acts)), **links, "Subject": "Meeting", "Type": "Meeting",
        "ActivityDateTime": start, "StartDateTime": start,
        "EndDateTime": _sf_datetime(acts["occurred_at"] + pd.Timedelta(minutes=30), timezone),
        "ActivityDate": _day(acts["occurred_at"]), "DurationInMinutes": 30, "IsChild": "false",
    })


def _sf_ids(prefix: str, n: int) -> np.ndarray:
    """``n`` distinct 18-character ids with a key prefix (``005`` users, ``006`` opportunities ...)."""
    numbers = np.arange(1, n + 1)
    digits = np.stack([(numbers // 62**k) % 62 for k in range(9, -1, -1)], axis=1)
    head = np.frombuffer(f"{prefix}5g".encode(), dtype=np.uint8)
    codes = np.hstack([np.tile(head, (n, 1)), np.frombuffer(_BASE62.encode(), dtype=np.uint8)[digits]])
    ids = np.ascontiguousarray(codes.astype(np.uint8)).view("S15").ravel().astype(str)
    return salesforce_id18(ids) if n else np.array([], dtype=str)


def _sf_datetime(stamps: pd.Series, timezone: str) -> pd.Series:
    """``2024-03-05T14:22:10.000+0000``: UTC, as Salesforce exports date-times."""
    utc = stamps.dt.tz_localize(timezone).dt.tz_convert("UTC")
    return utc.dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000").where(stamps.notna())


# -- HubSpot ---------------------------------------------------------------------------------------
def _hubspot(data: SalesData) -> dict[str, pd.DataFrame]:
    reps, opps = data.reps, data.opportunities
    owner_id = dict(zip(reps["rep_id"], _hs_ids(70_000_000, len(reps)), strict=True))
    deal_id = dict(zip(opps["opp_id"], _hs_ids(9_000_000_000, len(opps)), strict=True))
    accounts = _accounts(data)
    company_id = dict(zip(accounts, _hs_ids(5_000_000_000, len(accounts)), strict=True))
    files = {"owners.csv": _hs_owners(reps, owner_id),
             "deals.csv": _hs_deals(opps, owner_id, deal_id, company_id, data.timezone)}
    if data.activities is not None:
        acts = data.activities.reset_index(drop=True)
        common = pd.DataFrame({
            "hs_object_id": _hs_ids(40_000_000_000, len(acts)),
            "hs_timestamp": _epoch_ms(acts["occurred_at"], data.timezone),
            "hubspot_owner_id": acts["rep_id"].map(owner_id),
            "associated_deal_ids": acts["opp_id"].map(deal_id) if "opp_id" in acts else None,
            "associated_company_ids": acts["account_id"].map(company_id) if "account_id" in acts else None,
        })
        files["meetings.csv"] = _hs_meetings(common[acts["kind"] == "meeting"])
        files["emails.csv"] = common[acts["kind"] == "email"].assign(
            hs_email_direction="EMAIL", hs_email_subject="Follow-up")
        files["calls.csv"] = common[acts["kind"] == "call"].assign(
            hs_call_direction="OUTBOUND", hs_call_status="COMPLETED", hs_call_title="Call")
    return files


def _hs_owners(reps: pd.DataFrame, owner_id: dict) -> pd.DataFrame:
    names = reps["rep_name"].str.split(" ", n=1)
    owners = pd.DataFrame({"id": reps["rep_id"].map(owner_id), "firstName": names.str[0],
                           "lastName": names.str[1],
                           "email": names.str.join(".").str.lower() + "@example.com", "team": reps["team"]})
    for column in ("manager", "segment"):
        if column in reps:
            owners[column] = reps[column]
    if "hire_date" in reps:
        owners["hire_date"] = _day(reps["hire_date"])
    return owners


def _hs_deals(opps: pd.DataFrame, owner_id: dict, deal_id: dict, company_id: dict,
              timezone: str) -> pd.DataFrame:
    outcome = opps["outcome"]
    expected = opps["created_at"] + pd.Timedelta(days=45)
    frame = pd.DataFrame({
        "hs_object_id": opps["opp_id"].map(deal_id), "dealname": "Deal " + opps["opp_id"].astype(str),
        "pipeline": "default",
        "dealstage": outcome.map({"won": "closedwon", "lost": "closedlost", "open": "appointmentscheduled"}),
        "createdate": _epoch_ms(opps["created_at"], timezone),
        "closedate": _epoch_ms(opps["closed_at"].where(outcome != "open", expected), timezone),
        "hubspot_owner_id": opps["rep_id"].map(owner_id),
        "hs_is_closed": np.where(outcome == "open", "false", "true"),
        "hs_is_closed_won": np.where(outcome == "won", "true", "false"),
        "associated_company_ids": opps["account_id"].map(company_id) if "account_id" in opps else None,
    })
    if "amount" in opps:
        frame["amount"] = opps["amount"]
    return frame


def _hs_meetings(common: pd.DataFrame) -> pd.DataFrame:
    end = (common["hs_timestamp"].astype("Int64") + 30 * 60_000).astype("string")
    return common.assign(hs_meeting_start_time=common["hs_timestamp"], hs_meeting_end_time=end,
                         hs_meeting_title="Meeting", hs_meeting_outcome="COMPLETED")


def _hs_ids(start: int, n: int) -> np.ndarray:
    """``n`` numeric record ids after ``start``, as HubSpot numbers its records."""
    return (start + np.arange(1, n + 1)).astype(str)


def _epoch_ms(stamps: pd.Series, timezone: str) -> pd.Series:
    """Milliseconds since 1970 (UTC), as HubSpot exports timestamps."""
    utc = stamps.dt.tz_localize(timezone).dt.tz_convert("UTC")
    ms = (utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return ms.astype("Int64").astype("string")


# -- shared ----------------------------------------------------------------------------------------
def _managers(reps: pd.DataFrame) -> list[str]:
    if "manager" not in reps:
        return []
    return [m for m in reps["manager"].dropna().unique() if m not in set(reps["rep_name"])]


def _accounts(data: SalesData) -> list[str]:
    frames = [data.opportunities, data.activities if data.activities is not None else pd.DataFrame()]
    ids = pd.concat([f["account_id"] for f in frames if "account_id" in f]) if any(
        "account_id" in f for f in frames) else pd.Series(dtype=object)
    return sorted(ids.dropna().unique())


def _day(stamps: pd.Series) -> pd.Series:
    return stamps.dt.strftime("%Y-%m-%d").where(stamps.notna())
