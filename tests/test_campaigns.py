"""Campaign states: every transition, every refusal, the plan hash and the audit trail."""

import json

import pytest

from core import audit, campaigns
from core.errors import Conflict, InputError, NotFound, PermissionDenied
from tests.conftest import NOW
from tests.test_campaign_support import approved, campaign_store, new, user


@pytest.fixture
def shop(store):
    return campaign_store(store, 12)


def actions(store, campaign_id):
    return [row["action"] for row in store.rows(
        "SELECT action FROM audit WHERE target = ? ORDER BY id", (f"campaign:{campaign_id}",))]


def test_create_stores_a_draft_with_its_settings(store, shop):
    campaign = new(store, offer="10% off", holdout=10, variants="A,B", priority=5, quiet="drop",
                   send_at=NOW + 3600)
    assert campaign.state == "draft" and campaign.created_by == "olga"
    assert campaign.variant_names == ("A", "B") and campaign.holdout_pct == 10.0
    assert campaign.obeys_caps == 1 and campaign.counts_toward_caps == 1 and not campaign.service
    service = new(store, service=True)
    assert service.obeys_caps == 0 and service.counts_toward_caps == 0 and service.service
    assert actions(store, campaign.id) == ["campaign.create"]


@pytest.mark.parametrize("kwargs, message", [
    ({"channel": "fax"}, "unknown channel 'fax'"),
    ({"holdout": 95}, "--holdout"),
    ({"holdout": -1}, "--holdout"),
    ({"variants": "A"}, "at least two"),
    ({"variants": "A,A"}, "each name once"),
    ({"variants": "A,control"}, "not a usable arm name"),
    ({"quiet": "later"}, "--quiet"),
    ({"name": "  "}, "needs a name"),
    ({"audience": "segmnt = 'Lost'"}, "unknown column 'segmnt'"),
    ({"priority": 5000}, "--priority"),
])
def test_create_refuses_bad_settings(store, shop, kwargs, message):
    with pytest.raises(InputError) as caught:
        new(store, **kwargs)
    assert message in caught.value.message
    assert store.scalar("SELECT count(*) FROM campaigns") == 0


@pytest.mark.parametrize("login", ["sam", "vic", "stranger"])
def test_only_operators_and_owners_create_approve_and_send(store, shop, login):
    with pytest.raises(PermissionDenied, match="may not create or edit campaigns"):
        new(store, by=login)
    campaign = new(store)
    campaigns.submit(store, user(store, "olga"), campaign.id, NOW)
    with pytest.raises(PermissionDenied, match="may not approve campaigns"):
        campaigns.approve(store, user(store, login), campaign.id, NOW)
    with pytest.raises(PermissionDenied, match="may not approve campaigns"):
        campaigns.reject(store, user(store, login), campaign.id, "no", NOW)
    with pytest.raises(PermissionDenied, match="may not create or edit campaigns"):
        campaigns.cancel(store, user(store, login), campaign.id, NOW)
    campaigns.approve(store, user(store, "ava"), campaign.id, NOW)
    from core import send

    with pytest.raises(PermissionDenied, match="may not send campaigns"):
        send.send(store, user(store, login), campaign.id, NOW)
    assert campaigns.get(store, campaign.id).state == "approved"


def test_submit_freezes_the_plan_and_its_hash(store, shop):
    campaign = new(store, holdout=25)
    submitted, summary = campaigns.submit(store, user(store, "olga"), campaign.id, NOW)
    assert submitted.state == "submitted" and submitted.submitted_by == "olga"
    members = store.scalar("SELECT count(*) FROM campaign_members WHERE campaign = ?", (campaign.id,))
    assert members == summary["matched"] == 12
    assert submitted.plan_hash == campaigns.stored_plan_hash(store, submitted)
    assert len(submitted.plan_hash) == 64 and submitted.planned_day == "2025-06-30"
    assert json.loads(submitted.plan_counts)["sendable"] == summary["sendable"]


def test_approval_is_four_eyes_unless_the_config_allows_self_approval(store, shop):
    campaign = new(store)
    campaigns.submit(store, user(store, "olga"), campaign.id, NOW)
    with pytest.raises(PermissionDenied, match="olga submitted campaign .* may not also approve it"):
        campaigns.approve(store, user(store, "olga"), campaign.id, NOW)
    signed = campaigns.approve(store, user(store, "ava"), campaign.id, NOW + 5)
    assert signed.state == "approved" and signed.approved_by == "ava" and signed.approved_at == NOW + 5
    assert signed.approved_hash == signed.plan_hash
    store.config_path.write_text(store.config_path.read_text() + "allow_self_approval = true\n")
    store.reload_config()
    other = new(store)
    campaigns.submit(store, user(store, "olga"), other.id, NOW)
    assert campaigns.approve(store, user(store, "olga"), other.id, NOW).state == "approved"


def test_every_transition_is_audited_and_the_chain_verifies(store, shop):
    campaign = approved(store)
    assert actions(store, campaign.id) == ["campaign.create", "campaign.submit", "campaign.approve"]
    approve_row = store.rows("SELECT details FROM audit WHERE action = 'campaign.approve'")[0]
    assert json.loads(approve_row["details"])["plan_hash"] == campaign.plan_hash
    campaigns.edit(store, user(store, "olga"), campaign.id, NOW, name="renamed")
    campaigns.cancel(store, user(store, "olga"), campaign.id, NOW, note="not this week")
    assert actions(store, campaign.id)[-2:] == ["campaign.edit", "campaign.cancel"]
    assert audit.verify(store).ok


def test_an_edit_voids_the_plan_and_the_approval(store, shop):
    campaign = approved(store)
    edited = campaigns.edit(store, user(store, "olga"), campaign.id, NOW, audience="frequency >= 2")
    assert edited.state == "draft" and edited.revision == campaign.revision + 1
    assert edited.plan_hash is None and edited.approved_by is None and edited.approved_hash is None
    assert store.scalar("SELECT count(*) FROM campaign_members WHERE campaign = ?", (campaign.id,)) == 0
    details = json.loads(store.rows("SELECT details FROM audit WHERE action = 'campaign.edit'")[0]["details"])
    assert details["voided"]["state"] == "approved" and details["changes"]["audience"]["to"] == "frequency >= 2"
    from core import send

    with pytest.raises(Conflict, match="only approved or sending campaigns can be sent"):
        send.send(store, user(store, "ava"), campaign.id, NOW)


def test_nothing_to_change_is_refused(store, shop):
    campaign = new(store)
    with pytest.raises(InputError, match="nothing to change"):
        campaigns.edit(store, user(store, "olga"), campaign.id, NOW, name=campaign.name)


@pytest.mark.parametrize("state_path, action, allowed", [
    ([], "approve", False),                          # a draft cannot be approved
    (["submit"], "submit", False),                   # nor submitted twice
    (["submit", "approve"], "reject", False),        # an approved one can only be cancelled
    (["submit", "approve"], "cancel", True),
    (["submit"], "reject", True),
    ([], "reject", True),
    ([], "cancel", True),
    (["submit"], "cancel", True),
])
def test_state_machine(store, shop, state_path, action, allowed):
    campaign = new(store)
    steps = {
        "submit": lambda: campaigns.submit(store, user(store, "olga"), campaign.id, NOW),
        "approve": lambda: campaigns.approve(store, user(store, "ava"), campaign.id, NOW),
        "reject": lambda: campaigns.reject(store, user(store, "ava"), campaign.id, "off brand", NOW),
        "cancel": lambda: campaigns.cancel(store, user(store, "olga"), campaign.id, NOW),
    }
    for step in state_path:
        steps[step]()
    before = campaigns.get(store, campaign.id).state
    if allowed:
        steps[action]()
        assert campaigns.get(store, campaign.id).state == {"reject": "rejected", "cancel": "cancelled"}[action]
    else:
        with pytest.raises(Conflict, match=f"campaign {campaign.id} is {before}"):
            steps[action]()
        assert campaigns.get(store, campaign.id).state == before


def test_rejected_and_cancelled_are_final(store, shop):
    campaign = new(store)
    campaigns.reject(store, user(store, "ava"), campaign.id, "too broad", NOW)
    assert campaigns.get(store, campaign.id).decided_note == "too broad"
    for attempt in (
        lambda: campaigns.edit(store, user(store, "olga"), campaign.id, NOW, name="again"),
        lambda: campaigns.submit(store, user(store, "olga"), campaign.id, NOW),
        lambda: campaigns.cancel(store, user(store, "olga"), campaign.id, NOW),
    ):
        with pytest.raises(Conflict, match="is rejected"):
            attempt()


def test_a_rejection_needs_a_note(store, shop):
    campaign = new(store)
    with pytest.raises(InputError, match="needs a note"):
        campaigns.reject(store, user(store, "ava"), campaign.id, "  ", NOW)


def test_a_plan_changed_behind_our_back_is_not_approved(store, shop):
    campaign = new(store)
    campaigns.submit(store, user(store, "olga"), campaign.id, NOW)
    store.conn.execute("UPDATE campaign_members SET arm = 'control' WHERE campaign = ? AND customer = "
                       "(SELECT min(customer) FROM campaign_members WHERE campaign = ?)", (campaign.id, campaign.id))
    with pytest.raises(Conflict, match="no longer matches its hash"):
        campaigns.approve(store, user(store, "ava"), campaign.id, NOW)


def test_submitting_a_plan_that_sends_nobody_is_refused(store, shop):
    campaign = new(store, audience="frequency >= 100")
    with pytest.raises(Conflict, match="would send nothing"):
        campaigns.submit(store, user(store, "olga"), campaign.id, NOW)
    assert campaigns.get(store, campaign.id).state == "draft"


def test_unknown_campaign_and_bad_ids(store, shop):
    with pytest.raises(NotFound, match="no campaign 99"):
        campaigns.get(store, 99)
    with pytest.raises(InputError, match="not a campaign id"):
        campaigns.get(store, "spring")


def test_send_at_parsing(store):
    zone = store.config.zone
    assert campaigns.parse_send_at("2025-07-01 10:00", zone) == 1751364000
    assert campaigns.parse_send_at("2025-07-01T10:00+08:00", zone) == 1751335200
    assert campaigns.parse_send_at(None, zone) is None
    with pytest.raises(InputError, match="give a time too"):
        campaigns.parse_send_at("2025-07-01", zone)
    with pytest.raises(InputError, match="expected 'YYYY-MM-DD HH:MM'"):
        campaigns.parse_send_at("tomorrow", zone)


def test_show_lists_plan_outcome_and_history(store, shop):
    campaign = approved(store, holdout=20)
    data = campaigns.show(store, campaign.id)
    assert data["state_label"] == "✓ approved"
    assert sum(data["members"].values()) == 12
    assert [row["action"] for row in data["history"]] == ["campaign.create", "campaign.submit", "campaign.approve"]
