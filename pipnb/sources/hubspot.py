"""``format: hubspot`` — a folder of HubSpot exports: deals, meetings, emails, calls and owners.

Columns are read by their HubSpot property names (``hs_object_id``, ``dealstage``, ``closedate``,
``hubspot_owner_id`` ...) or by the labels a HubSpot export writes instead (``Record ID``, ``Close Date``,
``Activity date`` ...). Timestamps may be millisecond epochs (``1709648530000``) or ISO 8601; associations
are semicolon lists (``Associated Deal IDs``: the first deal that is in deals.csv is taken). A folder
holding ``deals.csv`` and ``owners.csv`` is read as HubSpot without a YAML.

- Outcome: ``hs_is_closed_won`` / ``hs_is_closed`` (else ``dealstage`` against ``won_stages`` /
  ``lost_stages``).
- Emails: only ``hs_email_direction`` = ``EMAIL`` (sent from the CRM) counts; incoming and forwarded
  ones do not.
- Meetings: a ``hs_meeting_outcome`` of ``CANCELED`` or ``NO_SHOW`` does not count.
- Records without an owner belong to no rep and are left out (and listed); reps are the owners who own a
  deal or an activity (or those matching ``reps_when``). An ``archived`` owner is not ``active``.

Warehouse syncs (Fivetran, Airbyte, Stitch) prefix deal properties (``property_dealname``,
``property_closedate``, ``property_hubspot_owner_id``) and name objects ``deal``, ``owner``,
``engagement_meetings`` ...; names match ignoring case, underscores and that prefix, so such a folder, or a
database holding those tables (``url:`` in the source YAML), loads too. Rows flagged ``is_deleted``,
``_fivetran_deleted`` or ``archived`` are left out and counted.

Fivetran's layout keeps engagements in one ``engagement`` table (id, type, owner_id, timestamp) with their deals
and companies in ``engagement_deal`` / ``engagement_company`` and their fields in ``engagement_meeting`` /
``_email`` / ``_call`` (by ``engagement_id``): an ``engagement`` table is read that way (:func:`engagement_exports`;
an engagement without an owner on either table belongs to no rep, filtered and counted). Owners' teams come from
``owner_team`` (named from ``team``) when ``owner`` has no team column; deal outcomes from ``deal_pipeline_stage``
(``closed_won``; ``probability`` 0 is lost) when the deal has no ``hs_is_closed_won``. ``team: NAME`` gives every
rep one team.

.. code-block:: yaml

    format: hubspot
    folder: hubspot-export/             # relative to this file (default: its folder)
    # url: duckdb:///warehouse.duckdb   # or: the tables of a database HubSpot is synced to (schema: ...)
    bad_rows: skip                      # set invalid rows aside and list them (default: stop)
    team_field: Team                    # column of owners.csv (default: team / teams, else owner_team)
    # team: Sales                       # or: one team for every rep (not with team_field)
    pipelines: [default]                # only these pipelines (default: all)
    won_stages: [closedwon]             # used when hs_is_closed_won is not exported
    skip_meeting_outcomes: [CANCELED, NO_SHOW]
    email_directions: [EMAIL]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pipnb.errors import DataError
from pipnb.ledger import BLANKED, FILE, FILTERED, NO_OWNER, SET_ASIDE, Ledger
from pipnb.sources.registry import register
from pipnb.sources.vendor import (
    DELETED,
    Export,
    Shelf,
    VendorSource,
    clean_text,
    column_key,
    config_model,
    open_shelf,
    rule_mask,
)
from pipnb.validate import DATE_FIX, ROW, RawTable, to_dates

# property name first, then the labels HubSpot's exports use for it, then warehouse syncs' names
ID = ("hs_object_id", "Record ID", "deal_id", "engagement_id", "id")
OWNER = ("hubspot_owner_id", "Deal owner", "Activity assigned to", "owner_id")
DEAL_FIELDS = {
    "created": ("createdate", "Create Date"), "close": ("closedate", "Close Date"),
    "amount": ("amount", "Amount"), "won": ("hs_is_closed_won", "Is Closed Won"),
    "closed": ("hs_is_closed", "Is Closed"), "stage": ("dealstage", "Deal Stage", "deal_pipeline_stage_id"),
    "pipeline": ("pipeline", "Pipeline", "deal_pipeline_id"),
}
DEALS_OF = ("associated_deal_ids", "Associated Deal IDs", "associated_deal", "Associated Deal",
            "engagement_deal.deal_id")
COMPANIES_OF = ("associated_company_ids", "Associated Company IDs", "associated_company",
                "Associated Company", "engagement_company.company_id")
TIMESTAMP = ("hs_timestamp", "Activity date", "timestamp")
MEETING_START = ("hs_meeting_start_time", "Meeting start time", "start_time")
MEETING_OUTCOME = ("hs_meeting_outcome", "Meeting outcome", "meeting_outcome")
#: where an email's direction is: its property, or (Fivetran's engagement table) the engagement type
EMAIL_DIRECTION = ("hs_email_direction", "Email direction", "type")
CALL_STATUS = ("hs_call_status", "Call status", "status")
OWNER_FIELDS = {
    "id": ("id", "ownerId", "Owner ID"), "first": ("firstName", "firstname", "first_name", "First Name"),
    "last": ("lastName", "lastname", "last_name", "Last Name"), "email": ("email", "Email"),
    "team": ("team", "teams", "Team", "Teams"), "manager": ("manager", "Manager"),
    "segment": ("segment", "Segment"), "hire_date": ("hire_date", "Hire Date"),
    "active": ("active", "Active", "is_active"), "archived": ("archived", "Archived"),
}
_EXPORT = "export that property (HubSpot property names or the export's labels)"
#: other names of the exported objects (warehouse syncs name them in the singular, or as engagements)
OBJECTS = {"deals": ("deal",), "owners": ("owner",),
           "meetings": ("meeting", "engagement_meetings", "engagements_meetings", "engagement_meeting"),
           "emails": ("email", "engagement_emails", "engagements_emails", "engagement_email"),
           "calls": ("call", "engagement_calls", "engagements_calls", "engagement_call"),
           "engagement": (), "engagement_deal": (), "engagement_company": (), "owner_team": (), "team": (),
           "deal_pipeline_stage": ()}
_PREFIX = re.compile(r"^propert(?:y|ies)_+", re.IGNORECASE)


class HubSpotFiles(BaseModel):
    """File names of the exports, relative to the folder."""

    model_config = ConfigDict(extra="forbid")
    deals: str = "deals.csv"
    meetings: str = "meetings.csv"
    emails: str = "emails.csv"
    calls: str = "calls.csv"
    owners: str = "owners.csv"
    # Fivetran's layout: engagements with their owner, their links to deals and companies, owners' teams
    engagement: str = "engagement.csv"
    engagement_deal: str = "engagement_deal.csv"
    engagement_company: str = "engagement_company.csv"
    owner_team: str = "owner_team.csv"
    team: str = "team.csv"
    deal_pipeline_stage: str = "deal_pipeline_stage.csv"


class HubSpotSource(VendorSource):
    """The ``format: hubspot`` source YAML; every key is optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    format: Literal["hubspot"] = "hubspot"
    files: HubSpotFiles = HubSpotFiles()
    pipelines: list[str] | None = None
    won_stages: list[str] = ["closedwon"]
    lost_stages: list[str] = ["closedlost"]
    email_directions: list[str] | None = ["EMAIL"]
    skip_meeting_outcomes: list[str] = ["CANCELED", "NO_SHOW"]
    skip_call_statuses: list[str] = []


class HubSpotExport(Export):
    """An exported HubSpot file: timestamps may also be millisecond epochs; a sync's ``property_`` prefix
    is ignored in column names."""

    @staticmethod
    def key(name: str) -> str:
        return column_key(_PREFIX.sub("", str(name).strip()))

    def parse_times(self, field: str, timezone: str, *, optional: bool = False) -> pd.Series:
        """Parse a HubSpot date or date-time: a millisecond epoch (UTC) or ISO 8601."""
        column = self.column(field)
        text = self.text(column)
        epoch = text.str.fullmatch(r"\d{12,13}").fillna(False).astype(bool)
        out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
        if epoch.any():
            stamps = pd.to_datetime(text[epoch].astype("int64"), unit="ms", utc=True)
            out[epoch] = stamps.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
        bad = pd.Series(False, index=text.index)
        if (~epoch).any():
            out[~epoch], bad[~epoch], _ = to_dates(text[~epoch], timezone)
        self.set_aside(bad, column, "is not a date", f"{column} '{{value}}' is not a date {DATE_FIX}", values=text,
                       action=BLANKED if optional else SET_ASIDE)
        return out


# -- entry points --------------------------------------------------------------------------------
def is_hubspot_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like a HubSpot export (deals and owners, CSV or Parquet, in any case)."""
    shelf = Shelf(folder)
    return shelf.find(["deals.csv", *OBJECTS["deals"]]) is not None and \
        shelf.find(["owners.csv", *OBJECTS["owners"]]) is not None


@register("hubspot")
def read_hubspot(config: dict, base: Path, *, timezone: str = "UTC",
                 ledger: Ledger | None = None) -> dict[str, RawTable]:
    """Read a HubSpot export described by a source YAML (``format: hubspot``).

    Parameters
    ----------
    config
        The parsed YAML; see :class:`HubSpotSource`.
    base
        The YAML's folder; ``folder:`` is relative to it.
    timezone
        Zone timestamps are converted to (epochs and ``Z`` times are UTC).
    ledger
        The load's record of rows not kept (default: a new one that stops at the first bad row).

    Returns
    -------
    dict of RawTable
        ``reps``, ``opportunities`` and, when meetings, emails or calls are exported, ``activities``.

    Raises
    ------
    SourceError
        A key of the YAML is wrong (the message names it).
    DataError
        A file, property or value is missing or malformed (the message names the file, row and column).
    """
    spec = config_model(HubSpotSource, config)
    objects = [name for key, file in spec.files.model_dump().items() for name in (file, *OBJECTS[key])]
    shelf = open_shelf(spec, base, objects)
    return read_hubspot_folder(shelf, spec=spec, timezone=timezone, ledger=ledger)


def read_hubspot_folder(folder: Path | Shelf, *, spec: HubSpotSource | None = None, timezone: str = "UTC",
                        ledger: Ledger | None = None) -> dict[str, RawTable]:
    """Read the HubSpot exports in ``folder`` (or a database's tables) into canonical raw tables (defaults:
    :class:`HubSpotSource`)."""
    spec = spec or HubSpotSource()
    ledger = ledger or Ledger()

    def read(key: str, table: str = "", required: bool = False) -> HubSpotExport | None:
        file = getattr(spec.files, key)
        names = [file, *OBJECTS[key]] if file == HubSpotFiles.model_fields[key].default else [file]
        return HubSpotExport.read(folder, names, required=required, table=table, ledger=ledger)

    owners = read("owners", "reps", required=True)
    deal_file = read("deals", "opportunities", required=True)
    owner_ids = _owner_ids(owners)
    exported = set(deal_file.text(deal_file.field(ID, fix=_EXPORT)).dropna())   # before any filter
    deals = _deals(deal_file.drop_deleted((*DELETED, "archived")), spec, owners, owner_ids, timezone,
                   stages=read("deal_pipeline_stage"))
    engagements = read("engagement", "activities")
    if engagements is not None:           # Fivetran's layout: one engagement table, the rest joined to it
        exports = engagement_exports(engagements.drop_deleted((*DELETED, "archived")), read)
    else:
        exports = {kind: export.drop_deleted((*DELETED, "archived")) for kind in ("meeting", "email", "call")
                   if (export := read(f"{kind}s", "activities")) is not None}
    parts = [_activities(export, kind, spec, exported, deal_file.name, owners, owner_ids, timezone)
             for kind, export in exports.items()]
    acts = pd.concat(parts, ignore_index=True) if parts else None
    owner_fields = {"opportunities": deal_file.field(OWNER),
                    "activities": next((e.field(OWNER) for e in exports.values() if e.field(OWNER)), OWNER[0])}
    reps, deals, acts = _select_reps(owners, owner_ids, spec, deals, acts, timezone, owner_fields,
                                     teams=read("owner_team"), team_names=read("team"))
    tables = {"reps": RawTable(reps, owners.name), "opportunities": RawTable(deals, deal_file.name)}
    if acts is not None:
        tables["activities"] = RawTable(acts, " + ".join(dict.fromkeys(e.name for e in exports.values())))
    return tables


# -- Fivetran's engagement layout ------------------------------------------------------------------
#: engagement types that count, by kind (other types, notes and tasks, are filtered and listed)
ENGAGEMENT_KINDS = {"MEETING": "meeting", "EMAIL": "email", "INCOMING_EMAIL": "email", "FORWARDED_EMAIL": "email",
                    "CALL": "call"}


def engagement_exports(engagements: HubSpotExport, read) -> dict[str, HubSpotExport]:
    """The meetings, emails and calls of Fivetran's ``engagement`` table (id, type, owner_id, timestamp), each
    joined with its fields (``engagement_meeting`` ...) and its deals and companies (``engagement_deal``,
    ``engagement_company``, by ``engagement_id``). Rows and messages stay the engagement table's; an
    engagement whose owner is blank takes the per-type table's ``hubspot_owner_id``."""
    id_field = engagements.field(("id", "engagement_id"), fix="export the engagement's `id`")
    ids = engagements.text(id_field)
    type_field = engagements.field(("type", "engagement_type"),
                                   fix="export the engagement's `type` (MEETING, EMAIL, CALL ...)")
    kinds = engagements.text(type_field).str.upper().map(ENGAGEMENT_KINDS)
    engagements = engagements.keep(kinds.notna(), "not a meeting, email or call (its type)", column=type_field)
    frame = engagements.frame
    ids = ids[frame.index]
    for key, column, other in (("engagement_deal", DEALS_OF[-1], "deal_id"),
                               ("engagement_company", COMPANIES_OF[-1], "company_id")):
        links = read(key)
        if links is not None:
            links = links.drop_deleted()
            of = links.text(links.field(("engagement_id",), fix="export the engagement_id of each link"))
            to = links.text(links.field((other,), fix=f"export the {other} of each link"))
            joined = to.groupby(of).agg(lambda s: ";".join(s.dropna()))
            frame = frame.assign(**{column: ids.map(joined).astype("string")})
    exports = {}
    for kind in ("meeting", "email", "call"):
        mine = (kinds[frame.index] == kind).to_numpy(bool)
        if not mine.any():
            continue
        rows = frame[mine]
        detail = read(f"{kind}s")
        if detail is not None:
            rows = _with_detail(rows, ids[rows.index], detail.drop_deleted(), engagements)
        exports[kind] = HubSpotExport(rows, engagements.name, table=engagements.table, ledger=engagements.ledger,
                                      aside=engagements.aside[mine])
    return exports


def _with_detail(rows: pd.DataFrame, ids: pd.Series, detail: HubSpotExport, engagements: Export) -> pd.DataFrame:
    """``rows`` of the engagement table with the columns of their per-type table (one row per engagement_id);
    a column the engagement table has already is its own, but a blank owner takes the per-type one."""
    of = detail.text(detail.field(("engagement_id",), fix="export the engagement_id of each row"))
    mine = {detail.key(c) for c in rows.columns}
    keep = [c for c in detail.frame.columns if c not in (ROW, FILE) and detail.key(c) not in mine
            and detail.key(c) != "engagementid"]
    extra = detail.frame[keep].assign(_of=of.to_numpy()).drop_duplicates("_of").set_index("_of")
    joined = rows.assign(_of=ids.to_numpy()).join(extra, on="_of").drop(columns="_of")
    owner, theirs = engagements.column("owner_id"), detail.first_of(OWNER[:3])
    if owner is not None and theirs is not None:
        joined[owner] = clean_text(joined[owner].astype("string")).fillna(clean_text(joined[theirs]))
        joined = joined.drop(columns=[theirs])
    return joined


# -- objects ---------------------------------------------------------------------------------------
def _owner_ids(owners: Export) -> pd.Series:
    field = owners.field(OWNER_FIELDS["id"], fix="export the owner id (`id` in HubSpot's owners API)")
    ids = owners.text(field)
    owners.require_filled(ids, field)
    owners.check_unique(ids, field)
    return ids.where(owners.good)


def _deals(deals: Export, spec: HubSpotSource, owners: Export, owner_ids: pd.Series,
           timezone: str, *, stages: Export | None = None) -> pd.DataFrame:
    if spec.pipelines is not None:
        field = deals.field(DEAL_FIELDS["pipeline"], fix="export it or remove `pipelines`")
        pipeline = deals.text(field)
        deals = deals.keep(_key(pipeline).isin(_keys(spec.pipelines)).astype(bool),
                           f"not in the pipelines {', '.join(spec.pipelines)} (pipelines)", column=field)
    id_field = deals.field(ID, fix=_EXPORT)
    ids = deals.text(id_field)
    deals.require_filled(ids, id_field)
    deals.check_unique(ids, id_field)
    owner_field = deals.field(OWNER, fix=_EXPORT)
    owner = _owner_of(deals, owner_field, owners, owner_ids)
    won, closed = _outcome(deals, spec, stages)
    created = deals.stamps(DEAL_FIELDS["created"], timezone, fix=_EXPORT)
    # validate() ignores an open deal's close date (a forecast) and moves one before the creation to it
    close = deals.stamps(DEAL_FIELDS["close"], timezone, fix=_EXPORT, required_rows=closed, optional=True)
    frame = pd.DataFrame({
        ROW: deals.rows, FILE: deals.frame[FILE], "opp_id": ids, "rep_id": owner, "created_at": created,
        "closed_at": close, "outcome": np.select([won, closed], ["won", "lost"], "open"),
    })
    if (amount := deals.first_of(DEAL_FIELDS["amount"])) is not None:
        frame["amount"] = deals.text(amount)
    if (company := deals.first_of(COMPANIES_OF)) is not None:
        frame["account_id"] = _first_of_list(deals.text(company), set())
    return frame[deals.good]


def _outcome(deals: Export, spec: HubSpotSource, stages: Export | None = None) -> tuple[pd.Series, pd.Series]:
    """Won and closed: from hs_is_closed_won / hs_is_closed, else from the deal's stage — named in
    ``won_stages`` / ``lost_stages``, or (Fivetran's ``deal_pipeline_stage``) a stage whose ``closed_won`` is
    true is won and one whose ``probability`` is 0 is lost."""
    won_field = deals.first_of(DEAL_FIELDS["won"])
    closed_field = deals.first_of(DEAL_FIELDS["closed"])
    if won_field and closed_field:
        won = deals.flags(won_field)
        return won, deals.flags(closed_field) | won
    stage_field = deals.first_of(DEAL_FIELDS["stage"])
    if stage_field is None:
        raise DataError("columns hs_is_closed and hs_is_closed_won are missing; export them (or dealstage, "
                        "read with `won_stages` / `lost_stages` of the source YAML)", file=deals.name)
    text = deals.text(stage_field)
    stage = _key(text)
    won = stage.isin(_keys(spec.won_stages)).astype(bool)
    lost = stage.isin(_keys(spec.lost_stages)).astype(bool)
    if stages is not None:
        stages = stages.drop_deleted()
        ids = stages.text(stages.field(("stage_id", "id"), fix="export each stage's stage_id"))
        closed_won = stages.flags(stages.field(("closed_won",), fix="export each stage's closed_won flag"))
        chance = pd.to_numeric(stages.text(stages.first_of(("probability",))), errors="coerce")
        won |= text.isin(set(ids[closed_won & stages.good].dropna())).astype(bool)
        lost |= text.isin(set(ids[~closed_won & chance.eq(0) & stages.good].dropna())).astype(bool)
    return won, won | lost


def _activities(export: Export, kind: str, spec: HubSpotSource, deal_ids: set, deal_file: str, owners: Export,
                owner_ids: pd.Series, timezone: str) -> pd.DataFrame:
    counted, reason, field = _counted(export, kind, spec)
    export = export.keep(counted, reason, column=field or "")
    id_field = export.field(ID, fix=_EXPORT)
    ids = export.text(id_field)
    export.require_filled(ids, id_field)
    export.check_unique(ids, id_field)
    owner = _owner_of(export, export.field(OWNER, fix=_EXPORT), owners, owner_ids)
    times = [*MEETING_START, *TIMESTAMP] if kind == "meeting" else list(TIMESTAMP)
    when = export.stamps([f for f in times if export.has(f)] or [TIMESTAMP[0]], timezone, fix=_EXPORT,
                         required_rows=pd.Series(True, index=export.frame.index))
    deal_field = export.first_of(DEALS_OF)
    deal = _first_of_list(export.text(deal_field), deal_ids)
    deal = export.check_refs(deal, deal_field or DEALS_OF[0], deal_ids, deal_file, optional=True)
    company = _first_of_list(export.text(export.first_of(COMPANIES_OF)), set())
    frame = pd.DataFrame({ROW: export.rows, FILE: export.frame[FILE], "activity_id": ids, "rep_id": owner,
                          "kind": kind, "occurred_at": when, "opp_id": deal, "account_id": company})
    return frame[export.good]


def _counted(export: Export, kind: str, spec: HubSpotSource) -> tuple[pd.Series, str, str | None]:
    """Rows that count as the rep's activity (sent emails, meetings that took place, calls), why the others
    do not, and the field that says so."""
    everything = pd.Series(True, index=export.frame.index)
    if kind == "email" and spec.email_directions is not None:
        field = export.field(EMAIL_DIRECTION,
                             fix="export it or set `email_directions: null` in the source YAML")
        return (_key(export.text(field)).isin(_keys(spec.email_directions)).astype(bool),
                f"not a sent email (email_directions: {', '.join(spec.email_directions)})", field)
    if kind == "meeting" and spec.skip_meeting_outcomes:
        field = export.field(MEETING_OUTCOME,
                             fix="export it or set `skip_meeting_outcomes: []` in the source YAML")
        return (~_key(export.text(field)).isin(_keys(spec.skip_meeting_outcomes)).astype(bool),
                f"did not take place (skip_meeting_outcomes: {', '.join(spec.skip_meeting_outcomes)})", field)
    if kind == "call" and spec.skip_call_statuses:
        field = export.field(CALL_STATUS,
                             fix="export it or set `skip_call_statuses: []` in the source YAML")
        return (~_key(export.text(field)).isin(_keys(spec.skip_call_statuses)).astype(bool),
                f"not counted (skip_call_statuses: {', '.join(spec.skip_call_statuses)})", field)
    return everything, "", None


def _owner_of(export: Export, field: str, owners: Export, owner_ids: pd.Series) -> pd.Series:
    """Owner ids of ``field``; an export that wrote owner names instead is mapped back to ids."""
    value = export.text(field)
    names = _owner_names(owners)[owners.good]
    unique = names[~names.duplicated(keep=False)]
    by_name = dict(zip(unique.str.lower(), owner_ids[unique.index], strict=True))
    known = set(owner_ids.dropna())
    owner = value.where(value.isin(known), value.str.lower().map(by_name))
    export.check_refs(owner.fillna(value), field, known, owners.name)
    return owner


def _select_reps(owners: Export, owner_ids: pd.Series, spec: HubSpotSource, deals: pd.DataFrame,
                 acts: pd.DataFrame | None, timezone: str, owner_fields: dict[str, str], *,
                 teams: Export | None = None,
                 team_names: Export | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Reps are the owners of records (or those matching ``reps_when``); others' records are dropped and
    listed: those without an owner, and (with ``reps_when``) those of owners who are not reps."""
    ledger = owners.ledger
    if spec.reps_when is not None:
        chosen = set(owner_ids[rule_mask(owners, spec.reps_when, "reps_when") & owners.good])
        reason = "not a rep (reps_when)"
    else:
        chosen = set(deals["rep_id"].dropna()) | (set(acts["rep_id"].dropna()) if acts is not None else set())
        reason = "not a rep: owns no deal or activity"
    deal_owner, act_owner = owner_fields["opportunities"], owner_fields["activities"]
    ledger.flag("opportunities", deals, deals["rep_id"].isna(), column=deal_owner, action=FILTERED,
                reason=NO_OWNER)
    ledger.flag("opportunities", deals, deals["rep_id"].notna() & ~deals["rep_id"].isin(chosen),
                column=deal_owner, action=FILTERED, values=deals["rep_id"],
                reason="its owner is not a rep (reps_when)")
    kept = deals[deals["rep_id"].isin(chosen)]
    if acts is not None:
        ledger.flag("activities", acts, acts["rep_id"].isna(), column=act_owner, action=FILTERED,
                    reason="no owner: the activity belongs to no rep")
        ledger.flag("activities", acts, acts["rep_id"].notna() & ~acts["rep_id"].isin(chosen),
                    column=act_owner, action=FILTERED, values=acts["rep_id"],
                    reason="its owner is not a rep (reps_when)")
        acts = acts[acts["rep_id"].isin(chosen)]
        lost = acts["opp_id"].notna() & ~acts["opp_id"].isin(set(kept["opp_id"]))
        ledger.flag("activities", acts, lost, column="associated_deal_ids", action=BLANKED, stops=False,
                    values=acts["opp_id"], reason="its deal was left out")
        acts = acts.assign(opp_id=acts["opp_id"].mask(lost))
    reps = owners.keep(owner_ids.isin(chosen), reason, column=owners.column(OWNER_FIELDS["id"][0]) or "id")
    return _reps(reps, owner_ids, spec, timezone, teams, team_names), kept, acts


def _reps(reps: Export, owner_ids: pd.Series, spec: HubSpotSource, timezone: str, teams: Export | None = None,
          team_names: Export | None = None) -> pd.DataFrame:
    if spec.team is not None:                                     # one team for every rep
        team = pd.Series(spec.team.strip(), index=reps.frame.index, dtype="string")
    elif spec.team_field is None and reps.first_of(OWNER_FIELDS["team"]) is None and teams is not None:
        team = _owner_teams(teams, team_names)
        ids = owner_ids[reps.frame.index]
        team = ids.map(team).astype("string")
        reps.set_aside(team.isna(), reps.first_of(OWNER_FIELDS["id"]) or "id", f"has no team in {teams.name}",
                       f"owner '{{value}}' has no team in {teams.name}; add one there (or set `team: NAME` in the "
                       "source YAML)", values=ids)
    else:
        team_field = spec.team_field or reps.field(
            OWNER_FIELDS["team"], fix="add each owner's team, sync owner_team, or set `team_field` (a column) or "
                                      "`team: NAME` (one team for all) in the source YAML")
        team = _first_of_list(reps.text(team_field, fix="export it or choose another `team_field`"), set())
        reps.require_filled(team, team_field, fix=f"fill it in {reps.name} or choose another `team_field`")
    frame = pd.DataFrame({ROW: reps.rows, FILE: reps.frame[FILE], "rep_id": owner_ids[reps.frame.index],
                          "rep_name": _owner_names(reps), "team": team})
    optional = {"manager": None, "segment": spec.segment_field, "hire_date": spec.hire_date_field}
    for column, chosen in optional.items():
        field = chosen or reps.first_of(OWNER_FIELDS[column])
        if field is None:
            continue
        if column == "hire_date":
            frame[column] = reps.stamps([field], timezone, fix="export it or remove `hire_date_field`",
                                        optional=True)
        else:
            frame[column] = reps.text(field, fix=f"export it or remove `{column}_field`")
    if (active := reps.first_of(OWNER_FIELDS["active"])) is not None:
        frame["active"] = reps.text(active)
    elif (archived := reps.first_of(OWNER_FIELDS["archived"])) is not None:
        frame["active"] = reps.text(archived).str.lower().map({"true": "false", "false": "true"}).fillna(
            reps.text(archived))
    return frame[reps.good]


def _owner_teams(teams: Export, names: Export | None) -> dict[str, str]:
    """Each owner's team from Fivetran's ``owner_team`` (owner_id, team_id; the primary team first when
    ``is_team_primary`` says so), named from the ``team`` table (id, name) when it is there."""
    teams = teams.drop_deleted()
    owner = teams.text(teams.field(("owner_id",), fix="export the owner_id of each owner's team"))
    team = teams.text(teams.field(("team_id", "name", "team_name"), fix="export the team_id of each owner's team"))
    if (label := teams.first_of(("team_name", "name"))) is not None:
        team = teams.text(label).fillna(team)
    elif names is not None:
        names = names.drop_deleted()
        named = dict(zip(names.text(names.field(("id", "team_id"), fix="export each team's id")),
                         names.text(names.field(("name", "team_name"), fix="export each team's name")), strict=True))
        team = team.map(named).fillna(team)
    primary = teams.text(teams.first_of(("is_team_primary", "is_primary", "primary"))).str.lower()
    order = (~primary.isin(["true", "1", "yes", "t"])).astype(int)
    frame = pd.DataFrame({"owner": owner, "team": team, "order": order}).dropna()
    frame = frame.sort_values("order", kind="stable").drop_duplicates("owner")
    return dict(zip(frame["owner"], frame["team"], strict=True))


def _owner_names(owners: Export) -> pd.Series:
    first = owners.text(owners.first_of(OWNER_FIELDS["first"]))
    last = owners.text(owners.first_of(OWNER_FIELDS["last"]))
    name = clean_text(first.fillna("") + " " + last.fillna(""))
    email = owners.text(owners.first_of(OWNER_FIELDS["email"]))
    ids = owners.text(owners.first_of(OWNER_FIELDS["id"]))
    return name.fillna(email).fillna(ids)


# -- values ----------------------------------------------------------------------------------------
def _key(text: pd.Series) -> pd.Series:
    """Enumeration values compared loosely: ``NO_SHOW``, ``No show`` and ``no-show`` are one key."""
    return text.str.lower().str.replace(r"[^0-9a-z]", "", regex=True).fillna("")


def _keys(values: list[str]) -> list[str]:
    return [re.sub(r"[^0-9a-z]", "", v.lower()) for v in values]


def _first_of_list(text: pd.Series, known: set) -> pd.Series:
    """From semicolon lists, the first item among ``known`` (else the first item)."""
    if not text.str.contains(";", regex=False).fillna(False).any():
        return text
    items = text.str.split(r"\s*;\s*", regex=True).explode()
    items = items[items.notna() & (items != "")]
    first = items.groupby(level=0).first()
    exists = items[items.isin(known)].groupby(level=0).first()
    return exists.combine_first(first).reindex(text.index).astype("string")
