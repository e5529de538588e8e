"""The demo team written in a CRM's layout loads back into the same scorecard as the canonical folder."""

from dataclasses import replace

import pandas as pd
import pytest

from pipnb.demo import demo_data
from pipnb.errors import SourceError
from pipnb.peers import scorecard
from pipnb.sources import load
from pipnb.sources.layouts import write_layout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("canonical")
    return load(demo_data(reps=24, weeks=56).write(folder))


@pytest.fixture(scope="module")
def demo_card(demo):
    return by_name(scorecard(demo))


def by_name(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard keyed by rep name (each CRM gives reps its own ids)."""
    return card.drop(columns="rep_id").sort_values(["rep_name", "metric"]).reset_index(drop=True)


def test_hubspot_layout_gives_the_same_scorecard(demo, demo_card, tmp_path):
    folder = write_layout(demo, tmp_path / "hubspot", "hubspot")
    assert sorted(p.name for p in folder.iterdir()) == ["calls.csv", "deals.csv", "emails.csv",
                                                       "meetings.csv", "owners.csv"]
    data = load(folder)
    assert data.source == str(folder)
    pd.testing.assert_frame_equal(by_name(scorecard(data)), demo_card)


def test_salesforce_layout_gives_the_same_scorecard_at_close_date_precision(demo, demo_card, tmp_path):
    folder = write_layout(demo, tmp_path / "salesforce", "salesforce")
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["Event.csv", "Opportunity.csv", "Task.csv", "User.csv"]
    got = by_name(scorecard(load(folder)))
    # Salesforce keeps a close *day* (CloseDate), never before the creation: the only loss
    opps = demo.opportunities
    day = opps["closed_at"].dt.normalize().mask(lambda s: s < opps["created_at"], opps["created_at"])
    expected = by_name(scorecard(replace(demo, opportunities=opps.assign(closed_at=day))))
    pd.testing.assert_frame_equal(got, expected)
    # ... which moves no flag, and no value but the two that need a close time
    original = demo_card
    assert got["flag"].tolist() == original["flag"].tolist()
    same = got["metric"].isin(["sales_cycle_days", "pipeline_velocity"]) | (
        (got["value"] == original["value"]) | (got["value"].isna() & original["value"].isna()))
    assert same.all()


def test_unknown_layout_is_refused(demo, tmp_path):
    with pytest.raises(SourceError, match="layout must be one of salesforce, hubspot"):
        write_layout(demo, tmp_path, "pipedrive")
