"""The reading: refresh, tiers, one customer, why, who moved, and manual changes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from console.common import DbOption, JsonOption, err, note, now, open_store, out, print_json, progress_enabled, warn, who

tag_app = typer.Typer(help="Add or remove a manual tag (with a note, audited).", no_args_is_help=True)

AsOfOption = Annotated[
    Optional[str], typer.Option("--as-of", help="The last shop day to read (YYYY-MM-DD); default: yesterday.")
]


def _as_of(store, text: str | None):
    from core.clock import default_as_of, parse_date

    if text:
        return parse_date(text, "--as-of")
    return default_as_of(store.config.zone, now())


def refresh_cmd(db: DbOption = None, as_of: AsOfOption = None, json: JsonOption = False) -> None:
    """Compute the reading (scores, segments, lifecycle, tags) and record what changed."""
    from core.refresh import refresh

    with open_store(db) as store:
        user = who(store)
        for message in store.config.warnings:
            warn(message)
        day = _as_of(store, as_of)
        result = _with_progress(lambda progress: refresh(store, as_of=day, actor=user, now=now(), progress=progress))
    if json:
        print_json({key: value for key, value in result.__dict__.items() if key != "counts"})
        return
    moves = ("baseline: the first reading, so nothing moved yet" if result.baseline else
             f"{result.tier_moves:,} changed segment, {result.lifecycle_moves:,} changed stage, "
             f"{result.tag_changes:,} tag changes")
    out().print(
        f"Reading at [bold]{result.as_of}[/] ({result.model}): {result.population:,} customers, "
        f"{result.scored:,} scored, {result.changed_rows:,} rows changed in {result.seconds:.2f} s.\n{moves}."
    )
    for message in result.warnings:
        warn(message)


def _with_progress(work):
    if not progress_enabled():
        return work(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err(),
                  transient=True) as bar:
        task = bar.add_task("refresh", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, description=stage)

        return work(progress)


def tiers_cmd(
    db: DbOption = None,
    model: Annotated[Optional[str], typer.Option("--model", help="rf11, cn8 or a custom map name.")] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Show the 5x5 R x F grid of counts.")] = False,
    json: JsonOption = False,
) -> None:
    """Customers, share, revenue and moves per segment at the latest reading."""
    from rich.table import Table

    from core import tiers
    from core.money import format_compact

    with open_store(db, readonly=True) as store:
        data = tiers.summary(store, model)
        config = store.config
    if json:
        print_json(data)
        return
    refresh = data["refresh"]
    out().print(
        f"[bold]Tiers[/] at {refresh['as_of']} · {data['model']} · {refresh['lookback_days']}-day window · "
        f"{refresh['population']:,} customers, {refresh['scored']:,} scored"
    )
    for warning in data["warnings"]:  # said at the refresh, and true of every view of its reading
        warn(warning)
    if grid:
        _print_grid(data, config.language)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name, justify in (("segment", "left"), ("customers", "right"), ("share", "right"),
                          ("revenue", "right"), ("rev share", "right"), ("R", "right"), ("F", "right"),
                          ("M", "right"), ("in", "right"), ("out", "right")):
        table.add_column(name, justify=justify)
    for row in data["rows"]:
        table.add_row(
            row["label"], f"{row['customers']:,}", f"{row['share']:.1%}",
            format_compact(row["revenue_cents"], config.currency), f"{row['revenue_share']:.1%}",
            _avg(row["avg_r"]), _avg(row["avg_f"]), _avg(row["avg_m"]),
            _moves(row["moved_in"], "+"), _moves(row["moved_out"], "-"),
        )
    out().print(table)
    if not data["moves_tracked"]:
        note("in/out: not tracked for this reading (the first reading, or another model).")


def _avg(value) -> str:
    return "" if value is None else f"{value:.1f}"


def _moves(value, sign: str) -> str:
    return "—" if value is None else (f"{sign}{value:,}" if value else "0")


def _print_grid(data: dict, language: str) -> None:
    from rich.table import Table

    from core import labels, tiers

    # Only rf11 is drawn on R x F cells; another model's segments cut across them (as in the console).
    regions = tiers.grid_regions() if data["model"] == "rf11" else None
    table = Table(box=None, header_style="bold", title="customers by R (rows) and F (columns)", title_justify="left",
                  min_width=40)
    table.add_column("")
    for f in range(1, 6):
        table.add_column(f"F{f}", justify="right")
    for r in range(5, 0, -1):
        cells = []
        for f in range(1, 6):
            count = data["grid"][r - 1][f - 1]
            if regions is None:
                cells.append(f"{count:,}")
                continue
            region = labels.segment_label(regions[r - 1][f - 1], language)
            cells.append(f"{count:,}\n[dim]{region}[/]")
        table.add_row(f"R{r}", *cells, end_section=regions is not None)
    out().print(table)
    if regions is None:
        note(f"{data['model']} does not map onto R x F cells; counts only.")


def customer_cmd(
    query: Annotated[str, typer.Argument(help="Customer id, email, phone, or the start of a name.")],
    db: DbOption = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show email and phone unmasked (audited).")] = False,
    json: JsonOption = False,
) -> None:
    """Who is this customer: scores, tier, tags and their history, orders, consent."""
    from core import customers

    with open_store(db, readonly=not reveal) as store:
        user = who(store)
        matches = customers.find(store, query, limit=21)
        if not matches:
            from core.errors import NotFound

            raise NotFound(f"no customer matches {query!r}",
                           hint="Search by customer id, email, phone, or the start of a name.")
        if len(matches) > 1:
            _print_matches(store, matches, user, json)
            return
        data = customers.profile(store, matches[0], user, reveal=reveal, now=now())
        config = store.config
    if json:
        print_json(data)
        return
    _print_profile(data, config)


def _print_matches(store, matches, user, as_json: bool) -> None:
    from rich.table import Table

    from core.contacts import mask_email, mask_phone

    masked = user.masks_contacts
    rows = [
        {"customer_id": m.customer_id, "name": m.name,
         "email": mask_email(m.email) if masked else m.email,
         "phone": mask_phone(m.phone) if masked else m.phone, "region": m.region}
        for m in matches[:20]
    ]
    if as_json:
        print_json({"matches": rows, "more": len(matches) > 20})
        return
    table = Table(box=None, header_style="bold")
    for column in ("customer_id", "name", "email", "phone", "region"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(row[key] or "" for key in ("customer_id", "name", "email", "phone", "region")))
    out().print(f"{len(rows)}{'+' if len(matches) > 20 else ''} customers match; pick one by id:")
    out().print(table)


def _print_profile(data: dict, config) -> None:
    from rich.table import Table

    from core import labels
    from core.money import format_cents

    language = config.language
    money = lambda cents: format_cents(cents, config.currency)  # noqa: E731
    who_ = data["customer"]
    console = out()
    console.print(f"[bold]{who_['name'] or ''}[/]  {who_['customer_id']}")
    contact = "  ".join(part for part in (who_["email"], who_["phone"], who_["region"], who_["timezone"]) if part)
    console.print(f"{contact}  signed up {who_['signed_up']}" + ("  [dim](masked: --reveal)[/]" if who_["masked"] else ""))
    reading = data["reading"]
    console.print()
    if reading is None:
        console.print("[dim]No reading for this customer yet (run `tierdesk refresh`).[/]")
    else:
        standing = reading["standing"]

        def beats(key: str) -> str:
            share = standing.get(key)
            return "" if share is None else f"  better than {share:.0%}"

        console.print(
            f"[bold]{labels.segment_label(reading['segment'], language)}[/] · "
            f"{labels.stage_label(reading['lifecycle'], language)} · reading of {reading['as_of']}"
        )
        score = lambda value: "–" if value is None else str(value)  # noqa: E731
        recency = "no order" if reading["recency_days"] is None else f"{reading['recency_days']} days ago"
        console.print(f"  R {score(reading['r_score'])}  last order {recency}{beats('recency')}")
        console.print(f"  F {score(reading['f_score'])}  {reading['frequency']} orders in the window{beats('frequency')}")
        console.print(f"  M {score(reading['m_score'])}  {money(reading['monetary_cents'])} spent"
                      f" (AOV {money(reading['aov_cents']) or '–'}){beats('monetary')}")
        tags_line = ", ".join(reading["rule_tags"] + [f"{tag} (manual)" for tag in reading["manual_tags"]])
        console.print(f"  tags: {tags_line or 'none'}")
        history = data["segment_history"]
        if history:
            steps = " → ".join(
                [labels.segment_label(history[0]["from_value"], language) or "(new)"]
                + [f"{labels.segment_label(step['to_value'], language)} ({step['as_of']})" for step in history]
            )
            console.print(f"  segment: {steps}")
        else:
            console.print(f"  segment: {labels.segment_label(reading['segment'], language)} since the reading of "
                          f"{reading['first_reading']}")
        stages = data["lifecycle_history"]
        if stages:
            steps = " → ".join([labels.stage_label(stages[0]["from_value"], language) or "(new)"]
                               + [f"{labels.stage_label(s['to_value'], language)} ({s['as_of']})" for s in stages])
            console.print(f"  stage: {steps}")
    if data["tags"]:
        console.print("\n[bold]Tag timeline[/]")
        table = Table(box=None, header_style="bold", show_header=False, pad_edge=False)
        for _ in range(4):
            table.add_column()
        for event in data["tags"]:
            mark = "+" if event["action"] == "added" else "-"
            table.add_row(event["when"], f"{mark} {event['tag']}", event["source"], event["note"] or "")
        console.print(table)
    orders = data["orders"]
    console.print(f"\n[bold]Orders[/] {orders['count']} ({orders['qualifying']} counted, "
                  f"{money(orders['net_cents'])} net)")
    if orders["recent"]:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column, justify in (("order", "left"), ("placed", "left"), ("net", "right"), ("status", "left"),
                                ("category", "left")):
            table.add_column(column, justify=justify)
        for order in orders["recent"]:
            status = order["status"]
            if order["refunded_cents"]:
                status += f", refunded {money(order['refunded_cents'])}"
            table.add_row(order["order_id"], order["placed"], money(order["net_cents"]), status,
                          order["category"] or "")
        console.print(table)
    console.print("\n[bold]Consent[/]  " + "   ".join(
        f"{channel}: {_consent_mark(info['state'])} {info['word']}" for channel, info in data["consent"].items()))
    touches = data["touches"]
    if touches:
        console.print(f"\n[bold]Touches received[/] {len(touches)}")
        for touch in touches[:10]:
            console.print(f"  {touch['when']}  {touch['channel']}  {touch['campaign_name'] or touch['campaign']}")


def _consent_mark(state: int) -> str:
    return {1: "✓", 0: "·", -1: "✗"}[state]


def why_cmd(
    query: Annotated[str, typer.Argument(help="Customer id, email, phone, or the start of a name.")],
    db: DbOption = None,
    as_of: AsOfOption = None,
    json: JsonOption = False,
) -> None:
    """Explain a customer's reading: orders used and excluded, scores, cut points, rules."""
    from core import customers, explain
    from core.clock import parse_date

    with open_store(db, readonly=True) as store:
        match = customers.resolve(store, query)
        day = parse_date(as_of, "--as-of") if as_of else None
        data = explain.explain(store, match, day)
        config = store.config
    if json:
        print_json(data)
        return
    _print_why(data, config)


def _print_why(data: dict, config) -> None:
    from rich.table import Table

    from core import labels
    from core.money import format_cents

    language = config.language
    money = lambda cents: format_cents(cents, config.currency)  # noqa: E731
    console = out()
    window = data["window"]
    console.print(f"[bold]Why {data['name'] or ''} ({data['customer_id']}) reads this way at {data['as_of']}[/]")
    console.print(f"[dim]from {data['source']}; window {window['start']} .. {window['end']} "
                  f"({window['days']} days)[/]\n")
    if data["orders"]:
        table = Table(box=None, header_style="bold", pad_edge=False, title="Orders", title_justify="left")
        for column, justify in (("order", "left"), ("date", "left"), ("net", "right"), ("", "left")):
            table.add_column(column, justify=justify)
        for order in data["orders"]:
            verdict = order["used"] if order["used"] != "excluded" else f"excluded: {order['reason']}"
            mark = {"counted": "✓", "excluded": "✗"}.get(order["used"], "·")
            table.add_row(order["order_id"], order["date"], money(order["net_cents"]), f"{mark} {verdict}")
        console.print(table)
    else:
        console.print("Orders: none")
    facts = data["facts"]
    console.print()
    for line in data["scores"]:
        value = line["value"]
        shown = "–" if value is None else (money(value) if line["score"] == "M" else f"{value:,}")
        unit = " days" if line["score"] == "R" and value is not None else ""
        assigned = "–" if line["assigned"] is None else line["assigned"]
        band = ""
        if line["band"]:
            low, high, count = line["band"]
            if line["score"] == "M":
                low, high = money(low), money(high)
            band = f"  band {low}..{high} holds {count:,}"
        console.print(f"{line['score']} = {shown}{unit} → score {assigned}  [dim]({line['rule']}){band}[/]")
    console.print(f"AOV {money(facts['aov_cents']) or '–'}\n")
    segment = labels.segment_label(data["segment"], language) if data["segment"] else "(not in the reading)"
    console.print(f"[bold]Segment[/] {segment}: {labels.named_in(data['segment_rule'], language)}")
    console.print(f"[bold]Lifecycle[/] {labels.stage_label(data['lifecycle'], language)}: first rule that matches")
    for step in data["lifecycle_trace"]:
        mark = "→" if step["chosen"] else ("✓" if step["matched"] else "·")
        console.print(f"  {mark} {labels.stage_label(step['stage'], language)}: {step['rule']}")
        if step["chosen"]:
            break
    console.print("[bold]Tags[/]")
    for rule in data["tags"]:
        mark = "✓" if rule["fired"] else "·"
        console.print(f"  {mark} {rule['tag']}: {rule['rule']}")
    for tag in data["manual_tags"]:
        console.print(f"  ✓ {tag['tag']} (manual, by {tag['added_by']}: {tag['note']})")


def moved_cmd(
    db: DbOption = None,
    from_segment: Annotated[Optional[str], typer.Option("--from", help="Only moves out of this segment.")] = None,
    to_segment: Annotated[Optional[str], typer.Option("--to", help="Only moves into this segment.")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Moves since this date (default: the latest refresh).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1_000_000,
                                                help="How many customers to list.")] = 50,
    json: JsonOption = False,
) -> None:
    """Who moved between segments."""
    from rich.table import Table

    from core import labels, tiers
    from core.clock import parse_date

    with open_store(db, readonly=True) as store:
        day = parse_date(since, "--since") if since else None
        data = tiers.moved(store, from_segment=from_segment, to_segment=to_segment, since=day, limit=limit)
        language = store.config.language
    if json:
        print_json(data)
        return
    label = lambda name: labels.segment_label(name, language) if name and name != "(new)" else (name or "(new)")  # noqa: E731
    out().print(f"[bold]{data['total']:,}[/] moves {data['scope']} ({data['model']})")
    if not data["flows"]:
        return
    flows = Table(box=None, header_style="bold", pad_edge=False)
    flows.add_column("from")
    flows.add_column("to")
    flows.add_column("customers", justify="right")
    for flow in data["flows"][:15]:
        flows.add_row(label(flow["from_segment"]), label(flow["to_segment"]), f"{flow['customers']:,}")
    out().print(flows)
    people = Table(box=None, header_style="bold", pad_edge=False, title=f"latest {data['shown']}", title_justify="left")
    for column in ("customer", "name", "from", "to", "as of"):
        people.add_column(column)
    for row in data["customers"]:
        people.add_row(row["customer_id"], row["name"] or "", label(row["from_segment"]), label(row["to_segment"]),
                       row["as_of"])
    out().print(people)


@tag_app.command("add")
def tag_add(
    customer: Annotated[str, typer.Argument(help="Customer id, email or phone.")],
    tag: Annotated[str, typer.Argument(help="The tag.")],
    note_text: Annotated[str, typer.Option("--note", help="Why (kept in the tag timeline).")] = "",
    db: DbOption = None,
) -> None:
    """Tag a customer by hand."""
    from core import customers

    with open_store(db) as store:
        match = customers.resolve(store, customer)
        added = customers.add_tag(store, who(store), match, tag, note_text, now())
    if added:
        out().print(f"Tagged {match.customer_id} with {tag.strip()}.")
    else:
        note(f"{match.customer_id} already has the tag {tag.strip()}; nothing changed.")


@tag_app.command("remove")
def tag_remove(
    customer: Annotated[str, typer.Argument(help="Customer id, email or phone.")],
    tag: Annotated[str, typer.Argument(help="The tag.")],
    note_text: Annotated[str, typer.Option("--note", help="Why (kept in the tag timeline).")] = "",
    db: DbOption = None,
) -> None:
    """Remove a manual tag."""
    from core import customers

    with open_store(db) as store:
        match = customers.resolve(store, customer)
        customers.remove_tag(store, who(store), match, tag, note_text, now())
    out().print(f"Removed {tag.strip()} from {match.customer_id}.")


def consent_cmd(
    customer: Annotated[str, typer.Argument(help="Customer id, email or phone.")],
    channel: Annotated[str, typer.Option("--channel", help="email, sms, push or wecom.")],
    opt_in: Annotated[bool, typer.Option("--in", help="The customer opted in.")] = False,
    opt_out: Annotated[bool, typer.Option("--out", help="The customer opted out.")] = False,
    note_text: Annotated[Optional[str], typer.Option("--note", help="Where this came from.")] = None,
    db: DbOption = None,
) -> None:
    """Record a customer's consent (or opt-out) on a channel, audited."""
    from core import customers
    from core.errors import InputError

    if opt_in == opt_out:  # neither, or both: a consent record must not guess
        raise InputError("--in and --out contradict each other: give one" if opt_in else "say --in or --out")
    with open_store(db) as store:
        match = customers.resolve(store, customer)
        changed = customers.set_consent(store, who(store), match, channel, opt_in, note_text, now())
    state = "opted in to" if opt_in else "opted out of"
    if changed:
        out().print(f"{match.customer_id} {state} {channel}.")
    else:
        note(f"{match.customer_id} had already {state} {channel}; nothing changed.")


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh_cmd)
    app.command("tiers")(tiers_cmd)
    app.command("customer")(customer_cmd)
    app.command("why")(why_cmd)
    app.command("moved")(moved_cmd)
    app.add_typer(tag_app, name="tag")
    app.command("consent")(consent_cmd)
