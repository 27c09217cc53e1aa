"""Tiers: who are my customers — segments, the R x F grid and revenue by segment."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import DataTable, Label, ProgressBar, Static

from console.command_lines import command_line, demo_beside
from console.messages import StoreFacts, TiersData, TiersLoaded
from console.screens.base import TierdeskScreen
from console.session import opened
from console.widgets.charts import RevenueBars, RFGrid

VIEWS = ("table", "grid", "revenue")
COLUMNS = (
    ("segment", "segment"), ("customers", "customers"), ("share", "share"), ("revenue", "rev"),
    ("avg_r", "R"), ("avg_f", "F"), ("avg_m", "M"), ("moved_in", "in"), ("moved_out", "out"),
)


def _number(value: float | int | None, fmt: str) -> Text:
    return Text("–" if value is None else format(value, fmt), justify="right")


def _moves(value: int | None, sign: str) -> Text:
    if value is None:
        return Text("—", justify="right", style="dim")
    return Text(f"{sign}{value:,}" if value else "0", justify="right")


class RefreshBar(Horizontal):
    """The progress of a running refresh (hidden otherwise)."""

    DEFAULT_CSS = """
    RefreshBar { height: 1; display: none; padding: 0 1; }
    RefreshBar.-running { display: block; }
    RefreshBar Label { width: auto; margin-right: 1; }
    RefreshBar ProgressBar { width: 1fr; }
    """

    def compose(self) -> Iterable[Widget]:
        yield Label("", id="refresh-stage")
        yield ProgressBar(total=1.0, show_eta=False, id="refresh-progress")

    def on_mount(self) -> None:
        self.watch(self.app, "refreshing", self._show_running, init=False)
        self.watch(self.app, "refresh_stage", self._show_stage)

    def _show_running(self, running: bool) -> None:
        self.set_class(running, "-running")

    def _show_stage(self, stage: tuple[str, float]) -> None:
        name, fraction = stage
        self.query_one("#refresh-stage", Label).update(Text(f"… refreshing: {name}"))
        self.query_one("#refresh-progress", ProgressBar).update(progress=fraction)


class TiersScreen(TierdeskScreen):
    """The segment table, the R x F heat map and revenue by segment, at the latest reading.

    On a wide terminal all three are shown; on a narrow one ``v`` cycles them.
    """

    SECTION = "tiers"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (132, "-wide")]
    BINDINGS = [
        Binding("enter", "members", "Members", priority=True, id="tiers.members",
                tooltip="Open the highlighted segment's members."),
        Binding("i", "moved", "Moved", id="tiers.moved",
                tooltip="Who moved into or out of the highlighted segment in the latest refresh."),
        Binding("m", "model", "Model", id="tiers.model",
                tooltip="Switch the segment model: rf11, cn8 and the config's own maps."),
        Binding("l", "language", "Lang", id="tiers.language", tooltip="Show names in English or Chinese."),
        Binding("r", "refresh", "Refresh", id="tiers.refresh",
                tooltip="Compute a new reading (asks for the as-of); the console stays usable meanwhile."),
        Binding("v", "view", "View", id="tiers.view",
                tooltip="Narrow terminals: cycle the table, the R × F grid and the revenue bars."),
        # Textual's table binds Home and End to its first and last column,
        # which a row cursor does not have; here they jump as in the member lists.
        Binding("home", "first_row", "First", show=False, priority=True, id="tiers.first",
                tooltip="Jump to the first segment."),
        Binding("end", "last_row", "Last", show=False, priority=True, id="tiers.last",
                tooltip="Jump to the last segment."),
    ]

    view: var[str] = var("table")
    data: var[TiersData | None] = var(None)

    def __init__(self) -> None:
        super().__init__(classes="-view-table")
        self._requested: str | None = None
        self._started = False
        self._warmed = False
        self._warned_for: int | None = None

    def crumbs(self) -> Iterable[str]:
        return ("Tiers",)

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="tiers-body"):
            with Vertical(id="table-pane"):
                yield Static("", id="tiers-caption")
                table: DataTable = DataTable(id="segments", cursor_type="row", zebra_stripes=True)
                table.loading = True
                yield table
                yield Static("", id="moves-note")
                yield Static("", id="tiers-message")
            # Not in the focus chain: the keys act on the segment table.
            with VerticalScroll(id="charts-pane", can_focus=False):
                with Vertical(id="grid-pane"):
                    yield Static(Text("Customers by R × F", style="bold"), classes="pane-title")
                    yield RFGrid(id="grid")
                with Vertical(id="bars-pane"):
                    yield Static(Text("Revenue by segment (the window's net spend)", style="bold"),
                                 classes="pane-title")
                    yield RevenueBars(id="bars")
        yield RefreshBar()

    def on_mount(self) -> None:
        table = self.query_one("#segments", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.watch(self.app, "language", lambda _: self._draw(), init=False)
        self.watch(self.app, "session", self._session_changed)
        self.watch(self.app, "failure", self._show_failure)
        self.tierdesk.reading_changed.subscribe(self, self._reading_changed)

    def _reading_changed(self, _: None) -> None:
        self._warmed = False
        self.reload()

    def _session_changed(self, session) -> None:
        # The first load waits for the session: opening it migrates an older store.
        if session is not None and not self._started:
            self._started = True
            self.reload()
        self.refresh_bindings()

    def _show_failure(self, failure: str | None) -> None:
        if failure is None:
            return
        self.query_one("#segments", DataTable).loading = False
        self._show_message(Text(f"✗ {failure}\n\nFix the store or its config, then start tierdesk again (q quits)."))

    def _show_message(self, text: Text) -> None:
        """Say why there are no tiers to show; with no reading at all it takes the charts' width too."""
        note = self.query_one("#tiers-message", Static)
        note.update(text)
        note.display = True
        self.set_class(self.data is None, "-no-reading")
        self.view = "table"  # the message is in the table's pane
        self.refresh_bindings()

    def _hide_message(self) -> None:
        self.query_one("#tiers-message", Static).display = False
        self.set_class(False, "-no-reading")

    def reload(self) -> None:
        """Fetch the tiers of the current model (in a worker); what is on show stays until then."""
        self._requested = self.tierdesk.model
        if self.data is None:
            self.query_one("#segments", DataTable).loading = True
        self.load(self._requested)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tiers", description="Loading the tiers")
    def load(self, model: str | None) -> None:
        """The latest refresh record's tiers (one row), or another model from the saved reading."""
        from core import tiers
        from core.browse import store_facts
        from core.refresh import latest_refresh

        with opened(self.tierdesk.db_path) as store:
            latest = latest_refresh(store)
            if latest is None:
                facts = store_facts(store)
                self.post_message(TiersLoaded(model or "", None, StoreFacts(facts["customers"], facts["orders"])))
                return
            summary = tiers.summary(store, model)
        self.post_message(TiersLoaded(model or "", TiersData.from_summary(summary, latest["model"])))

    def on_tiers_loaded(self, message: TiersLoaded) -> None:
        if (message.model or None) != self._requested:
            return  # an answer for a model we no longer show
        table = self.query_one("#segments", DataTable)
        table.loading = False
        if self.focused is None:
            table.focus()  # a loading table cannot take the focus: give it now
        self.data = message.data
        self.tierdesk.tiers_data = message.data
        if message.data is None:
            self._show_message(self._no_reading(message.facts))
        else:
            self._hide_message()
            if message.data.warnings and message.data.refresh_id != self._warned_for:
                # Said once per reading in full; the caption keeps a short reminder.
                self._warned_for = message.data.refresh_id
                self.notify("\n".join(message.data.warnings), title="About this reading", severity="warning",
                            timeout=12, markup=False)
        self._draw()
        self.refresh_bindings()
        if message.data is not None and not self._warmed:
            # The tiers came from one row; the member lists need the whole
            # reading: load it while the person reads the table, once the
            # table is on screen (the load would slow the first paint).
            self._warmed = True
            model = message.data.model
            self.call_after_refresh(lambda: self.set_timer(0.1, lambda: self.tierdesk.warm_up(model)))

    def on_worker_state_changed(self, event) -> None:
        super().on_worker_state_changed(event)
        if event.worker.group == "tiers" and event.worker.error is not None:
            self.query_one("#segments", DataTable).loading = False
            error = event.worker.error
            self._show_message(Text(f"✗ The tiers could not be loaded: {getattr(error, 'message', error)}\n"
                                    "Fix the store or its config, then press r to try a refresh or q to quit."))

    def _no_reading(self, facts: StoreFacts | None) -> Text:
        path = self.tierdesk.db_path
        if facts is None or facts.customers == 0:
            return Text(
                "· This store is empty.\n\n"
                "Bring in your data from the command line:\n"
                f"  {command_line(path, 'import customers FILE')}\n"
                f"  {command_line(path, 'import orders FILE')}\n"
                "or try the demo shop, in a store of its own:\n"
                f"  {command_line(demo_beside(path), 'demo')}"
            )
        return Text(
            f"· No reading yet: {facts.customers:,} customers and {facts.orders:,} orders are waiting.\n\n"
            "Press r to compute the first reading (scores, segments, lifecycle, tags),\n"
            f"or run `{command_line(path, 'refresh')}` from the command line."
        )

    # --- drawing ---------------------------------------------------------------------

    def _draw(self) -> None:
        data = self.data
        language = self.tierdesk.language
        session = self.tierdesk.session
        currency = session.currency if session else "$"
        table = self.query_one("#segments", DataTable)
        caption = self.query_one("#tiers-caption", Static)
        self.query_one(RFGrid).show(data, language)
        self.query_one(RevenueBars).show(data, language, currency)
        if data is None:
            table.clear()
            caption.update("")
            self.query_one("#moves-note", Static).update("")
            return
        from core import segments  # loaded by the worker that fetched the data

        highlighted = self._highlighted()
        table.clear()
        for row in data.rows:
            table.add_row(
                Text(segments.label(row.segment, language)),
                _number(row.customers, ","),
                _number(row.share, ".1%"),
                _number(row.revenue_share, ".1%"),
                _number(row.avg_r, ".1f"),
                _number(row.avg_f, ".1f"),
                _number(row.avg_m, ".1f"),
                _moves(row.moved_in, "+"),
                _moves(row.moved_out, "−"),
                key=row.segment,
            )
        if highlighted is not None and highlighted in {row.segment for row in data.rows}:
            table.move_cursor(row=table.get_row_index(highlighted))
        caption.update(Text.assemble(
            ("⚠ stale data · ", "bold") if data.stale else "",
            f"{data.model} · {data.population:,} customers · {data.scored:,} scored · "
            f"{data.lookback_days}-day window",
            no_wrap=True, overflow="ellipsis",
        ))
        self.query_one("#moves-note", Static).update(Text(
            "in/out: moves at the latest refresh" if data.moves_tracked else
            "in/out: — not tracked (the first reading, or another model than the reading's)",
            style="dim", no_wrap=True, overflow="ellipsis",
        ))

    def _highlighted(self) -> str | None:
        table = self.query_one("#segments", DataTable)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001  (an empty or just-cleared table has no key)
            return None

    def watch_view(self, old: str, new: str) -> None:
        self.set_class(False, f"-view-{old}")
        self.set_class(True, f"-view-{new}")

    # --- keys -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        data = self.data
        session = self.tierdesk.session
        if action == "members":
            return data is not None or None
        if action == "moved":
            if data is None:
                return None
            return (data.moves_tracked and data.model == data.reading_model) or None
        if action in ("model", "language"):
            return data is not None or None
        if action == "refresh":
            if session is None or not session.user.can("refresh"):
                return None
            return not self.tierdesk.refreshing or None
        if action == "view":
            if not self.has_class("-narrow"):
                return False  # all three views are on show
            return data is not None or None
        return True

    def action_first_row(self) -> None:
        self.query_one("#segments", DataTable).action_scroll_top()

    def action_last_row(self) -> None:
        self.query_one("#segments", DataTable).action_scroll_bottom()

    def action_members(self) -> None:
        segment = self._highlighted()
        if segment is not None and self.data is not None:
            self.tierdesk.show_members(segment, self.data.model)

    def action_moved(self) -> None:
        from console.screens.moved import MovedScreen

        segment = self._highlighted()
        if segment is not None:
            self.app.push_screen(MovedScreen(segment))

    def action_model(self) -> None:
        session = self.tierdesk.session
        if session is None or self.data is None:
            return
        models = session.models
        current = self.data.model
        following = models[(models.index(current) + 1) % len(models)] if current in models else models[0]
        self.tierdesk.model = None if following == session.reading_model else following
        self.reload()

    def action_language(self) -> None:
        self.tierdesk.language = "zh" if self.tierdesk.language == "en" else "en"

    def action_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        if self.view == "table":
            self.query_one("#segments", DataTable).focus()

    def action_refresh(self) -> None:
        from console.screens.refresh_dialog import RefreshDialog

        session = self.tierdesk.session
        if session is None:
            return

        def start(as_of) -> None:
            if as_of is not None:
                self.tierdesk.start_refresh(as_of)

        dialog = RefreshDialog(session, self.tierdesk.now(), cursor_blink=self.tierdesk.cursor_blink)
        self.app.push_screen(dialog, start)

    def on_resize(self) -> None:
        self.refresh_bindings()
