"""The campaign commands through the real CLI: a weekly win-back, end to end, with a colleague approving."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from console.cli import app
from core.customers import resolve, set_consent
from tests.conftest import NOW
from tests.test_campaign_support import campaign_store, user

runner = CliRunner()
AUDIENCE = "frequency >= 1 AND NOT array_contains(tags, 'vip')"


def invoke(store, *args):
    return runner.invoke(app, [*map(str, args), "--db", str(store.path)])


@pytest.fixture
def shop(store, as_user):
    # Quiet hours off: the CLI reads the real clock, and the tests must not depend on the time of day.
    store.config_path.write_text(store.config_path.read_text() + '\n[quiet_hours]\nstart = "00:00"\nend = "00:00"\n')
    store.reload_config()
    campaign_store(store, 25)
    return as_user


def new_campaign(store, *extra) -> int:
    result = invoke(store, "campaign", "new", "June win-back", "--audience", AUDIENCE, "--channel", "email",
                    "--holdout", "20", "--offer", "15% off", *extra, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["id"]


def test_a_weekly_win_back_end_to_end(store, shop):
    shop("olga")
    campaign = new_campaign(store)
    preview = invoke(store, "campaign", "preview", campaign, "--json")
    assert preview.exit_code == 0, preview.output
    data = json.loads(preview.stdout)
    assert set(data) == {"matched", "excluded", "sendable", "by_segment", "by_rule", "sample"}
    assert data["matched"] == 25 == data["sendable"] + sum(data["excluded"].values())
    text = invoke(store, "campaign", "preview", campaign)
    assert text.exit_code == 0 and "matched" in text.stdout and "= sendable" in text.stdout
    assert "held out (control)" in text.stdout and "by segment" in text.stdout

    submitted = invoke(store, "campaign", "submit", campaign)
    assert submitted.exit_code == 0 and "submitted" in submitted.stdout
    own = invoke(store, "campaign", "approve", campaign)
    assert own.exit_code == 2 and "olga submitted campaign 1 and may not also approve it" in own.stderr
    assert "Traceback" not in own.output

    shop("ava")
    approved = invoke(store, "campaign", "approve", campaign)
    assert approved.exit_code == 0 and "✓ Campaign 1 approved by ava" in approved.stdout
    sent = invoke(store, "campaign", "send", campaign)
    assert sent.exit_code == 0, sent.output
    assert "✓ Campaign 1 sent" in sent.stdout and "delivered" in sent.stdout
    again = invoke(store, "campaign", "send", campaign)
    assert again.exit_code == 2 and "is sent" in again.stderr

    results = invoke(store, "campaign", "results", campaign, "--json")
    assert results.exit_code == 0, results.output
    assert set(json.loads(results.stdout)["arms"]) == {"treatment", "control"}
    assert "treatment vs control" in invoke(store, "campaign", "results", campaign).stdout

    listing = json.loads(invoke(store, "campaign", "list", "--json").stdout)
    assert [(row["id"], row["state"]) for row in listing] == [(1, "sent")]
    shown = invoke(store, "campaign", "show", campaign)
    assert shown.exit_code == 0 and "approved by ava" in shown.stdout and "history" in shown.stdout

    touches = invoke(store, "export", "touches", "--campaign", campaign)
    assert touches.exit_code == 0, touches.output
    rows = list(csv.DictReader(io.StringIO(touches.stdout)))
    assert rows and {"touch_id", "customer_id", "channel", "status", "idempotency_key"} <= set(rows[0])
    assert all(row["status"] == "delivered" for row in rows)
    members = invoke(store, "export", "members", "--campaign", campaign, "--format", "json")
    assert members.exit_code == 0
    assert len(json.loads(members.stdout)) == 25
    assert invoke(store, "export", "orders", "--campaign", campaign).exit_code == 2


def test_only_operators_and_owners_may_create_approve_and_send(store, shop):
    shop("vic")
    refused = invoke(store, "campaign", "new", "x", "--audience", "TRUE", "--channel", "email")
    assert refused.exit_code == 2 and "vic (viewer) may not create or edit campaigns" in refused.stderr
    shop("olga")
    campaign = new_campaign(store)
    invoke(store, "campaign", "submit", campaign)
    shop("sam")
    assert invoke(store, "campaign", "approve", campaign).exit_code == 2
    assert "may not approve campaigns" in invoke(store, "campaign", "approve", campaign).stderr
    # anyone may look
    assert invoke(store, "campaign", "preview", campaign).exit_code == 0
    assert invoke(store, "campaign", "list").exit_code == 0


def test_bad_input_is_one_line_and_exit_2(store, shop):
    shop("olga")
    for audience, message in (
        ("segme = 'Lost'", "error: audience: unknown column 'segme'"),
        ("monetary > (SELECT 1)", "error: audience: subqueries are not allowed"),
        ("sum(monetary) > 1", "error: audience: function sum() is not allowed"),
        ("frequency + 1", "error: audience: must be true or false"),
    ):
        result = invoke(store, "campaign", "new", "x", "--audience", audience, "--channel", "email")
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines()[0].startswith(message)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    for args, message in (
        (("--channel", "fax"), "unknown channel 'fax'"),
        (("--channel", "email", "--send-at", "soon"), "--send-at"),
        (("--channel", "email", "--send-at", "2020-01-01 10:00"), "--send-at: 2020-01-01 10:00 has passed"),
        (("--channel", "email", "--holdout", "200"), "--holdout"),
    ):
        result = invoke(store, "campaign", "new", "x", "--audience", "TRUE", *args)
        assert result.exit_code == 2 and message in result.stderr
    assert invoke(store, "campaign", "show", "42").exit_code == 2
    assert "not a campaign id" in invoke(store, "campaign", "show", "abc").stderr
    huge = "9" * 23  # past SQLite's integers: not found, not a crash
    for args in (("campaign", "show", huge), ("campaign", "preview", huge), ("rejects", "--import", huge),
                 ("export", "members", "--campaign", huge), ("campaign", "preview", "1", "--sample", "-1")):
        result = invoke(store, *args)
        assert result.exit_code == 2 and "internal error" not in result.output, (args, result.output)


def test_drops_at_send_time_exit_1_with_the_reasons(store, shop):
    shop("olga")
    campaign = new_campaign(store, "--holdout", "0")
    invoke(store, "campaign", "submit", campaign)
    shop("ava")
    invoke(store, "campaign", "approve", campaign)
    set_consent(store, user(store, "owner"), resolve(store, "C003"), "email", False, "unsubscribed", NOW)
    result = invoke(store, "campaign", "send", campaign)
    assert result.exit_code == 1, result.output
    assert "dropped at send time: opted_out 1" in result.stdout and "C003: opted_out" in result.stdout


def test_too_many_drops_refuse_the_send(store, shop):
    shop("olga")
    campaign = new_campaign(store, "--holdout", "0")
    invoke(store, "campaign", "submit", campaign)
    shop("ava")
    invoke(store, "campaign", "approve", campaign)
    for customer_id in ("C001", "C002"):
        set_consent(store, user(store, "owner"), resolve(store, customer_id), "email", False, None, NOW)
    result = invoke(store, "campaign", "send", campaign)
    assert result.exit_code == 2 and "more than the drop tolerance" in result.stderr
    assert json.loads(invoke(store, "campaign", "show", campaign, "--json").stdout)["state"] == "draft"


def test_edit_reject_cancel(store, shop):
    shop("olga")
    first = new_campaign(store)
    invoke(store, "campaign", "submit", first)
    edited = invoke(store, "campaign", "edit", first, "--name", "July win-back", "--priority", "3")
    assert edited.exit_code == 0 and "the plan and any approval are void" in edited.stderr
    shown = json.loads(invoke(store, "campaign", "show", first, "--json").stdout)
    assert (shown["name"], shown["priority"], shown["state"]) == ("July win-back", 3, "draft")
    shop("ava")
    rejected = invoke(store, "campaign", "reject", first, "--note", "wrong offer")
    assert rejected.exit_code == 0 and "rejected" in rejected.stdout
    assert invoke(store, "campaign", "reject", first, "--note", "again").exit_code == 2
    second = new_campaign(store)
    assert invoke(store, "campaign", "cancel", second).exit_code == 0
    assert [row["state"] for row in json.loads(invoke(store, "campaign", "list", "--json").stdout)] == [
        "rejected", "cancelled"]


def test_budget_views(store, shop):
    shop("olga")
    overview = invoke(store, "budget", "--json")
    assert overview.exit_code == 0, overview.output
    data = json.loads(overview.stdout)
    assert {"day", "rules", "rows"} <= set(data) and data["rows"]
    assert "Touch budget" in invoke(store, "budget").stdout
    one = invoke(store, "budget", "--customer", "C001", "--json")
    assert one.exit_code == 0, one.output
    rules = json.loads(one.stdout)["rules"]
    assert {row["rule"] for row in rules} == {"cap:any/any/3-per-week", "cap:sms/any/1-per-day"}
    assert all(row["remaining"] == row["cap"] for row in rules)
    text = invoke(store, "budget", "--customer", "C001")
    assert "✓ ok" in text.stdout and "remaining today" in text.stdout
    assert invoke(store, "budget", "--customer", "nobody-here").exit_code == 2


def test_columns_lists_what_an_audience_can_use(store):
    result = runner.invoke(app, ["campaign", "columns"])
    assert result.exit_code == 0 and "recency_days" in result.stdout and "array_contains" in result.stdout


def test_budget_and_preview_name_segments_in_the_shops_language(store, shop):
    text = store.config_path.read_text()
    store.config_path.write_text('language = "zh"\n' + text)
    campaign_id = new_campaign(store)
    preview = invoke(store, "campaign", "preview", campaign_id).stdout
    budget = invoke(store, "budget").stdout
    for shown in (preview, budget):  # every customer of this shop is a potential loyalist
        assert "潜力忠诚客户" in shown and "Potential loyalist" not in shown, shown
