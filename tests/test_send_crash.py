"""Real processes: a send killed with SIGKILL at any moment resumes without a duplicate touch or line,
and two senders racing in two processes never push a customer over a cap."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import campaigns
from tests.conftest import NOW
from tests.test_campaign_support import approved, campaign_store, lines

ROOT = Path(__file__).resolve().parents[1]

SENDER = """
import sys, time
from core import send
from core.store import Store
from core.users import current_user

path, login, campaign, batch, pause, now = sys.argv[1:7]
store = Store.open(path)
print("ready", flush=True)
report = send.send(store, current_user(store, login), int(campaign), int(now), batch_size=int(batch),
                   checkpoint=lambda stage: time.sleep(float(pause)))
print(report.state, report.touched, sum(report.dropped.values()), flush=True)
"""


def start_sender(store, campaign_id: int, *, batch: int = 10, pause: float = 0.02) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, str(store.path), "ava", str(campaign_id), str(batch), str(pause), str(NOW)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TIERDESK_NO_PROGRESS": "1"},
    )


def check_exactly_once(store, campaign_id: int) -> int:
    path = store.delivery_dir / f"{campaign_id}-email.jsonl"
    raw = path.read_text()
    assert raw == "" or raw.endswith("\n"), "a torn line was left behind"
    rows = [json.loads(line) for line in lines(path)]
    keys = [row["idempotency_key"] for row in rows]
    assert len(keys) == len(set(keys)), "a line was written twice"
    touches = store.rows("SELECT id, customer FROM touches WHERE campaign = ?", (campaign_id,))
    assert len({row["customer"] for row in touches}) == len(touches)
    assert sorted(row["touch_id"] for row in rows) == sorted(row["id"] for row in touches)
    assert store.scalar("SELECT count(*) FROM outbox WHERE campaign = ? AND status != 'delivered'",
                        (campaign_id,)) == 0
    return len(touches)


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume(store):
    campaign_store(store, 150)
    campaign = approved(store)
    store.close()
    from core.store import Store

    chance = random.Random(4)
    finished = False
    kills = mid_stream = 0
    for attempt in range(12):
        with Store.open(store.path, readonly=True) as peek:
            if campaigns.get(peek, campaign.id).state == "sent":  # the last kill came after the finish
                finished = True
                break
        process = start_sender(store, campaign.id)
        assert process.stdout.readline().strip() == "ready"  # imports done: from here on it writes
        time.sleep(chance.uniform(0.0, 0.8))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            with Store.open(store.path, readonly=True) as peek:
                sent_so_far = peek.scalar("SELECT count(*) FROM touches WHERE campaign = ?", (campaign.id,))
            mid_stream += 0 < sent_so_far < 150
            continue
        out, err = process.communicate()
        assert process.returncode == 0, err
        finished = True
        break
    if not finished:
        process = start_sender(store, campaign.id, pause=0)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert kills >= 2 and mid_stream >= 1, "the test must actually kill some sends part-way"
    reopened = Store.open(store.path)
    try:
        assert campaigns.get(reopened, campaign.id).state == "sent"
        assert check_exactly_once(reopened, campaign.id) == 150
    finally:
        reopened.close()


@pytest.mark.slow
def test_two_senders_in_two_processes_never_break_a_cap(store):
    store.config_path.write_text(
        store.config_path.read_text()
        + '\n[[caps]]\nchannel = "any"\nsegment = "any"\nmax = 1\nper = "week"\n'
        + "\n[send]\ndrop_tolerance = 1.0\n"  # let both start: the race is what is tested
    )
    store.reload_config()
    ids = campaign_store(store, 120)
    # Planned for different days, so neither plan reserves budget against the other:
    # both plans hold everyone, and only the ledger at send time can keep the cap.
    today = approved(store, name="today", send_at=NOW + 60)
    tomorrow = approved(store, name="tomorrow", send_at=NOW + 86_400)
    store.close()
    first = start_sender(store, today.id, batch=5, pause=0.005)
    second = start_sender(store, tomorrow.id, batch=5, pause=0.005)
    for process in (first, second):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    from core.store import Store

    reopened = Store.open(store.path)
    try:
        per_customer = dict(reopened.conn.execute(
            "SELECT customer, count(*) FROM touches GROUP BY customer").fetchall())
        assert max(per_customer.values()) == 1, "a customer got two touches within a week"
        assert sorted(per_customer) == sorted(ids)
        touched = [check_exactly_once(reopened, campaign.id) for campaign in (today, tomorrow)]
        assert sum(touched) == 120
        dropped = reopened.scalar("SELECT count(*) FROM campaign_members WHERE outcome = 'dropped' "
                                  "AND outcome_reason LIKE 'over_budget:%'")
        assert dropped == 120
    finally:
        reopened.close()

