"""Campaigns: new, preview, four-eyes approval, send, results; and the touch budget.

Only typer is imported at module level: polars and the core modules load
when a command runs, so ``tierdesk --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from console.common import DbOption, JsonOption, err, note, now, open_store, out, print_json, progress_enabled, warn, who

campaign_app = typer.Typer(
    help="Campaigns: audience, preview, four-eyes approval, exactly-once send, results.",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(help="The campaign id (see `tierdesk campaign list`).")]
AudienceOption = Annotated[str, typer.Option(
    "--audience", "-a",
    help="A boolean SQL expression over the reading, e.g. "
    "\"segment IN ('At risk', 'Can''t lose') AND array_contains(tags, 'price-sensitive')\". "
    "See `tierdesk campaign columns`.")]
ChannelOption = Annotated[str, typer.Option("--channel", "-c", help="email, sms, push or wecom.")]
OfferOption = Annotated[Optional[str], typer.Option("--offer", help="The offer or message text.")]
HoldoutOption = Annotated[Optional[float], typer.Option(
    "--holdout", help="Percent of reachable members held out as control (0-90).")]
VariantsOption = Annotated[Optional[str], typer.Option("--variants", help="Arm names for an A/B test, e.g. A,B.")]
PriorityOption = Annotated[Optional[int], typer.Option(
    "--priority", help="Same-day campaigns reserve budget in priority order (higher first).")]
QuietOption = Annotated[Optional[str], typer.Option(
    "--quiet", help="In the customer's quiet hours: defer to the window's end, or drop.")]
SendAtOption = Annotated[Optional[str], typer.Option(
    "--send-at", help="When to deliver: 'YYYY-MM-DD HH:MM' in shop time (default: when sent).")]


# --- creating and changing --------------------------------------------------------


def new_cmd(
    name: Annotated[str, typer.Argument(help="A name people will recognise, e.g. 'June win-back'.")],
    audience: AudienceOption,
    channel: ChannelOption,
    offer: OfferOption = None,
    holdout: HoldoutOption = None,
    variants: VariantsOption = None,
    priority: PriorityOption = None,
    service: Annotated[bool, typer.Option(
        "--service", help="A service message: ignores caps and does not count toward them.")] = False,
    quiet: QuietOption = None,
    send_at: SendAtOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Create a draft campaign."""
    from core import campaigns

    with open_store(db) as store:
        user = who(store)
        where = store.path
        campaign = campaigns.create(
            store, user, name=name, audience=audience, channel=channel, offer=offer, holdout=holdout or 0.0,
            variants=variants, priority=priority or 0, service=service, quiet=quiet or "defer",
            send_at=campaigns.parse_send_at(send_at, store.config.zone, now()), now=now(),
        )
    if json:
        print_json(campaign.as_dict())
        return
    out().print(f"Created campaign [bold]{campaign.id}[/] ({campaign.name}) as a draft.")
    from console.command_lines import command_line

    note(f"Next: {command_line(where, f'campaign preview {campaign.id}')}, "
         f"then {command_line(where, f'campaign submit {campaign.id}')}.")


def edit_cmd(
    campaign_id: IdArgument,
    name: Annotated[Optional[str], typer.Option("--name", help="A new name.")] = None,
    audience: Annotated[Optional[str], typer.Option("--audience", "-a", help="A new audience expression.")] = None,
    channel: Annotated[Optional[str], typer.Option("--channel", "-c", help="email, sms, push or wecom.")] = None,
    offer: OfferOption = None,
    holdout: HoldoutOption = None,
    variants: VariantsOption = None,
    priority: PriorityOption = None,
    service: Annotated[Optional[bool], typer.Option(
        "--service/--marketing", help="Service (exempt from caps) or marketing (obeys and counts).",
        show_default=False)] = None,
    quiet: QuietOption = None,
    send_at: Annotated[Optional[str], typer.Option(
        "--send-at", help="'YYYY-MM-DD HH:MM' in shop time, or 'now' to clear it.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Change a campaign. A submitted or approved one goes back to draft: its plan and approval are void."""
    from core import campaigns

    with open_store(db) as store:
        user = who(store)
        before = campaigns.get(store, campaign_id)
        when = None
        if send_at is not None:
            when = 0 if send_at.strip().lower() == "now" else campaigns.parse_send_at(send_at, store.config.zone, now())
        campaign = campaigns.edit(
            store, user, campaign_id, now(), name=name, audience=audience, channel=channel, offer=offer,
            holdout=holdout, variants=variants, priority=priority, service=service, quiet=quiet, send_at=when,
        )
    if json:
        print_json(campaign.as_dict())
        return
    out().print(f"Campaign {campaign.id} updated.")
    if before.state != "draft":
        warn(f"it was {before.state}: the plan and any approval are void; it is a draft again.")


def submit_cmd(campaign_id: IdArgument, db: DbOption = None, json: JsonOption = False) -> None:
    """Freeze the send plan (members, arms, reasons) and its hash, and ask for approval."""
    from core import campaigns

    with open_store(db) as store:
        user = who(store)
        campaign, summary = campaigns.submit(store, user, campaign_id, now())
    if json:
        print_json({"campaign": campaign.as_dict(), "preview": summary})
        return
    out().print(f"Campaign {campaign.id} submitted: {summary['sendable']:,} of {summary['matched']:,} matched "
                f"would be sent. Plan hash [bold]{campaign.plan_hash[:16]}[/]…")
    note(f"Another operator or owner approves it with: tierdesk campaign approve {campaign.id}")


def approve_cmd(campaign_id: IdArgument, db: DbOption = None, json: JsonOption = False) -> None:
    """Approve a submitted campaign: signs the hash of its frozen plan."""
    from core import campaigns

    with open_store(db) as store:
        user = who(store)
        campaign = campaigns.approve(store, user, campaign_id, now())
    if json:
        print_json(campaign.as_dict())
        return
    counts = campaign.as_dict()["plan_counts"] or {}
    out().print(f"✓ Campaign {campaign.id} approved by {campaign.approved_by}: {counts.get('sendable', 0):,} "
                f"members, plan hash [bold]{campaign.approved_hash[:16]}[/]…")
    note(f"Send it with: tierdesk campaign send {campaign.id}")


def reject_cmd(
    campaign_id: IdArgument,
    note_text: Annotated[str, typer.Option("--note", help="Why (kept in the audit log).")],
    db: DbOption = None,
) -> None:
    """Reject a draft or submitted campaign, with a note."""
    from core import campaigns

    with open_store(db) as store:
        campaign = campaigns.reject(store, who(store), campaign_id, note_text, now())
    out().print(f"✗ Campaign {campaign.id} rejected.")


def cancel_cmd(
    campaign_id: IdArgument,
    note_text: Annotated[Optional[str], typer.Option("--note", help="Why (kept in the audit log).")] = None,
    db: DbOption = None,
) -> None:
    """Cancel a campaign that has not started sending."""
    from core import campaigns

    with open_store(db) as store:
        campaign = campaigns.cancel(store, who(store), campaign_id, now(), note_text)
    out().print(f"✗ Campaign {campaign.id} cancelled.")


# --- reading ------------------------------------------------------------------------


def list_cmd(
    state: Annotated[Optional[str], typer.Option("--state", help="Only campaigns in this state.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """All campaigns, newest last."""
    from rich.table import Table

    from core import campaigns
    from core.clock import format_instant

    with open_store(db, readonly=True) as store:
        rows = campaigns.list_campaigns(store, state)
        zone = store.config.zone
    if json:
        print_json([campaign.as_dict() for campaign in rows])
        return
    if not rows:
        out().print("No campaigns yet. Create one with `tierdesk campaign new NAME --audience EXPR --channel CH`.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (("id", "right"), ("name", "left"), ("channel", "left"), ("state", "left"),
                            ("prio", "right"), ("send at", "left"), ("sendable", "right"), ("by", "left")):
        table.add_column(column, justify=justify)
    for campaign in rows:
        counts = campaign.as_dict()["plan_counts"] or {}
        table.add_row(
            str(campaign.id), campaign.name, campaign.channel + (" (service)" if campaign.service else ""),
            campaigns.STATE_LABELS[campaign.state], str(campaign.priority),
            format_instant(campaign.send_at, zone) if campaign.send_at else "when sent",
            f"{counts['sendable']:,}" if "sendable" in counts else "", campaign.created_by,
        )
    out().print(table)


def show_cmd(campaign_id: IdArgument, db: DbOption = None, json: JsonOption = False) -> None:
    """One campaign: definition, plan, approval, send outcome and history."""
    from rich.table import Table

    from core import campaigns
    from core.clock import format_instant

    with open_store(db, readonly=True) as store:
        data = campaigns.show(store, campaign_id)
        zone = store.config.zone
    if json:
        print_json(data)
        return
    console = out()
    console.print(f"[bold]Campaign {data['id']}[/] · {data['name']} · {data['channel']} · {data['state_label']}")
    console.print(f"audience: {data['audience']}")
    flags = "service: exempt from caps, not counted" if data["service"] else "marketing: obeys and counts toward caps"
    console.print(f"holdout {data['holdout_pct']:g}% · arms {', '.join(data['variants']) or 'treatment'} · "
                  f"priority {data['priority']} · quiet hours: {data['quiet']} · {flags}")
    if data["offer"]:
        console.print(f"offer: {data['offer']}")
    console.print(f"send at: {format_instant(data['send_at'], zone) if data['send_at'] else 'when sent'}")
    if data["plan_hash"]:
        console.print(f"plan: {sum(data['members'].values()):,} members frozen {format_instant(data['submitted_at'], zone)} "
                      f"by {data['submitted_by']} for {data['planned_day']}; hash {data['plan_hash']}")
        console.print("  " + ", ".join(f"{reason} {count:,}" for reason, count in data["members"].items()))
    if data["approved_by"]:
        console.print(f"✓ approved by {data['approved_by']} at {format_instant(data['approved_at'], zone)}, "
                      f"signing {data['approved_hash']}")
    if data["decided_note"]:
        console.print(f"note: {data['decided_note']}")
    if data["outcome"]:
        console.print("sent: " + ", ".join(f"{key} {count:,}" for key, count in data["outcome"].items()))
    if data["delivery"]:
        console.print("delivery: " + ", ".join(f"{key} {count:,}" for key, count in data["delivery"].items()))
    table = Table(box=None, header_style="bold", pad_edge=False, title="history", title_justify="left")
    for column in ("when", "who", "what"):
        table.add_column(column)
    for row in data["history"]:
        table.add_row(format_instant(row["at"], zone), row["actor"], row["action"].removeprefix("campaign."))
    console.print(table)


def preview_cmd(
    campaign_id: IdArgument,
    sample: Annotated[int, typer.Option("--sample", min=0, max=10_000,
                                                  help="How many example rows to show.")] = 20,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Who the campaign would reach now, and why not the others (a reason for every customer)."""
    from core import campaigns, plan

    with open_store(db, readonly=True) as store:
        campaign = campaigns.get(store, campaign_id)
        computed = plan.compute(store, campaign, now())
        summary = computed.summary(max(sample, 0))
        context = plan.describe(computed)
        language = store.config.language
    if json:
        print_json(summary)
        return
    _print_preview(campaign, summary, context, language)


def _print_preview(campaign, summary: dict, context: dict, language: str) -> None:
    from rich.table import Table

    from core.labels import segment_label

    from core import campaigns

    console = out()
    console.print(f"[bold]Campaign {campaign.id}[/] · {campaign.name} · {campaign.channel} · "
                  f"{campaigns.STATE_LABELS[campaign.state]}")
    console.print(f"reading as of {context['as_of']} · sends {context['send_at']} · "
                  f"budget counted on {context['planned_day']}" +
                  ("" if context["obeys_caps"] else " · service: caps not applied"))
    width = max(len(f"{summary['matched']:,}"), 5)
    labels = (("no_consent", "no consent or address"), ("opted_out", "opted out"), ("holdout", "held out (control)"),
              ("over_budget", "over budget"), ("quiet_hours", "quiet hours (dropped)"))
    console.print(f"  matched                 {summary['matched']:>{width},}")
    for key, label in labels:
        console.print(f"  − {label:<21} {summary['excluded'][key]:>{width},}")
    deferred = context["deferred"]
    console.print(f"  [bold]= sendable              {summary['sendable']:>{width},}[/]"
                  + (f"  (of which {deferred:,} deferred to the end of quiet hours)" if deferred else ""))
    if summary["by_segment"]:
        table = Table(box=None, header_style="bold", pad_edge=False, title="by segment", title_justify="left")
        # Short headings, so that the table fits 80 columns (the funnel above spells them out).
        columns = {"matched": "match", "sendable": "send", "deferred": "defer", "no_consent": "no cons",
                   "opted_out": "opt out", "holdout": "held", "over_budget": "budget", "quiet_hours": "quiet"}
        table.add_column("segment", no_wrap=True, overflow="ellipsis")
        for heading in columns.values():
            table.add_column(heading, justify="right", no_wrap=True)
        for segment, counts in summary["by_segment"].items():
            table.add_row(segment_label(segment, language), *(f"{counts[column]:,}" for column in columns))
        console.print(table)
    if summary["by_rule"]:
        table = Table(box=None, header_style="bold", pad_edge=False, title="budget", title_justify="left")
        for column, justify in (("rule", "left"), ("over budget", "right"), ("will count", "right"),
                                ("at cap after", "right")):
            table.add_column(column, justify=justify)
        for rule, counts in summary["by_rule"].items():
            after = counts["at_cap_after"]
            table.add_row(rule, f"{counts['over_budget']:,}", f"{counts['counted']:,}",
                          "" if after is None else f"{after:,}")
        console.print(table)
    if summary["sample"]:
        table = Table(box=None, header_style="bold", pad_edge=False, title="sample", title_justify="left")
        for column in ("customer", "segment", "arm", "reason", "send at"):
            table.add_column(column)
        for row in summary["sample"]:
            reason = row["reason"] + (f" ({row['rule']})" if row["rule"] else "")
            table.add_row(row["customer_id"], segment_label(row["segment"], language), row["arm"], reason,
                          row["send_at"] or "")
        console.print(table)


def columns_cmd(json: JsonOption = False) -> None:
    """The columns and functions an audience expression may use."""
    from rich.table import Table

    from core import audience

    columns = audience.columns_help()
    if json:
        print_json({"columns": columns, "functions": audience.FUNCTIONS})
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("column", "type", "meaning"):
        table.add_column(column)
    for column in columns:
        table.add_row(column["name"], column["type"], column["describe"])
    out().print(table)
    out().print("functions: " + ", ".join(sorted(audience.FUNCTIONS)))
    out().print(f"example: {audience.EXAMPLE}")


# --- sending ------------------------------------------------------------------------


def _with_progress(work, label: str):
    if not progress_enabled():
        return work(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int, stage: str) -> None:
            bar.update(task, completed=done, total=total, description=stage)

        return work(progress)


def send_cmd(campaign_id: IdArgument, db: DbOption = None, json: JsonOption = False) -> None:
    """Send an approved campaign (or resume a send that stopped), exactly once per member."""
    from core import send

    with open_store(db) as store:
        user = who(store)
        report = _with_progress(lambda progress: send.send(store, user, campaign_id, now(), progress=progress),
                                "sending")
        dropped = send.dropped_members(store, report.campaign) if report.dropped else []
    _print_report(report, dropped, json, "sent")


def resend_cmd(campaign_id: IdArgument, db: DbOption = None, json: JsonOption = False) -> None:
    """Deliver again only what was not delivered (failed or pending); nobody gets a second touch."""
    from core import send

    with open_store(db) as store:
        user = who(store)
        report = _with_progress(lambda progress: send.resend(store, user, campaign_id, now(), progress=progress),
                                "delivering")
    _print_report(report, [], json, "resent")


def _print_report(report, dropped: list[dict], as_json: bool, verb: str) -> None:
    if as_json:
        print_json(report.as_dict() | {"dropped_sample": dropped})
    else:
        console = out()
        mark = "✓" if not report.partial else "!"
        console.print(f"{mark} Campaign {report.campaign} {report.state}: {report.touched:,} of {report.planned:,} "
                      f"planned members touched; {report.delivered:,} delivered, {report.failed:,} failed, "
                      f"{report.pending:,} pending ({report.adapter}"
                      + (f": {report.file}" if report.file else "") + f") in {report.seconds:.1f} s.")
        if report.dropped:
            reasons = ", ".join(f"{reason} {count:,}" for reason, count in report.dropped.items())
            console.print(f"dropped at send time: {reasons}")
            for row in dropped:
                console.print(f"  {row['customer_id']}: {row['reason']}")
        for error in report.errors:
            warn(error)
        if report.failed or report.pending:
            note(f"Deliver the rest with: tierdesk campaign resend {report.campaign}")
        elif report.state == "sending":
            note(f"Not finished: run tierdesk campaign send {report.campaign} again to resume.")
    if report.partial:
        raise typer.Exit(1)


# --- results ------------------------------------------------------------------------


def results_cmd(campaign_id: IdArgument, db: DbOption = None, json: JsonOption = False) -> None:
    """Conversion and revenue per arm, uplift against control with a 95% interval."""
    from rich.table import Table

    from core import results
    from core.money import format_cents

    with open_store(db, readonly=True) as store:
        data = results.results(store, campaign_id, now())
        currency = store.config.currency
    if json:
        print_json(data)
        return
    console = out()
    console.print(f"[bold]Campaign {data['campaign']}[/] · {data['name']} · sent {data['send_time']} · "
                  f"conversion = a qualifying order within {data['attribution_days']} days")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (("arm", "left"), ("members", "right"), ("converted", "right"), ("rate", "right"),
                            ("revenue", "right"), ("per member", "right")):
        table.add_column(column, justify=justify)
    for name, arm in data["arms"].items():
        table.add_row(name, f"{arm['members']:,}", f"{arm['conversions']:,}", _pct(arm["conversion_rate"]),
                      format_cents(arm["revenue_cents"], currency),
                      format_cents(round(arm["revenue_per_member_cents"] or 0), currency))
    console.print(table)
    for comparison in data["comparisons"]:
        if comparison["verdict"] == "no data":
            console.print(f"{comparison['a']} vs {comparison['b']}: no data")
            continue
        conversion = comparison["conversion"]
        revenue = comparison["revenue_per_member_cents"]
        console.print(
            f"[bold]{comparison['a']} vs {comparison['b']}[/]: conversion {_points(conversion['uplift'])} "
            f"(95% {_points(conversion['low'])} to {_points(conversion['high'])}) → {conversion['verdict']}; "
            f"revenue per member {_money(revenue['uplift'], currency)} "
            f"(95% {_money(revenue['low'], currency)} to {_money(revenue['high'], currency)}) → {revenue['verdict']}"
        )
        for message in comparison["warnings"]:
            warn(message)
    for message in data["notes"]:
        note(message)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pt"


def _money(cents: float, currency: str) -> str:
    from core.money import format_cents

    text = format_cents(round(cents), currency)
    return text if text.startswith("-") else "+" + text


# --- the budget ---------------------------------------------------------------------


def budget_cmd(
    customer: Annotated[Optional[str], typer.Option(
        "--customer", help="One customer (id, email, phone or name): used / cap / remaining per rule.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """The touch budget today: usage per segment x channel, or one customer's budget per rule."""
    from core import budget, customers
    from core.clock import shop_today

    with open_store(db, readonly=True) as store:
        today = shop_today(store.config.zone, now())
        if customer:
            match = customers.resolve(store, customer)
            data: dict[str, Any] = budget.customer_budget(store, match.id, today)
            data["customer_id"] = match.customer_id
            data["name"] = match.name
        else:
            data = budget.overview(store, today)
        language = store.config.language
    if json:
        print_json(data)
        return
    if customer:
        _print_customer_budget(data, language)
    else:
        _print_overview(data, language)


def _print_customer_budget(data: dict, language: str) -> None:
    from rich.table import Table

    from core.labels import segment_label

    console = out()
    segment = segment_label(data["segment"], language) or "—"
    console.print(f"[bold]{data['name'] or ''}[/] {data['customer_id']} · segment {segment} · budget on {data['day']}")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (("rule", "left"), ("used", "right"), ("cap", "right"), ("remaining", "right"),
                            ("", "left"), ("next slot frees", "left")):
        table.add_column(column, justify=justify)
    for row in data["rules"]:
        status = {"ok": "✓ ok", "at cap": "! at cap", "never": "✗ never"}[row["status"]]
        table.add_row(row["rule"], str(row["used"]), str(row["cap"]), str(row["remaining"]), status,
                      row["frees_on"] or "")
    if not data["rules"]:
        console.print("No cap rule applies to this customer.")
    else:
        console.print(table)
    console.print("remaining today: " + ", ".join(
        f"{channel} {'no limit' if remaining is None else remaining}"
        for channel, remaining in data["remaining_by_channel"].items()
    ))
    if data["recent_touches"]:
        console.print("recent touches: " + "; ".join(
            f"{touch['when']} {touch['channel']} ({touch['campaign_name'] or touch['campaign']})"
            + ("" if touch["counts"] else " [service]")
            for touch in data["recent_touches"][:5]
        ))


def _print_overview(data: dict, language: str) -> None:
    from rich.table import Table

    from core.labels import segment_label

    console = out()
    console.print(f"[bold]Touch budget[/] on {data['day']}: " + "; ".join(
        f"{rule['max']} per {rule['per']} on {rule['channel']} for {segment_label(rule['segment'], language)}" for rule in data["rules"]
    ))
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (("segment", "left"), ("channel", "left"), ("customers", "right"), ("today", "right"),
                            ("7 days", "right"), ("30 days", "right"), ("at cap", "right")):
        table.add_column(column, justify=justify)
    for row in data["rows"]:
        table.add_row(segment_label(row["segment"], language) or "(no reading)", row["channel"], f"{row['customers']:,}",
                      f"{row['touches_day']:,}", f"{row['touches_week']:,}", f"{row['touches_month']:,}",
                      f"{row['at_cap']:,}")
    console.print(table)
    note("at cap: customers one more touch on that channel today would put over a rule.")


def register(app: typer.Typer) -> None:
    # In the order of a campaign's life, not of this file.
    campaign_app.command("new")(new_cmd)
    campaign_app.command("list")(list_cmd)
    campaign_app.command("show")(show_cmd)
    campaign_app.command("preview")(preview_cmd)
    campaign_app.command("columns")(columns_cmd)
    campaign_app.command("edit")(edit_cmd)
    campaign_app.command("submit")(submit_cmd)
    campaign_app.command("approve")(approve_cmd)
    campaign_app.command("reject")(reject_cmd)
    campaign_app.command("cancel")(cancel_cmd)
    campaign_app.command("send")(send_cmd)
    campaign_app.command("resend")(resend_cmd)
    campaign_app.command("results")(results_cmd)
    app.add_typer(campaign_app, name="campaign")
    app.command("budget")(budget_cmd)
