"""core.browse: the sets the console shows, tested without a terminal."""

from __future__ import annotations

import polars as pl
import pytest

from core import browse
from core.store import Store
from core.users import current_user
from tests.test_console_fixtures import console_template, shop_path  # noqa: F401  (fixtures)


@pytest.fixture
def store(shop_path):
    with Store.open(shop_path, readonly=True) as opened:
        yield opened


@pytest.fixture
def directory(store):
    return browse.directory(store)


def ids(frame: pl.DataFrame) -> list[str]:
    return frame["customer_id"].to_list()


def test_directory_joins_names_to_the_whole_reading(directory):
    assert directory.population == 16 and directory.model == "rf11" and directory.as_of == "2025-06-29"
    assert directory.frame["customer"].is_sorted()
    row = directory.frame.filter(pl.col("customer_id") == "C001").row(0, named=True)
    assert row["name"] == "Ann Lee" and row["segment"] == "Champions" and row["region"] == "Shanghai"


def test_members_sorted_with_ties_broken_by_row_id(directory):
    lost = browse.members(directory.frame, "Lost")
    assert ids(lost) == ["C012", "C013"]  # $25 in the window before $0 (C013's order is older)
    assert ids(browse.members(directory.frame, "Lost", sort="spend", descending=False)) == ["C013", "C012"]
    loyalists = browse.members(directory.frame, "Potential loyalist", sort="recency")
    assert ids(loyalists) == ["C004", "C015", "C005"]
    again = browse.members(directory.frame, "Potential loyalist", sort="recency")
    assert again.equals(loyalists)


def test_text_filter_words_scores_and_tags(directory):
    frame = directory.frame
    assert ids(browse.filter_members(frame, "ann").sort("customer")) == ["C001", "C002"]  # name contains
    assert ids(browse.filter_members(frame, "c01").sort("customer")) == [f"C01{n}" for n in range(7)]
    assert ids(browse.filter_members(frame, "beijing r4").sort("customer")) == ["C005", "C016"]
    assert ids(browse.filter_members(frame, "tag:affinity:bags").sort("customer")) == [
        "C001", "C002", "C007", "C009", "C010", "C015", "C016"]
    assert browse.filter_members(frame, "   ").height == frame.height
    assert browse.text_filter("") is None


def test_manual_tags_are_members_tags_too(shop_path):
    from core.customers import add_tag, resolve
    from tests.conftest import NOW

    with Store.open(shop_path) as opened:
        add_tag(opened, current_user(opened), resolve(opened, "C004"), "vip", "met at the fair", NOW)
        frame = browse.directory(opened).frame
    assert ids(browse.filter_members(frame, "tag:vip")) == ["C004"]
    row = browse.member_rows(frame.filter(pl.col("customer_id") == "C004")).row(0, named=True)
    assert "vip" in row["tag_list"].split(", ")


def test_member_rows_are_arrow_ready(directory):
    rows = browse.member_rows(browse.members(directory.frame, "Champions"))
    assert rows.columns == ["customer_id", "name", "region", "r_score", "f_score", "m_score", "recency_days",
                            "frequency", "spend", "lifecycle", "churn", "tag_list"]
    first = rows.row(0, named=True)
    assert str(first["spend"]) == "720.00" and first["tag_list"] == "affinity:bags"
    assert rows.to_arrow().num_rows == 2
    zh = browse.member_rows(browse.members(directory.frame, "Champions"), language="zh")
    assert zh["lifecycle"][0] == "活跃"


def test_another_model_is_computed_from_the_reading(store, directory):
    cn8 = browse.in_model(directory, "cn8", store.config)
    assert set(cn8["segment"]) <= {"Important value", "Important develop", "Important retain", "Important win-back",
                                   "General value", "General develop", "General retain", "General win-back",
                                   "Lost", "Prospect"}
    assert browse.in_model(directory, "rf11", store.config) is directory.frame


def test_moved_members_and_flows(store):
    moved_in = browse.moved_members(store, "Potential loyalist", "in")
    assert ids(moved_in) == ["C004", "C015"]
    assert browse.moved_flows(moved_in, "in") == [("New", 1), ("Prospect", 1)]
    moved_out = browse.moved_members(store, "Potential loyalist", "out")
    assert browse.moved_flows(moved_out, "out") == [("About to sleep", 1), ("Champions", 1)]
    rows = browse.moved_rows(moved_in, language="zh")
    assert rows["to_segment"].to_list() == ["潜力忠诚客户", "潜力忠诚客户"]
    with pytest.raises(ValueError):
        browse.moved_members(store, "Lost", "sideways")


def test_lookup_masks_for_support(store, monkeypatch):
    owner = current_user(store, "owner")
    support = current_user(store, "sam")
    [found] = browse.lookup(store, owner, "C001")
    assert found.email == "ann@example.com" and found.segment == "Champions" and found.lifecycle == "active"
    [masked] = browse.lookup(store, support, "ann@example.com")
    assert masked.email == "a**@e******.com" and masked.phone.endswith("8000") and "*" in masked.phone
    assert browse.lookup(store, owner, "nobody at all") == []
    assert browse.match_by_id(store, found.match.id).customer_id == "C001"
