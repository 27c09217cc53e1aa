"""Audience expressions: what is accepted, what is refused (one line, naming the problem), what they see."""

import polars as pl
import pytest

from core import audience
from core.customers import add_tag, resolve, set_consent
from core.errors import InputError
from tests.conftest import NOW
from tests.test_campaign_support import campaign_store, user


@pytest.mark.parametrize("text, message", [
    ("segme = 'Lost'", "unknown column 'segme' (did you mean segment?); known columns: customer_id, segment"),
    ("Segment = 'Lost'", "unknown column 'Segment'"),
    ('"nope" = 1', "unknown column 'nope'"),
    ("segment = ", "syntax error in 'segment ='"),
    ("segment = 'Lost", "unterminated string"),
    ("SELECT 1", "subqueries are not allowed (found SELECT)"),
    ("monetary > (SELECT max(monetary) FROM customers)", "subqueries are not allowed"),
    ("segment IN (SELECT segment FROM x)", "subqueries are not allowed"),
    ("EXISTS (SELECT 1)", "subqueries are not allowed"),
    ("monetary > 1, frequency > 2", "one expression only"),
    ("monetary > 1; DROP TABLE customers", "unexpected ';'"),
    ("monetary > 1 ORDER BY monetary", "only a single boolean expression"),
    ("monetary > 1 AS big", "AS is only allowed inside CAST"),
    ("monetary + 1", "must be true or false"),
    ("churn_risk", "must be true or false"),
    ("sum(monetary) > 100", "function sum() is not allowed (allowed: abs, array_contains"),
    ("count(*) > 1", "function count() is not allowed"),
    ("read_csv('x') IS NULL", "function read_csv() is not allowed"),
    ("sum(monetary) OVER () > 1", "function sum() is not allowed"),
    ("CAST(monetary AS blob) > 1", "unknown type 'blob'"),
    ("segment = 1", "cannot compare string with numeric type"),
    ("tags = 'vip'", "tags is a list of names: test one with array_contains(tags, "),
    ("CAST(segment AS INT) > 1", "failed in column 'segment': it holds text such as 'At risk'"),
    ("CAST('abc' AS INT) = 1", "conversion from `str` to `i32` failed"),
    ("(monetary > 1", "unbalanced '('"),
    ("monetary > 1)", "unbalanced ')'"),
    ("", "empty expression"),
])
def test_refusals_name_the_problem_in_one_line(text, message):
    with pytest.raises(InputError) as caught:
        audience.compile_expression(text)
    assert message in caught.value.message
    assert "\n" not in caught.value.message and caught.value.hint is None


@pytest.mark.parametrize("text", [
    audience.EXAMPLE,
    "recency_days BETWEEN 30 AND 90 AND NOT array_contains(tags, 'vip')",
    "lower(region) = 'north' OR region IS NULL",
    "CAST(monetary AS INT) >= 100 AND frequency::int > 1",
    "CASE WHEN r_score >= 4 THEN TRUE ELSE FALSE END",
    "segment LIKE 'At%' -- at risk and friends",
    "array_length(tags) >= 2 AND greatest(r_score, f_score) = 5",
    "accepts_sms = 1 AND has_phone",
    'TRUE',
])
def test_accepted_expressions(text):
    assert isinstance(audience.compile_expression(text), pl.Expr)


@pytest.fixture
def shop(store, as_user):
    ids = campaign_store(store, 6, discounted=True)
    return ids


def test_the_design_example_selects_by_segment_and_tag(store, shop):
    _, frame = audience.audience_frame(store)
    assert frame.height == 6
    segments = set(frame["segment"].to_list())
    target = next(iter(segments))
    matched = audience.matching(store, f"segment IN ('{target}', 'Can''t lose') AND array_contains(tags, "
                                       "'price-sensitive')")
    assert matched.height == 6
    assert audience.matching(store, audience.EXAMPLE).height == (6 if target in ("At risk", "Can't lose") else 0)


def test_money_is_in_currency_units_and_tags_include_manual_ones(store, shop):
    owner = user(store, "owner")
    add_tag(store, owner, resolve(store, "C001"), "vip", "met at the fair", NOW)
    _, frame = audience.audience_frame(store)
    row = frame.filter(pl.col("customer_id") == "C001").to_dicts()[0]
    assert row["monetary"] == 80.0 and row["aov"] == 40.0  # two orders of 40.00 (net of refunds)
    assert "vip" in row["tags"] and "price-sensitive" in row["tags"]
    assert audience.matching(store, "array_contains(tags, 'vip')")["customer_id"].to_list() == ["C001"]
    assert audience.matching(store, "monetary >= 80 AND monetary < 80.01").height == 6


def test_consent_is_current_not_as_of_the_reading(store, shop):
    set_consent(store, user(store, "owner"), resolve(store, "C002"), "sms", False, "asked us to stop", NOW)
    matched = audience.matching(store, "accepts_sms = -1")
    assert matched["customer_id"].to_list() == ["C002"]


def test_the_base_is_rebuilt_when_the_store_changes(store, shop):
    first = audience.base(store)
    assert audience.base(store) is first
    set_consent(store, user(store, "owner"), resolve(store, "C003"), "email", False, None, NOW)
    assert audience.base(store) is not first


def test_swapping_one_manual_tag_for_another_rebuilds_the_base(store, shop):
    from core.customers import add_tag, remove_tag

    owner, who = user(store, "owner"), resolve(store, "C003")
    add_tag(store, owner, who, "vip", "n", NOW)
    assert audience.base(store).with_tags().filter(pl.col("customer") == who.id)["tags"].item().to_list()[-1] == "vip"
    remove_tag(store, owner, who, "vip", "n", NOW)
    add_tag(store, owner, who, "gold", "n", NOW)  # manual_tags has the same count and highest rowid as before
    assert "gold" in audience.base(store).with_tags().filter(pl.col("customer") == who.id)["tags"].item().to_list()


def test_the_next_process_reads_the_base_from_the_cache_unless_it_is_stale(store, shop):
    built = audience.base(store)
    audience._BASES.clear()  # as in a new process
    cached = audience.base(store)
    assert cached is not built and cached.frame.equals(built.frame) and cached.segments == built.segments
    set_consent(store, user(store, "owner"), resolve(store, "C004"), "push", False, None, NOW)
    audience._BASES.clear()
    fresh = audience.base(store)
    row = fresh.frame.filter(pl.col("customer_id") == "C004").to_dicts()[0]
    assert row["accepts_push"] == -1


def test_columns_help_lists_every_column():
    names = [column["name"] for column in audience.columns_help()]
    assert names == list(audience.COLUMN_NAMES) and "tags" in names
