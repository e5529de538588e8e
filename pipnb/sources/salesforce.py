"""``format: salesforce`` — a folder of standard Salesforce objects exported with their API field names.

Files (Data Export service, Data Loader or a report export with API names):

- ``Opportunity.csv``: Id, OwnerId, AccountId, StageName, IsClosed, IsWon, CreatedDate, CloseDate, Amount
- ``Task.csv``: Id, OwnerId, WhatId, AccountId, ActivityDate, CompletedDateTime, Status, TaskSubtype ...
- ``Event.csv``: Id, OwnerId, WhatId, AccountId, ActivityDateTime / StartDateTime / ActivityDate ...
- ``User.csv``: Id, Name, ManagerId and a team field (``UserRole.Name`` or ``Department``)

A folder holding ``Opportunity.csv`` and ``User.csv`` is read as Salesforce without a YAML. Ids are
normalized to their 15-character case-sensitive form (an 18-character id is the 15-character one plus a
checksum that encodes the case, which is restored). Outcome comes from IsClosed / IsWon; a ``WhatId``
with the Opportunity key prefix ``006`` links an activity to an opportunity. Reps are the users who own
an opportunity, a task or an event (or those matching ``reps_when``). Only completed tasks count
(``task_status``); a task's time is CompletedDateTime, else ActivityDate (``task_time``); an event's is
ActivityDateTime, StartDateTime, else ActivityDate (``event_time``). An opportunity closes on its
CloseDate (:func:`pipnb.validate.validate` closes a deal logged after it closed when it was created, and
ignores an open deal's CloseDate, a forecast). ``IsActive`` gives the reps' ``active``.

Warehouse syncs (Fivetran, Airbyte, Stitch) name the same fields in snake_case (``owner_id``,
``is_closed``, ``created_date``); fields and objects match ignoring case and underscores, so a folder of
``opportunity.csv``, ``user.csv`` ... or a database holding those tables (``url:`` in the source YAML)
loads too. Rows flagged ``IsDeleted``, ``_fivetran_deleted`` or ``_sdc_deleted_at`` are left out and
counted. Every row not kept (a to-do task, an invitee's copy of an event, a user who owns nothing) is
listed in the load's data quality.

.. code-block:: yaml

    format: salesforce
    folder: export/                     # relative to this file (default: its folder)
    # url: duckdb:///warehouse.duckdb   # or: the tables of a database the CRM is synced to
    # schema: salesforce                #     (url_env: a variable holding the URL)
    bad_rows: skip                      # set invalid rows aside and list them (default: stop)
    team_field: Department              # default: UserRole.Name, else Department; UserRoleId is
                                        # named from UserRole.csv (a Data Export) when it is there
    # team: Sales                       # or: one team for every rep (not with team_field)
    email_when: {field: TaskSubtype, values: [Email, ListEmail]}
    call_when: [{field: TaskSubtype, values: [Call]}, {field: Subject, pattern: "^call"}]
    meeting_when: {field: Type, values: [Meeting]}     # default: every event is a meeting

The helpers below the Salesforce reader (:class:`Export`, :class:`Rule`, :func:`rule_mask`,
:func:`config_model`) live in :mod:`pipnb.sources.vendor`, shared with the HubSpot adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pipnb.errors import DataError
from pipnb.ledger import BLANKED, FILE, FILTERED, NO_OWNER, Ledger
from pipnb.sources.registry import register
from pipnb.sources.vendor import (
    Export,
    Rule,
    Rules,
    Shelf,
    VendorSource,
    clean_text,
    config_model,
    open_shelf,
    rule_mask,
)
from pipnb.validate import ROW, RawTable

OPPORTUNITY_PREFIX, ACCOUNT_PREFIX, USER_PREFIX = "006", "001", "005"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"   # checksum alphabet of 18-character ids
_API = "add it to the export (Salesforce API field names)"


# -- source YAML -------------------------------------------------------------------------------


class SalesforceFiles(BaseModel):
    """File names of the exported objects, relative to the folder."""

    model_config = ConfigDict(extra="forbid")
    Opportunity: str = "Opportunity.csv"
    Task: str = "Task.csv"
    Event: str = "Event.csv"
    User: str = "User.csv"
    UserRole: str = "UserRole.csv"


class SalesforceSource(VendorSource):
    """The ``format: salesforce`` source YAML; every key is optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    format: Literal["salesforce"] = "salesforce"
    files: SalesforceFiles = SalesforceFiles()
    email_when: Rules = [Rule(field="TaskSubtype", values=["Email", "ListEmail"])]
    call_when: Rules = [Rule(field="TaskSubtype", values=["Call"])]
    meeting_when: Rules | None = None
    task_status: list[str] | None = ["Completed"]
    task_time: list[str] = ["CompletedDateTime", "ActivityDate"]
    event_time: list[str] = ["ActivityDateTime", "StartDateTime", "ActivityDate"]


# -- entry points --------------------------------------------------------------------------------
def is_salesforce_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like a Salesforce export (``Opportunity`` and ``User``, CSV or Parquet, in
    any case: a warehouse sync's ``opportunity.csv`` too)."""
    shelf = Shelf(folder)
    return shelf.find(["Opportunity.csv"]) is not None and shelf.find(["User.csv"]) is not None


@register("salesforce")
def read_salesforce(config: dict, base: Path, *, timezone: str = "UTC",
                    ledger: Ledger | None = None) -> dict[str, RawTable]:
    """Read a Salesforce export described by a source YAML (``format: salesforce``).

    Parameters
    ----------
    config
        The parsed YAML; see :class:`SalesforceSource`.
    base
        The YAML's folder; ``folder:`` is relative to it.
    timezone
        Zone timestamps are converted to (Salesforce exports date-times in UTC).
    ledger
        The load's record of rows not kept (default: a new one that stops at the first bad row).

    Returns
    -------
    dict of RawTable
        ``reps``, ``opportunities`` and, when Task.csv or Event.csv exists, ``activities``.

    Raises
    ------
    SourceError
        A key of the YAML is wrong (the message names it).
    DataError
        A file, field or value is missing or malformed (the message names the file, row and field).
    """
    spec = config_model(SalesforceSource, config)
    shelf = open_shelf(spec, base, list(spec.files.model_dump().values()))
    return read_salesforce_folder(shelf, spec=spec, timezone=timezone, ledger=ledger)


def read_salesforce_folder(folder: Path | Shelf, *, spec: SalesforceSource | None = None, timezone: str = "UTC",
                           ledger: Ledger | None = None) -> dict[str, RawTable]:
    """Read the Salesforce objects in ``folder`` (or a database's tables) into canonical raw tables.

    ``spec`` defaults to :class:`SalesforceSource` ``()``: the standard file names, fields and rules.
    """
    spec = spec or SalesforceSource()
    ledger = ledger or Ledger()
    files = spec.files
    users = Export.read(folder, files.User, required=True, table="reps", ledger=ledger)
    opp = Export.read(folder, files.Opportunity, required=True, table="opportunities", ledger=ledger)
    users = users.drop_deleted()
    user_ids = _user_ids(users)
    exported = set(salesforce_id15(opp.text("Id", fix=_API)).dropna())     # before any filter
    opps = _opportunities(opp.drop_deleted(), set(user_ids[users.good].dropna()), timezone)
    opp_ids = set(opps["opp_id"])
    task = Export.read(folder, files.Task, table="activities", ledger=ledger)
    event = Export.read(folder, files.Event, table="activities", ledger=ledger)
    parts = []
    if task is not None:
        parts.append(_tasks(task.drop_deleted(), spec, exported, user_ids[users.good], timezone))
    if event is not None:
        parts.append(_events(event.drop_deleted(), spec, exported, user_ids[users.good], timezone))
    acts = pd.concat(parts, ignore_index=True) if parts else None
    if acts is not None:    # a link to a deleted (exported, not kept) opportunity is emptied, and listed
        lost = acts["opp_id"].notna() & ~acts["opp_id"].isin(opp_ids)
        ledger.flag("activities", acts, lost, column="WhatId", action=BLANKED, stops=False, values=acts["opp_id"],
                    reason="its opportunity was deleted or left out")
        acts = acts.assign(opp_id=acts["opp_id"].mask(lost))
    roles = Export.read(folder, files.UserRole)
    reps, opps, acts = _select_reps(users, user_ids, spec, opps, acts, roles, timezone)
    tables = {"reps": RawTable(reps, users.name), "opportunities": RawTable(opps, opp.name)}
    if acts is not None:
        tables["activities"] = RawTable(acts, " + ".join(f.name for f in (task, event) if f is not None))
    return tables


# -- ids -------------------------------------------------------------------------------------------
def salesforce_id15(values: pd.Series) -> pd.Series:
    """Normalize Salesforce ids to the 15-character, case-sensitive form used for joining.

    An 18-character id is a 15-character id plus three checksum characters that encode which of its
    letters are upper case; the case is restored from them, so ids that went through a case-insensitive
    tool (a spreadsheet, a database collation) still join. Other values are only stripped.

    Example
    -------
    >>> salesforce_id15(pd.Series(["001A0000006Vm9rIAC", "001a0000006vm9RIAC", "001A0000006Vm9r"])).tolist()
    ['001A0000006Vm9r', '001A0000006Vm9r', '001A0000006Vm9r']
    """
    text = clean_text(values)
    long = text.str.len().eq(18).fillna(False).astype(bool)
    if long.any():
        text = text.copy()
        text[long] = _restore_case(text[long].to_numpy(dtype=str))
    return text


def salesforce_id18(ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
    """The 18-character form of 15-character Salesforce ids (the id plus its case checksum)."""
    ids = np.asarray(ids, dtype=str)
    codes = np.frombuffer("".join(ids).encode("ascii"), dtype=np.uint8).reshape(-1, 15)
    upper = ((codes >= 65) & (codes <= 90)).reshape(-1, 3, 5)
    flags = (upper * (1 << np.arange(5))).sum(axis=2)
    suffix = np.array(list(_SUFFIX))[flags]
    out = ids
    for k in range(3):
        out = np.char.add(out, suffix[:, k])
    return out


def _restore_case(ids: np.ndarray) -> np.ndarray:
    try:
        codes = np.frombuffer("".join(ids).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    except UnicodeEncodeError:
        return np.array([i[:15] for i in ids], dtype=object)
    decode = np.full(256, -1, dtype=np.int16)
    for i, char in enumerate(_SUFFIX):
        decode[ord(char)] = decode[ord(char.lower())] = i
    bits = decode[codes[:, 15:]]
    valid = (bits >= 0).all(axis=1)
    upper = ((np.maximum(bits, 0)[:, :, None] >> np.arange(5)) & 1).reshape(-1, 15).astype(bool)
    body = codes[:, :15]
    letter = ((body | 0x20) >= 97) & ((body | 0x20) <= 122)
    cased = np.where(upper, body & 0xDF, body | 0x20)
    fixed = np.where(letter & valid[:, None], cased, body).astype(np.uint8)
    return np.ascontiguousarray(fixed).view("S15").ravel().astype(str).astype(object)


# -- objects ---------------------------------------------------------------------------------------
def _user_ids(users: Export) -> pd.Series:
    ids = salesforce_id15(users.text("Id", fix=_API))
    users.require_filled(ids, users.column("Id"))
    users.check_unique(ids, users.column("Id"))
    return ids


def _opportunities(opp: Export, user_ids: set, timezone: str) -> pd.DataFrame:
    id_field, owner_field = opp.column("Id"), opp.column("OwnerId")
    ids = salesforce_id15(opp.text("Id", fix=_API))
    opp.require_filled(ids, id_field)
    opp.check_unique(ids, id_field)
    owner = salesforce_id15(opp.text("OwnerId", fix=_API))
    opp.require_filled(owner, owner_field, reason=NO_OWNER)
    opp.check_refs(owner, owner_field, user_ids, users_file(opp))
    won = opp.flags("IsWon", fix=_API)
    closed = opp.flags("IsClosed", fix=_API) | won
    created = opp.stamps(["CreatedDate"], timezone, fix=_API)
    # CloseDate is a day; validate() ignores an open deal's (a forecast) and moves one before the creation to it
    close = opp.stamps(["CloseDate"], timezone, fix=_API, required_rows=closed, optional=True)
    frame = pd.DataFrame({
        ROW: opp.rows, FILE: opp.frame[FILE], "opp_id": ids, "rep_id": owner, "created_at": created,
        "closed_at": close, "outcome": np.select([won, closed], ["won", "lost"], "open"),
    })
    if opp.has("Amount"):
        frame["amount"] = opp.text("Amount")
    if opp.has("AccountId"):
        frame["account_id"] = salesforce_id15(opp.text("AccountId"))
    return frame[opp.good]


def users_file(export: Export) -> str:
    """How messages name the users' object beside ``export`` (``User.csv``, or ``sql:user``)."""
    return "User.csv" if not export.name.startswith("sql:") else "the users table"


def _tasks(task: Export, spec: SalesforceSource, opp_ids: set, user_ids: pd.Series,
           timezone: str) -> pd.DataFrame:
    if spec.task_status is not None:
        status = task.text("Status", fix="export it or set `task_status: null` in the source YAML")
        done = status.str.lower().isin([s.lower() for s in spec.task_status]).fillna(False).astype(bool)
        task = task.keep(done, f"not completed (task_status: {', '.join(spec.task_status)})", column="Status")
    email = rule_mask(task, spec.email_when, "email_when")
    call = rule_mask(task, spec.call_when, "call_when")
    kind = pd.Series(np.select([email, call], ["email", "call"], ""), index=task.frame.index)
    task = task.keep(kind != "", "neither an email nor a call (email_when, call_when)")
    return _activities(task, kind[task.frame.index], spec.task_time, "task_time", opp_ids, user_ids, timezone)


def _events(event: Export, spec: SalesforceSource, opp_ids: set, user_ids: pd.Series,
            timezone: str) -> pd.DataFrame:
    if event.has("IsChild"):          # copies of an event for each invitee
        event = event.keep(~event.flags("IsChild"), "an invitee's copy of an event (IsChild)", column="IsChild")
    if spec.meeting_when is not None:
        event = event.keep(rule_mask(event, spec.meeting_when, "meeting_when"), "not a meeting (meeting_when)")
    kind = pd.Series("meeting", index=event.frame.index)
    return _activities(event, kind, spec.event_time, "event_time", opp_ids, user_ids, timezone)


def _activities(export: Export, kind: pd.Series, time_fields: list[str], key: str, opp_ids: set,
                user_ids: pd.Series, timezone: str) -> pd.DataFrame:
    ids = salesforce_id15(export.text("Id", fix=_API))
    export.require_filled(ids, export.column("Id"))
    export.check_unique(ids, export.column("Id"))
    owner = salesforce_id15(export.text("OwnerId", fix=_API))
    export.require_filled(owner, export.column("OwnerId"))
    export.check_refs(owner, export.column("OwnerId"), set(user_ids), users_file(export))
    what = salesforce_id15(export.text("WhatId"))
    opp_id = what.where(what.str.startswith(OPPORTUNITY_PREFIX).fillna(False).astype(bool))
    opp_id = export.check_refs(opp_id, export.column("WhatId") or "WhatId", opp_ids,
                               "Opportunity.csv" if not export.name.startswith("sql:") else "the opportunities",
                               optional=True)
    account = salesforce_id15(export.text("AccountId"))
    account = account.fillna(what.where(what.str.startswith(ACCOUNT_PREFIX).fillna(False).astype(bool)))
    when = export.stamps(time_fields, timezone, fix=f"export one of them or set `{key}` in the source YAML",
                         required_rows=pd.Series(True, index=export.frame.index))
    frame = pd.DataFrame({ROW: export.rows, FILE: export.frame[FILE], "activity_id": ids, "rep_id": owner,
                          "kind": kind, "occurred_at": when, "opp_id": opp_id, "account_id": account})
    return frame[export.good]


def _select_reps(users: Export, user_ids: pd.Series, spec: SalesforceSource, opps: pd.DataFrame,
                 acts: pd.DataFrame | None, roles: Export | None,
                 timezone: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Reps are the users owning records (or matching ``reps_when``); others' records are dropped (and
    listed as filtered)."""
    ledger = users.ledger
    if spec.reps_when is not None:
        chosen = set(user_ids[rule_mask(users, spec.reps_when, "reps_when")])
        mine = opps["rep_id"].isin(chosen)
        ledger.flag("opportunities", opps, ~mine, column="OwnerId", action=FILTERED, values=opps["rep_id"],
                    reason="its owner is not a rep (reps_when)")
        dropped = set(opps.loc[~mine, "opp_id"])
        opps = opps[mine]
        if acts is not None:
            mine = acts["rep_id"].isin(chosen)
            ledger.flag("activities", acts, ~mine, column="OwnerId", action=FILTERED, values=acts["rep_id"],
                        reason="its owner is not a rep (reps_when)")
            acts = acts[mine]
            lost = acts["opp_id"].isin(dropped)
            ledger.flag("activities", acts, lost, column="WhatId", action=BLANKED, stops=False,
                        values=acts["opp_id"], reason="its opportunity's owner is not a rep (reps_when)")
            acts = acts.assign(opp_id=acts["opp_id"].mask(lost))
        reason = "not a rep (reps_when)"
    else:
        chosen = set(opps["rep_id"]) | (set(acts["rep_id"]) if acts is not None else set())
        reason = "not a rep: owns no opportunity, task or event"
    reps = users.keep(user_ids.isin(chosen), reason, column=users.column("Id"))
    return _reps(reps, users, user_ids, spec, roles, timezone), opps, acts


def _reps(reps: Export, users: Export, user_ids: pd.Series, spec: SalesforceSource, roles: Export | None,
          timezone: str) -> pd.DataFrame:
    if spec.team is not None:           # one team for every rep
        team = pd.Series(spec.team.strip(), index=reps.frame.index, dtype="string")
    else:
        team_field = spec.team_field or reps.first_of(["UserRole.Name", "Department"])
        if team_field is None:
            raise DataError("no team column (UserRole.Name or Department); export one of them, or set "
                            "`team_field` (a column) or `team: NAME` (one team for all) in the source YAML",
                            file=reps.name)
        team = reps.text(team_field, fix="export it or choose another `team_field` in the source YAML")
        if reps.key(team_field) == "userroleid" and roles is not None:     # a Data Export: name the roles
            names = dict(zip(salesforce_id15(roles.text("Id", fix=_API)), roles.text("Name", fix=_API),
                             strict=True))
            team = salesforce_id15(team).map(names).fillna(team)
        reps.require_filled(team, reps.column(team_field) or team_field,
                            fix="fill it in Salesforce or choose another `team_field`")
    frame = pd.DataFrame({ROW: reps.rows, FILE: reps.frame[FILE], "rep_id": user_ids[reps.frame.index],
                          "rep_name": _user_names(reps), "team": team})
    if reps.has("ManagerId"):
        names = pd.Series(_user_names(users).to_numpy(), index=user_ids.to_numpy())
        manager = salesforce_id15(reps.text("ManagerId"))
        frame["manager"] = manager.map(names.to_dict()).fillna(manager)
    segment = spec.segment_field or reps.first_of(["Division"])
    if segment is not None:
        frame["segment"] = reps.text(segment, fix="export it or remove `segment_field` from the source YAML")
    hired = spec.hire_date_field or reps.first_of(["Hire_Date__c"])
    if hired is not None:
        frame["hire_date"] = reps.stamps([hired], timezone, fix="export it or remove `hire_date_field`",
                                         optional=True)
    if reps.has("IsActive"):
        frame["active"] = reps.text("IsActive")
    return frame[reps.good]


def _user_names(users: Export) -> pd.Series:
    if users.has("Name"):
        return users.text("Name")
    first, last = users.text("FirstName", fix="export Name (or FirstName and LastName)"), users.text(
        "LastName", fix="export Name (or FirstName and LastName)")
    return (first.fillna("") + " " + last.fillna("")).str.strip()


# -- helpers shared with the HubSpot adapter -------------------------------------------------------
