"""Send an approved campaign: exactly once per (campaign, customer, channel).

The plan approved is the most a send can do: it may drop members (they
opted out, lost their address, or hit a cap since), never add any.

1. **Check.** The frozen plan must still hash to the approved hash. On the
   first send, the drops the send would make now are estimated; more than
   ``send.drop_tolerance`` of the plan voids the approval (the campaign goes
   back to draft to be submitted and approved again) and nothing is sent.
2. **Reserve**, a batch at a time, in one ``BEGIN IMMEDIATE`` transaction
   per batch: re-read the members' consent, bring the ledger up to date
   (:class:`core.budget.LedgerView`: the rows added since, by id) and what
   campaigns ahead of this one reserved, drop with a reason those that no
   longer fit, and insert a touch and its outbox row for the others. The
   ledger's ``UNIQUE (campaign, customer, channel)`` makes a second touch
   impossible; the write lock makes two senders in two processes take turns,
   each seeing the other's touches, so neither can push a customer over a cap.
3. **Deliver** the batch's outbox rows through the adapter
   (:mod:`core.delivery`); each row's delivered / failed is recorded in the
   next batch's transaction (or a last one of its own).

A send killed at any point resumes with ``campaign send``: reserved rows are
delivered (the file adapter recognises lines already on disk), and members
not yet reserved are reserved. Commits are made with ``synchronous = FULL``
during a send, so a touch is on disk before its line is. One process sends a
campaign at a time (a lock file beside the outbox).
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterator

import polars as pl

from core import audit, budget, campaigns, delivery, plan as plan_mod, quiet
from core.errors import Conflict, InputError
from core.fastread import local_days

if TYPE_CHECKING:
    from core.campaigns import Campaign
    from core.store import Store
    from core.users import User

BATCH = 5000
Progress = Callable[[int, int, str], None]
Checkpoint = Callable[[str], None]


@dataclass
class SendReport:
    """Where a send (or resend) left the campaign: totals so far, and what this run did."""

    campaign: int
    state: str
    adapter: str
    planned: int
    touched: int
    dropped: dict[str, int]
    delivered: int
    failed: int
    pending: int
    this_run: dict[str, int] = field(default_factory=dict)
    file: str | None = None
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def partial(self) -> bool:
        """Some members were dropped, or some messages are not delivered (exit code 1)."""
        return bool(sum(self.dropped.values()) or self.failed or self.pending or self.state != "sent")

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "partial": self.partial}


def send(store: "Store", user: "User", campaign_id: int | str, now: int, *, batch_size: int = BATCH,
         progress: Progress | None = None, checkpoint: Checkpoint | None = None,
         webhook: dict[str, Any] | None = None) -> SendReport:
    """Send (or resume sending) an approved campaign; see the module docstring.

    ``checkpoint`` is called with "reserved" after each batch's commit and
    "written" once the adapter has it (the crash tests stop the process at
    both);
    ``webhook`` passes options to :class:`core.delivery.WebhookAdapter`.
    """
    user.require("campaign.send")
    started = time.perf_counter()
    campaign = campaigns.get(store, campaign_id)
    if campaign.state not in ("approved", "sending"):
        campaigns.require_state(campaign, ("approved", "sending"), "sent")
    with _campaign_lock(store, campaign.id):
        campaign = campaigns.get(store, campaign.id)  # as it is now that we hold the lock
        members = _check_signature(store, campaign)
        if campaign.state == "approved":
            campaign = _start(store, user, campaign, now, members)
        adapter = _adapter(store, campaign, webhook)
        run = {"touched": 0, "dropped": 0, "delivered": 0, "failed": 0}
        errors: list[str] = []
        previous_sync = store.scalar("PRAGMA synchronous")
        store.conn.execute("PRAGMA synchronous = FULL")
        try:
            open_members = _open_members(store, campaign.id)
            pending = store.scalar("SELECT count(*) FROM outbox WHERE campaign = ? AND status = 'pending'",
                                   (campaign.id,))
            total = open_members.height + pending
            done = 0
            tick = progress or (lambda done, total, stage: None)
            tick(0, total, "delivering" if pending else "sending")
            # Rows reserved by a run that died before delivering them go first.
            for outcomes in _deliver_pending(store, campaign, adapter, ("pending",), batch_size, now):
                _count(run, errors, outcomes)
                done += len(outcomes)
            tick(done, total, "sending")
            send_time = campaign.send_instant(now)
            ledger = _ledger_view(store, campaign, open_members, send_time)
            # A batch's delivery is recorded in the next batch's transaction
            # (one commit per batch, not two); a crash in between leaves rows
            # pending, which the next run recognises and records.
            unrecorded = delivery.Outcomes()
            for start in range(0, open_members.height, batch_size):
                chunk = open_members.slice(start, batch_size)
                reserved, dropped = _reserve(store, campaign, chunk, send_time, now, ledger, record=unrecorded)
                unrecorded = delivery.Outcomes()
                run["touched"] += len(reserved)
                run["dropped"] += dropped
                if checkpoint:
                    checkpoint("reserved")
                unrecorded = adapter.deliver(reserved)
                _count(run, errors, unrecorded)
                if checkpoint:
                    checkpoint("written")
                done += chunk.height
                tick(done, total, "sending")
            _mark(store, unrecorded, now)
            campaign = _finish_if_done(store, user, campaign, now)
        finally:
            store.conn.execute(f"PRAGMA synchronous = {int(previous_sync)}")
            adapter.close()
    return _report(store, campaign, adapter, run, errors, started)


def resend(store: "Store", user: "User", campaign_id: int | str, now: int, *, batch_size: int = BATCH,
           progress: Progress | None = None, webhook: dict[str, Any] | None = None) -> SendReport:
    """Deliver again what was reserved but not delivered (pending or failed); reserve nothing new."""
    user.require("campaign.send")
    started = time.perf_counter()
    campaign = campaigns.get(store, campaign_id)
    if campaign.state not in ("sending", "sent"):
        raise Conflict(f"campaign {campaign.id} is {campaign.state}: nothing has been sent to resend",
                       hint=f"Send it with `tierdesk campaign send {campaign.id}`." if campaign.state == "approved"
                       else None)
    with _campaign_lock(store, campaign.id):
        adapter = _adapter(store, campaign, webhook)
        run = {"touched": 0, "dropped": 0, "delivered": 0, "failed": 0}
        errors: list[str] = []
        try:
            total = store.scalar("SELECT count(*) FROM outbox WHERE campaign = ? AND status IN ('pending', 'failed')",
                                 (campaign.id,))
            tick = progress or (lambda done, total, stage: None)
            done = 0
            tick(0, total, "delivering")
            for outcomes in _deliver_pending(store, campaign, adapter, ("pending", "failed"), batch_size, now):
                _count(run, errors, outcomes)
                done += len(outcomes)
                tick(done, total, "delivering")
            with store.transaction():
                audit.record(store, actor=user.login, action="campaign.resend", target=campaign.target, now=now,
                             details={"attempted": total, "delivered": run["delivered"], "failed": run["failed"]})
        finally:
            adapter.close()
    return _report(store, campaigns.get(store, campaign.id), adapter, run, errors, started)


# --- steps -----------------------------------------------------------------------


@contextmanager
def _campaign_lock(store: "Store", campaign_id: int) -> Iterator[None]:
    directory = store.delivery_dir
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(directory / f".campaign-{campaign_id}.lock", "a+")
    except OSError as exc:
        raise InputError(f"cannot use the delivery directory {directory}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"campaign {campaign_id} is being sent by another process right now",
                           hint="Wait for it to finish; a send that died is resumed by sending again.") from None
        yield
    finally:
        handle.close()  # closing releases the lock; the kernel does the same for a killed process


def _check_signature(store: "Store", campaign: "Campaign") -> pl.DataFrame:
    """The frozen plan, once it is known to hash to what was approved."""
    members = campaigns.stored_members(store, campaign.id)
    digest = campaigns.plan_hash(campaign, campaign.planned_day or "", campaign.plan_at or 0,
                                 campaign.plan_refresh_id, members)
    if not campaign.approved_hash or digest != campaign.plan_hash or digest != campaign.approved_hash:
        raise Conflict(
            f"campaign {campaign.id}: the plan does not match the approved hash; refusing to send",
            hint="The frozen plan was changed outside tierdesk. Edit the campaign, submit and approve it again.",
        )
    return members


def _start(store: "Store", user: "User", campaign: "Campaign", now: int, members: pl.DataFrame) -> "Campaign":
    """approved -> sending, unless the drops now would exceed the tolerance (then back to draft)."""
    planned = _planned_count(store, campaign.id)
    estimate = _estimate_drops(store, campaign, now, members)
    dropped = sum(estimate.values())
    tolerance = store.config.send.drop_tolerance
    if dropped > tolerance * planned:
        with store.transaction() as conn:
            conn.execute(
                "UPDATE campaigns SET state = 'draft', revision = revision + 1, updated_at = ?, submitted_by = NULL, "
                "submitted_at = NULL, planned_day = NULL, plan_at = NULL, plan_hash = NULL, plan_counts = NULL, "
                "plan_refresh_id = NULL, approved_by = NULL, approved_at = NULL, approved_hash = NULL WHERE id = ?",
                (now, campaign.id),
            )
            conn.execute("DELETE FROM campaign_members WHERE campaign = ?", (campaign.id,))
            audit.record(store, actor=user.login, action="campaign.approval_voided", target=campaign.target,
                         now=now, details={"planned": planned, "would_drop": estimate,
                                           "drop_tolerance": tolerance, "plan_hash": campaign.plan_hash})
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in sorted(estimate.items()) if count)
        raise Conflict(
            f"campaign {campaign.id} would drop {dropped:,} of {planned:,} planned members ({reasons}); "
            f"that is {dropped / max(planned, 1):.1%}, more than the drop tolerance of {tolerance:.1%}. "
            "Nothing was sent; the approval is void and the campaign is back to draft",
            hint=f"Review it with `tierdesk campaign preview {campaign.id}`, then submit it for approval again.",
        )
    adapter = "webhook" if store.config.delivery.webhook_url else "file"
    with store.transaction() as conn:
        current = campaigns.get(store, campaign.id)
        if current.state != "approved" or current.revision != campaign.revision:
            raise Conflict(f"campaign {campaign.id} changed meanwhile; look again and retry")
        conn.execute(
            "UPDATE campaigns SET state = 'sending', send_time = ?, send_started_at = ?, adapter = ?, updated_at = ? "
            "WHERE id = ?",
            (campaign.send_instant(now), now, adapter, now, campaign.id),
        )
        audit.record(store, actor=user.login, action="campaign.send", target=campaign.target, now=now,
                     details={"planned": planned, "expected_drops": estimate, "adapter": adapter,
                              "plan_hash": campaign.plan_hash})
    return campaigns.get(store, campaign.id)


def _planned_count(store: "Store", campaign_id: int) -> int:
    return store.scalar(
        "SELECT count(*) FROM campaign_members WHERE campaign = ? AND reason IN ('sendable', 'deferred')",
        (campaign_id,),
    )


def _open_members(store: "Store", campaign_id: int) -> pl.DataFrame:
    """The planned members not yet touched or dropped, with their arm and plan segment."""
    rows = store.conn.execute(
        "SELECT customer, arm, segment FROM campaign_members WHERE campaign = ? "
        "AND reason IN ('sendable', 'deferred') AND outcome IS NULL ORDER BY customer",
        (campaign_id,),
    ).fetchall()
    return pl.DataFrame(rows, schema={"customer": pl.Int32, "arm": pl.String, "segment": pl.String}, orient="row")


def _estimate_drops(store: "Store", campaign: "Campaign", now: int, members: pl.DataFrame) -> dict[str, int]:
    """What a send now would drop, judged on the columnar copies (fast; the batches decide for real)."""
    from core import fastread

    members = members.filter(
        pl.col("reason").is_in(plan_mod.SENDING) & pl.col("outcome").is_null()
    ).select("customer", "segment")
    if members.height == 0:
        return {}
    people = fastread.load(store, "customers").select(
        pl.col("id").cast(pl.Int32).alias("customer"), pl.col("timezone").cast(pl.String),
        "has_email", "has_phone", f"accepts_{campaign.channel}",
    )
    frame = members.join(people, on="customer", how="left", maintain_order="left")

    def verdict(open_rows: pl.DataFrame) -> pl.Series:
        segments = open_rows["segment"]
        broken, _ = budget.campaign_verdicts(
            store, campaign.channel, _precedence(campaign), campaign.planned_day or "",
            open_rows["customer"].to_numpy(), open_rows["day"].to_numpy(),
            lambda name: (segments == name).fill_null(False).to_numpy(),
        )
        return budget.rule_names(broken, budget.relevant_rules(store.config.caps, campaign.channel))

    judged = _judge(store, campaign, frame, campaign.send_instant(now), verdict)
    counts = judged.filter(pl.col("drop").is_not_null()).group_by("drop").len()
    return {reason: int(count) for reason, count in sorted(counts.iter_rows())}


def _precedence(campaign: "Campaign") -> budget.Precedence:
    return budget.Precedence(campaign.id, campaign.priority, campaign.plan_at or 0)


def _judge(store: "Store", campaign: "Campaign", frame: pl.DataFrame, send_time: int,
           verdict: Callable[[pl.DataFrame], pl.Series]) -> pl.DataFrame:
    """Re-check members now: ``drop`` (a reason, or null to send), ``rule`` and ``planned_at``.

    ``frame`` has customer, segment, timezone, has_email, has_phone and the
    channel's consent column; ``verdict(rows)`` names the cap rule one more
    touch would break for each of ``rows`` (customer, segment, day), or null.
    """
    config = store.config
    timing = quiet.schedule(frame["timezone"], send_time, config.quiet_hours, config.timezone)
    judged = frame.with_columns(
        drop=plan_mod.reachability(campaign.channel),
        in_quiet=timing["in_quiet"],
        planned_at=pl.when(timing["in_quiet"] & pl.lit(campaign.quiet == "defer"))
        .then(timing["deferred_at"]).otherwise(pl.lit(send_time, dtype=pl.Int64)),
    ).with_columns(
        drop=pl.when(pl.col("drop").is_null() & pl.col("in_quiet") & pl.lit(campaign.quiet == "drop"))
        .then(pl.lit("quiet_hours")).otherwise(pl.col("drop")),
        day=local_days(pl.col("planned_at"), config.zone),
    )
    judged = judged.with_columns(rule=pl.lit(None, dtype=pl.String))
    if campaign.obeys_caps and budget.relevant_rules(config.caps, campaign.channel):
        open_rows = judged.filter(pl.col("drop").is_null()).select("customer", "segment", "day")
        if open_rows.height:
            broken = open_rows.select("customer", verdict(open_rows).alias("broken"))
            judged = judged.join(broken, on="customer", how="left", maintain_order="left").with_columns(
                rule=pl.col("broken"),
                drop=pl.when(pl.col("drop").is_null() & pl.col("broken").is_not_null())
                .then(pl.lit("over_budget")).otherwise(pl.col("drop")),
            ).drop("broken")
    return judged.drop("in_quiet")


def _reserve(store: "Store", campaign: "Campaign", members: pl.DataFrame, send_time: int, now: int,
             ledger: budget.LedgerView, record: delivery.Outcomes | None = None,
             ) -> tuple[delivery.Batch, int]:
    """One batch: re-check and reserve touches + outbox rows in one BEGIN IMMEDIATE transaction.

    ``members`` (customer, arm, segment) are open members of the plan, read
    after this process took the campaign's send lock, so nobody else can
    have touched them since; ``record`` (the previous batch's delivery
    outcomes) is written in the same transaction.
    """
    store_id = store.meta("store_id", "")
    customers = members["customer"].to_list()
    with store.transaction() as conn:
        if record is not None:
            _mark(store, record, now)
        marks = ", ".join("?" * len(customers))
        people = pl.DataFrame(conn.execute(
            f"SELECT id, customer_id, name, email, phone, timezone, accepts_{campaign.channel} FROM customers "
            f"WHERE id IN ({marks})", tuple(customers),
        ).fetchall(), schema={"customer": pl.Int32, "customer_id": pl.String, "name": pl.String,
                              "email": pl.String, "phone": pl.String, "timezone": pl.String,
                              f"accepts_{campaign.channel}": pl.Int8}, orient="row")
        frame = members.join(people, on="customer", how="left", maintain_order="left").with_columns(
            has_email=pl.col("email").fill_null("") != "",
            has_phone=pl.col("phone").fill_null("") != "",
        )
        ids = customers

        # The ledger as it is inside this write transaction: from here until
        # the commit, no other sender can add a touch.
        ledger.catch_up()

        def verdict(open_rows: pl.DataFrame) -> pl.Series:
            usage = pl.concat([
                ledger.usage(ids),
                budget.reservations(store, campaign.planned_day or "", _precedence(campaign), ids),
            ])
            return budget.verdicts(open_rows, usage, store.config.caps, campaign.channel)["rule"]

        judged = _judge(store, campaign, frame, send_time, verdict).sort("customer")
        drops = judged.filter(pl.col("drop").is_not_null())
        touch_base = conn.execute("SELECT coalesce(max(id), 0) FROM touches").fetchone()[0]
        outbox_base = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0]
        keep = judged.filter(pl.col("drop").is_null()).with_columns(
            touch_id=pl.int_range(touch_base + 1, touch_base + 1 + pl.len(), dtype=pl.Int64),
            outbox_id=pl.int_range(outbox_base + 1, outbox_base + 1 + pl.len(), dtype=pl.Int64),
            key=pl.format("td-{}-{}-{}-{}", pl.lit(store_id), pl.lit(campaign.id), pl.col("customer"),
                          pl.lit(campaign.channel)),
        ).with_columns(payload=_payload(campaign))
        conn.executemany(
            "INSERT INTO touches (id, campaign, customer, channel, at, counts, arm, reserved_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            keep.select("touch_id", pl.lit(campaign.id).alias("campaign"), "customer",
                        pl.lit(campaign.channel).alias("channel"), "planned_at",
                        pl.lit(campaign.counts_toward_caps).alias("counts"), "arm",
                        pl.lit(now).alias("reserved_at")).iter_rows(),
        )
        # Inside this transaction nobody else can add a touch: ours are all
        # the view is missing, and it need not read them back next batch.
        if campaign.counts_toward_caps:
            ledger.add(keep.select("customer", pl.lit(campaign.channel).alias("channel"), "day"))
        ledger.seen = touch_base + keep.height
        conn.executemany(
            "INSERT INTO outbox (id, touch, campaign, channel, adapter, idempotency_key, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            keep.select("outbox_id", "touch_id", pl.lit(campaign.id).alias("campaign"),
                        pl.lit(campaign.channel).alias("channel"), pl.lit(campaign.adapter or "file").alias("adapter"),
                        "key", "payload").iter_rows(),
        )
        conn.executemany(
            "UPDATE campaign_members SET outcome = 'touched' WHERE campaign = ? AND customer = ?",
            keep.select(pl.lit(campaign.id), "customer").iter_rows(),
        )
        conn.executemany(
            "UPDATE campaign_members SET outcome = 'dropped', outcome_reason = ? WHERE campaign = ? AND customer = ?",
            drops.select(
                pl.when(pl.col("rule").is_null()).then(pl.col("drop"))
                .otherwise(pl.format("{}:{}", pl.col("drop"), pl.col("rule"))).alias("reason"),
                pl.lit(campaign.id).alias("campaign"), "customer",
            ).iter_rows(),
        )
    rows = delivery.Batch(keep["outbox_id"].to_list(), keep["key"].to_list(), keep["payload"].to_list())
    return rows, drops.height


def _ledger_view(store: "Store", campaign: "Campaign", members: pl.DataFrame, send_time: int) -> budget.LedgerView:
    """The part of the ledger this send can be judged against: its members, around its send days."""
    longest = max((rule.days for rule in store.config.caps), default=1)
    zone = store.config.zone
    # Deferral moves a message to the end of quiet hours: at most a day later.
    first = budget.day_number(datetime.fromtimestamp(send_time, tz=zone).date()) - longest + 1
    last = first + 2 * longest + 1
    return budget.LedgerView(store, first, last, members["customer"])


def _payload(campaign: "Campaign") -> pl.Expr:
    """The JSON line / request body of each touch (keys sorted, built column-wise)."""
    to = {"email": pl.col("email"), "sms": pl.col("phone")}.get(campaign.channel, pl.lit(None, dtype=pl.String))
    fields = {
        "arm": pl.col("arm"),
        "campaign": pl.lit(campaign.name),
        "campaign_id": pl.lit(campaign.id),
        "channel": pl.lit(campaign.channel),
        "customer_id": pl.col("customer_id"),
        "deliver_at": pl.from_epoch(pl.col("planned_at"), time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "idempotency_key": pl.col("key"),
        "name": pl.col("name"),
        "offer": pl.lit(campaign.offer, dtype=pl.String),
        "to": to,
        "touch_id": pl.col("touch_id"),
    }
    return pl.struct(**fields).struct.json_encode()


def idempotency_key(store_id: str, campaign: int, customer: int, channel: str) -> str:
    """The same (store, campaign, customer, channel) always gives the same key (see :func:`_reserve`)."""
    return f"td-{store_id}-{campaign}-{customer}-{channel}"


def _adapter(store: "Store", campaign: "Campaign", webhook: dict[str, Any] | None) -> delivery.Adapter:
    if campaign.adapter == "webhook":
        url = store.config.delivery.webhook_url
        if not url:
            raise InputError(f"campaign {campaign.id} delivers to a webhook, but delivery.webhook_url is not set")
        return delivery.WebhookAdapter(url, **(webhook or {}))
    return delivery.FileAdapter(store.delivery_dir, campaign.id, campaign.channel)


def _deliver_pending(store: "Store", campaign: "Campaign", adapter: delivery.Adapter, statuses: tuple[str, ...],
                     batch_size: int, now: int) -> Iterator[delivery.Outcomes]:
    marks = ", ".join("?" * len(statuses))
    last_id = 0
    while True:
        rows = store.conn.execute(
            f"SELECT id, idempotency_key, payload FROM outbox WHERE campaign = ? "
            f"AND status IN ({marks}) AND id > ? ORDER BY id LIMIT ?",
            (campaign.id, *statuses, last_id, batch_size),
        ).fetchall()
        if not rows:
            return
        last_id = rows[-1][0]
        outcomes = adapter.deliver(delivery.Batch([row[0] for row in rows], [row[1] for row in rows],
                                                  [row[2] for row in rows]))
        _mark(store, outcomes, now)
        yield outcomes


def _mark(store: "Store", outcomes: delivery.Outcomes, now: int) -> None:
    """Record delivery outcomes (inside the caller's transaction, or in one of its own)."""
    if not (outcomes.delivered or outcomes.retried or outcomes.failed):
        return
    with store.transaction() as conn:
        # The file adapter delivers whole batches of consecutive ids: one
        # range update each instead of a statement per row.
        for low, high in _runs(sorted(outcomes.delivered)):
            conn.execute("UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, "
                         "delivered_at = ? WHERE id BETWEEN ? AND ?", (now, low, high))
        conn.executemany(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + ?, last_error = NULL, delivered_at = ? "
            "WHERE id = ?", [(attempts, now, outbox_id) for outbox_id, attempts in outcomes.retried],
        )
        conn.executemany(
            "UPDATE outbox SET status = 'failed', attempts = attempts + ?, last_error = ? WHERE id = ?",
            [(attempts, error, outbox_id) for outbox_id, attempts, error in outcomes.failed],
        )


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted ids as (first, last) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for number in ids:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _count(run: dict[str, int], errors: list[str], outcomes: delivery.Outcomes) -> None:
    run["delivered"] += outcomes.delivered_count
    run["failed"] += len(outcomes.failed)
    for message in [error for _, _, error in outcomes.failed] + [why for _, why in outcomes.pending]:
        if len(errors) >= 5:
            break
        if message not in errors:
            errors.append(message)


def _finish_if_done(store: "Store", user: "User", campaign: "Campaign", now: int) -> "Campaign":
    with store.transaction() as conn:
        left = conn.execute(
            "SELECT count(*) FROM campaign_members WHERE campaign = ? AND reason IN ('sendable', 'deferred') "
            "AND outcome IS NULL", (campaign.id,),
        ).fetchone()[0]
        if left:
            return campaigns.get(store, campaign.id)
        conn.execute("UPDATE campaigns SET state = 'sent', sent_at = ?, updated_at = ? WHERE id = ? "
                     "AND state = 'sending'", (now, now, campaign.id))
        totals = _totals(store, campaign.id)
        audit.record(store, actor=user.login, action="campaign.sent", target=campaign.target, now=now,
                     details=totals)
    return campaigns.get(store, campaign.id)


def _totals(store: "Store", campaign_id: int) -> dict[str, Any]:
    outcomes = dict(store.conn.execute(
        "SELECT coalesce(outcome_reason, outcome), count(*) FROM campaign_members WHERE campaign = ? "
        "AND outcome IS NOT NULL GROUP BY 1", (campaign_id,),
    ).fetchall())
    statuses = dict(store.conn.execute(
        "SELECT status, count(*) FROM outbox WHERE campaign = ? GROUP BY status", (campaign_id,)
    ).fetchall())
    dropped: dict[str, int] = {}
    for reason, count in outcomes.items():
        if reason != "touched":
            key = reason.split(":")[0]
            dropped[key] = dropped.get(key, 0) + count
    return {"touched": outcomes.get("touched", 0), "dropped": dict(sorted(dropped.items())),
            "delivered": statuses.get("delivered", 0), "failed": statuses.get("failed", 0),
            "pending": statuses.get("pending", 0)}


def _report(store: "Store", campaign: "Campaign", adapter: delivery.Adapter, run: dict[str, int],
            errors: list[str], started: float) -> SendReport:
    totals = _totals(store, campaign.id)
    path = getattr(adapter, "path", None)
    return SendReport(
        campaign=campaign.id, state=campaign.state, adapter=adapter.name,
        planned=_planned_count(store, campaign.id), touched=totals["touched"], dropped=totals["dropped"],
        delivered=totals["delivered"], failed=totals["failed"], pending=totals["pending"], this_run=run,
        file=str(path) if path else None, errors=errors, seconds=round(time.perf_counter() - started, 3),
    )


def dropped_members(store: "Store", campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """A few dropped members with their reasons (for the CLI to print)."""
    return store.rows(
        "SELECT c.customer_id, m.outcome_reason AS reason FROM campaign_members AS m "
        "JOIN customers AS c ON c.id = m.customer WHERE m.campaign = ? AND m.outcome = 'dropped' "
        "ORDER BY c.customer_id LIMIT ?", (campaign_id, limit),
    )

