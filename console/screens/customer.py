"""One customer's story: identity, RFM card, histories, tags, orders, consent, touches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Sparkline, Static

from console.command_lines import command_line
from console.messages import ChangeSaved, ProfileLoaded, freeze
from console.screens.base import TierdeskScreen
from console.session import opened
from console.widgets import profile as pieces

if TYPE_CHECKING:
    from console.screens.opt_out import OptOutRequest
    from console.screens.tag_dialog import TagRequest
    from core.customers import Match


class CustomerScreen(TierdeskScreen):
    """Everything about one customer, and the changes a person may make (audited)."""

    BINDINGS = [
        Binding("w", "why", "Why", id="customer.why",
                tooltip="Explain the reading: orders used and excluded, scores, cut points, rules."),
        Binding("t", "add_tag", "Tag", id="customer.tag", tooltip="Add a manual tag, with a note (audited)."),
        Binding("u", "remove_tag", "Untag", id="customer.untag",
                tooltip="Remove a manual tag, with a note (audited)."),
        Binding("o", "opt_out", "Opt out", id="customer.opt_out",
                tooltip="Record an opt-out on a channel (asks to confirm; audited)."),
        Binding("x", "reveal", "Reveal", id="customer.reveal",
                tooltip="Show the email and phone unmasked (audited)."),
    ]

    def __init__(self, customer: "Match | int", *, trail: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.customer = customer
        self.match: "Match | None" = customer if not isinstance(customer, int) else None
        self.trail = trail
        self.data: Mapping[str, Any] | None = None
        self._revealed_identity: Mapping[str, Any] | None = None

    def crumbs(self) -> Iterable[str]:
        name = self.match.customer_id if self.match else "…"
        return (*self.trail, name) if self.trail else ("Customers", name)

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="story"):
            yield Static("", id="identity", classes="section")
            yield Static("", id="card", classes="section")
            yield Static("", id="histories", classes="section")
            yield Static("", id="tags-title", classes="title")
            tags = DataTable(id="tag-timeline", show_header=False, cursor_type="none")
            tags.can_focus = False
            yield tags
            yield Static("", id="orders-title", classes="title")
            yield Sparkline([], id="spend", summary_function=max)
            yield Static("", id="spend-note", classes="note")
            orders = DataTable(id="orders", cursor_type="none")
            orders.can_focus = False
            yield orders
            yield Static(Text("Consent", style="bold"), classes="title")
            yield Static("", id="consent", classes="section")
            yield Static("", id="touches", classes="section")

    def on_mount(self) -> None:
        # Text instead of a loading overlay: the story keeps the focus from the
        # start (a loading widget cannot take it, and moving it later rebuilds
        # the footer once more).
        self.query_one("#identity", Static).update(Text("… loading the customer", style="dim"))
        self.query_one("#story").focus()
        tags = self.query_one("#tag-timeline", DataTable)
        for key in ("when", "tag", "source", "note"):
            tags.add_column(key, key=key)
        orders = self.query_one("#orders", DataTable)
        for key in ("order", "placed", "net", "status", "category"):
            orders.add_column(key, key=key)
        self.watch(self.app, "language", lambda _: self._draw(), init=False)
        self.tierdesk.reading_changed.subscribe(self, lambda _: self.load())
        self.load()

    # --- loading -----------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="profile", description="Loading the customer")
    def load(self, reveal: bool = False) -> None:
        """``core.customers.profile``; revealing opens a writing connection (it is audited)."""
        from core import browse, customers
        from core.users import current_user

        with opened(self.tierdesk.db_path, write=reveal) as store:
            match = self.match or browse.match_by_id(store, int(self.customer))  # type: ignore[arg-type]
            data = customers.profile(store, match, current_user(store), reveal=reveal, now=self.tierdesk.now())
        self.post_message(ProfileLoaded(match, freeze(data), reveal))

    def on_profile_loaded(self, message: ProfileLoaded) -> None:
        self.match = message.match
        self.data = message.profile
        if message.revealed:
            self._revealed_identity = message.profile["customer"]
        self.set_crumbs(*self.crumbs())
        self._draw()
        self.refresh_bindings()

    # --- drawing -------------------------------------------------------------------

    def _draw(self) -> None:
        data = self.data
        if data is None:
            return
        from core import lifecycle, segments
        from core.money import format_cents

        session = self.tierdesk.session
        currency = session.currency if session else "$"
        language = self.tierdesk.language
        user = session.user if session else None
        who = self._revealed_identity or data["customer"]
        self.query_one("#identity", Static).update(
            pieces.identity(who, can_reveal=bool(user and user.can("reveal")))
        )
        reading = data["reading"]
        self.query_one("#card", Static).update(pieces.rfm_card(
            reading, language=language, currency=currency,
            refresh_command=command_line(self.tierdesk.db_path, "refresh"),
        ))
        histories = Text()
        if reading is not None:
            histories.append("segment  ", style="bold")
            histories.append_text(pieces.history(data["segment_history"], reading["segment"],
                                                 reading["first_reading"],
                                                 label=lambda name: segments.label(name, language)))
            histories.append("\nstage    ", style="bold")
            histories.append_text(pieces.history(data["lifecycle_history"], reading["lifecycle"],
                                                 reading["first_reading"],
                                                 label=lambda name: lifecycle.label(name, language)))
            current = list(reading["rule_tags"]) + [f"{tag} (manual)" for tag in reading["manual_tags"]]
            histories.append("\ntags     ", style="bold")
            histories.append(", ".join(current) or "none")
        self.query_one("#histories", Static).update(histories)

        timeline = data["tags"]
        changes = f"{len(timeline)} change{'s' if len(timeline) != 1 else ''}" if timeline else "no changes yet"
        self.query_one("#tags-title", Static).update(Text.assemble(("Tag timeline ", "bold"), changes))
        tags = self.query_one("#tag-timeline", DataTable)
        tags.clear()
        for event in timeline:
            mark = "+" if event["action"] == "added" else "−"
            tags.add_row(Text(event["when"] or ""), Text(f"{mark} {event['tag']}"), Text(event["source"] or ""),
                         Text(event["note"] or ""))
        tags.display = bool(timeline)

        orders = data["orders"]
        self.query_one("#orders-title", Static).update(pieces.orders_title(orders, currency))
        series, span = pieces.monthly_series(orders["monthly_cents"], reading["as_of"] if reading else None)
        spark = self.query_one("#spend", Sparkline)
        spark.data = series
        spark.display = any(series)
        peak = max(series) if series else 0
        self.query_one("#spend-note", Static).update(
            Text(f"monthly net spend {span} · peak {format_cents(int(peak), currency)}" if any(series)
                 else "no qualifying orders yet", style="dim")
        )
        table = self.query_one("#orders", DataTable)
        table.clear()
        for order in orders["recent"]:
            status = order["status"] + (f", refunded {format_cents(order['refunded_cents'], currency)}"
                                        if order["refunded_cents"] else "")
            table.add_row(Text(order["order_id"]), Text(order["placed"]),
                          Text(format_cents(order["net_cents"], currency), justify="right"),
                          Text(status), Text(order["category"] or ""))
        table.display = bool(orders["recent"])

        self.query_one("#consent", Static).update(pieces.consent(data["consent"]))
        touches = data["touches"]
        text = Text.assemble(("Touches received ", "bold"))
        if not touches:
            text.append("none yet", style="dim")
        else:
            text.append(f"{len(touches)}")
            for touch in touches[:10]:
                text.append(f"\n{touch['when']}  {touch['channel']:<6} {touch['campaign_name'] or touch['campaign']}")
        self.query_one("#touches", Static).update(text)

    # --- keys ---------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        session = self.tierdesk.session
        user = session.user if session else None
        if self.data is None or user is None:
            return None if action in ("why", "add_tag", "remove_tag", "opt_out") else False
        if action in ("add_tag", "remove_tag"):
            if not user.can("tag"):
                return None
            if action == "remove_tag":
                reading = self.data["reading"]
                return bool(reading and reading["manual_tags"]) or None
            return True
        if action == "opt_out":
            return user.can("consent") or None
        if action == "reveal":
            if not self.data["customer"]["masked"] or self._revealed_identity is not None:
                return False
            return user.can("reveal") or None
        return True

    def action_why(self) -> None:
        from console.screens.why import WhyScreen

        if self.match is not None:
            self.app.push_screen(WhyScreen(self.match, trail=tuple(self.crumbs())))

    def action_reveal(self) -> None:
        self.load(reveal=True)

    def action_add_tag(self) -> None:
        from console.screens.tag_dialog import TagDialog

        if self.match is not None:
            self.app.push_screen(
                TagDialog(self.match, self.store_tag, adding=True, cursor_blink=self.tierdesk.cursor_blink),
                self._tag_saved,
            )

    def action_remove_tag(self) -> None:
        from console.screens.tag_dialog import TagDialog

        reading = self.data["reading"] if self.data else None
        if self.match is not None and reading:
            self.app.push_screen(
                TagDialog(self.match, self.store_tag, adding=False, choices=tuple(reading["manual_tags"]),
                          cursor_blink=self.tierdesk.cursor_blink),
                self._tag_saved,
            )

    def _tag_saved(self, saved: ChangeSaved | None) -> None:
        if saved is not None:
            self._show_saved(saved)
            if saved.changed:
                self.tierdesk.tags_changed.publish(None)

    def action_opt_out(self) -> None:
        from console.screens.confirm import ConfirmDialog
        from console.screens.opt_out import OptOutDialog

        if self.match is None or self.data is None:
            return
        match = self.match
        states = {channel: info["state"] for channel, info in self.data["consent"].items()}

        def confirmed(request: "OptOutRequest", sure: bool | None) -> None:
            if sure:
                self.save_opt_out(request)

        def chosen(request: "OptOutRequest | None") -> None:
            if request is None:
                return
            self.app.push_screen(
                ConfirmDialog(
                    "Record an opt-out",
                    f"{match.customer_id} {match.name or ''} will get no more {request.channel} messages "
                    "from campaigns. This is recorded in the consent history and the audit log.",
                    confirm=f"✗ Opt out of {request.channel}",
                ),
                lambda sure: confirmed(request, sure),
            )

        self.app.push_screen(OptOutDialog(match, states, cursor_blink=self.tierdesk.cursor_blink), chosen)

    # --- writes (each on its own connection; never cancelled half-way) ----------------

    def store_tag(self, request: "TagRequest") -> ChangeSaved:
        """Add or remove a manual tag (the tag dialog runs this in its worker, to show a refusal itself)."""
        from core import customers
        from core.users import current_user

        assert self.match is not None
        with opened(self.tierdesk.db_path, write=True) as store:
            user = current_user(store)
            if request.adding:
                changed = customers.add_tag(store, user, self.match, request.tag, request.note, self.tierdesk.now())
                summary = (f"Tagged {self.match.customer_id} with {request.tag.strip()}." if changed else
                           f"{self.match.customer_id} already has {request.tag.strip()}; nothing changed.")
            else:
                customers.remove_tag(store, user, self.match, request.tag, request.note, self.tierdesk.now())
                changed, summary = True, f"Removed {request.tag} from {self.match.customer_id}."
        return ChangeSaved(summary, changed)

    @work(thread=True, exit_on_error=False, group="write", description="Recording an opt-out")
    def save_opt_out(self, request: "OptOutRequest") -> None:
        from core import customers
        from core.users import current_user

        assert self.match is not None
        with opened(self.tierdesk.db_path, write=True) as store:
            changed = customers.set_consent(store, current_user(store), self.match, request.channel, False,
                                            request.note or None, self.tierdesk.now())
        summary = (f"{self.match.customer_id} opted out of {request.channel}." if changed else
                   f"{self.match.customer_id} had already opted out of {request.channel}; nothing changed.")
        self.post_message(ChangeSaved(summary, changed))

    def on_change_saved(self, message: ChangeSaved) -> None:
        self._show_saved(message)

    def _show_saved(self, saved: ChangeSaved) -> None:
        self.notify(saved.summary, title="Saved" if saved.changed else "No change", markup=False)
        self.load()
