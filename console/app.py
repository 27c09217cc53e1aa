"""The console: the App, its sections (modes), the global keys and the one error path.

Each section is a Textual mode with its own drill-down stack: 1 Tiers,
2 Customers, 3 Campaigns, 4 Budget, 5 Audit. Screens are thin: slow work
runs in thread workers that open their own connection, call one core
function and post a message with frozen data (see ``console.messages``).

Every failure ends in :meth:`TierdeskApp.report_failure`: a
:class:`~core.errors.TierdeskError` the user can fix quickly (bad input,
not found, not now) becomes a notification; any other one an error dialog
with its title and message; a bug an error dialog that names the log file
holding the traceback. No traceback ever reaches the terminal.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import var
from textual.screen import ModalScreen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from console.common import write_crash_log
from console.messages import RefreshFinished, RefreshProgress, SessionLoaded
from console.palette import CustomerCommands, GoCommands, SegmentCommands
from console.screens.coming import AuditScreen, BudgetScreen, CampaignsScreen
from console.screens.customers import CustomersScreen
from console.screens.error import ErrorDialog
from console.screens.help import HelpScreen
from console.screens.no_store import NoStoreScreen
from console.screens.tiers import TiersScreen
from console.session import DirectoryCache, Session, load_session, opened
from console.widgets.header import SECTIONS
from core.errors import Conflict, InputError, NotFound, TierdeskError

if TYPE_CHECKING:
    from core.customers import Match

# Failures that leave nothing broken: the person typed or picked something
# that cannot be used right now; a notification says why.
_MINOR = (InputError, NotFound, Conflict)


class TierdeskApp(App[None]):
    """The tierdesk console over one store."""

    TITLE = "tierdesk"
    CSS_PATH = "tierdesk.tcss"
    COMMANDS = App.COMMANDS | {GoCommands, SegmentCommands, CustomerCommands}
    MODES = {
        "tiers": TiersScreen,
        "customers": CustomersScreen,
        "campaigns": CampaignsScreen,
        "budget": BudgetScreen,
        "audit": AuditScreen,
        "nostore": NoStoreScreen,
    }
    BINDINGS = [
        *(
            Binding(str(number), f"section('{mode}')", title, show=False, id=f"section.{mode}",
                    tooltip=f"Switch to the {title} section (it keeps its own drill-down).")
            for number, (mode, title) in enumerate(SECTIONS, start=1)
        ),
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key that works here, and what it does."),
        # Declaring any command_palette binding stops Textual adding its own
        # ctrl+p, so both keys are here: ctrl+p works even in a text box.
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True, id="palette",
                tooltip="The command palette: go:, customer:, segment:, theme:."),
        Binding("colon", "command_palette", "Commands", show=False, id="palette.colon",
                tooltip="The command palette (ctrl+p works inside text boxes too)."),
        Binding("escape", "back", "Back", id="back", tooltip="Back one level, towards the section's first screen."),
        Binding("q", "quit_at_root", "Quit", id="quit", tooltip="Quit tierdesk (at a section's first screen)."),
        Binding("q", "back", "Back", show=False, id="back.q", tooltip="Back one level (q quits at the root)."),
    ]

    session: var[Session | None] = var(None)
    """Who is here and what the latest reading is (None until the store has opened)."""
    language: var[str] = var("en")
    """Segment and stage names: the config's language until switched with ``l``."""
    model: var[str | None] = var(None)
    """The segment model the Tiers section shows (None: the reading's own)."""
    failure: var[str | None] = var(None)
    """Why the store could not be opened, if it could not."""
    refreshing: var[bool] = var(False)
    """A refresh is running (its key is dimmed meanwhile)."""
    refresh_stage: var[tuple[str, float]] = var(("", 0.0))
    """The running refresh's stage and how far it is (0..1)."""

    def __init__(self, db_path: Path, *, clock: Callable[[], float] = time.time, cursor_blink: bool = True,
                 ansi_color: bool | None = None) -> None:
        super().__init__(ansi_color=ansi_color)
        self.db_path = Path(db_path)
        self.clock = clock
        """The one place the console reads the time (tests pass a fixed one)."""
        self.cursor_blink = cursor_blink
        self.directory = DirectoryCache()
        self.reading_changed: Signal[None] = Signal(self, "reading-changed")
        """Published when a refresh has committed a new reading."""
        self.tags_changed: Signal[None] = Signal(self, "tags-changed")
        """Published when a manual tag has been added or removed."""
        self.tiers_data = None
        """The tiers on show (for the palette's segment: commands)."""
        self.crash: BaseException | None = None
        self._shown_errors: set[tuple[str, str]] = set()
        if self.db_path.exists():
            # The first workers need core (and polars, a quarter of a second to
            # import): start importing now, beside Textual's own start-up.
            threading.Thread(target=_import_core, name="tierdesk-imports", daemon=True).start()

    # --- starting ------------------------------------------------------------

    def on_mount(self) -> None:
        if not self.db_path.exists():
            self.switch_mode("nostore")
            return
        self.switch_mode("tiers")
        self.load_session()

    @work(thread=True, exclusive=True, exit_on_error=False, group="session", description="Opening the store")
    def load_session(self) -> None:
        """Open the store and say who is here (posts :class:`SessionLoaded`)."""
        self.post_message(SessionLoaded(load_session(self.db_path)))

    def on_session_loaded(self, message: SessionLoaded) -> None:
        first = self.session is None
        self.session = message.session
        if first:
            self.language = message.session.language
            for warning in message.session.warnings:
                self.notify(warning, title="Note", severity="warning", timeout=8, markup=False)
        self.refresh_bindings()

    def now(self) -> int:
        """The current instant, for audit rows and the default as-of."""
        return int(self.clock())

    @property
    def current_model(self) -> str:
        """The model the Tiers section shows."""
        if self.model:
            return self.model
        session = self.session
        if session is None:
            return "rf11"
        return session.reading_model or session.config_model

    # --- keys ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen)
        if action == "quit_at_root":
            return len(self.screen_stack) == 1 and not isinstance(self.screen, ModalScreen)
        if action == "section":
            return self.current_mode != "nostore" or None
        return True

    def action_section(self, mode: str) -> None:
        """Switch to a section; it comes back where it was left."""
        self.switch_mode(mode)

    def action_quit_at_root(self) -> None:
        self.exit()

    async def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def to_root(self, mode: str) -> None:
        """Switch to ``mode`` and unwind its drill-down to the first screen."""
        self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    async def open_segment(self, segment: str) -> None:
        """Tiers › segment members (from the palette)."""
        await self.to_root("tiers")
        self.show_members(segment, self.current_model)

    def show_members(self, segment: str, model: str) -> None:
        """Push the (one, reused) members screen, pointed at ``segment``."""
        from console.screens.members import MembersScreen

        if not self.is_screen_installed("members"):
            self.install_screen(MembersScreen(segment, model), "members")
        screen = self.get_screen("members")
        assert isinstance(screen, MembersScreen)
        screen.select(segment, model)
        self.push_screen("members")

    async def open_customer(self, match: "Match") -> None:
        """Customers › one customer (from the palette)."""
        from console.screens.customer import CustomerScreen

        await self.to_root("customers")
        self.push_screen(CustomerScreen(match))

    @work(thread=True, exclusive=True, exit_on_error=False, group="warm", description="Loading the reading")
    def warm_up(self, model: str) -> None:
        """Load the whole reading in the background, so the first segment opens at once."""
        with opened(self.db_path) as store:
            self.directory.frame(store, model, store.config)
        from textual_fastdatatable import ArrowBackend  # noqa: F401  (pyarrow, imported off the UI thread)
        self.call_from_thread(self.prepare_members)

    def prepare_members(self) -> None:
        """Compose the members screen while nobody waits for it (it is reused, see MembersScreen).

        Textual has no public way to start a screen without showing it;
        ``_get_screen`` is what ``push_screen`` itself calls to do so.
        """
        from console.screens.members import MembersScreen

        if not self.is_screen_installed("members"):
            self.install_screen(MembersScreen(None, self.current_model), "members")
        screen = self.get_screen("members")
        if not screen.is_running and hasattr(self, "_get_screen") and hasattr(self, "_load_screen_css"):
            self._load_screen_css(screen)
            self._get_screen(screen)

    # --- refresh -----------------------------------------------------------------

    def start_refresh(self, as_of: date) -> None:
        """Compute a new reading at ``as_of`` in the background."""
        if self.refreshing:
            return
        self.refreshing = True
        self.refresh_stage = ("starting", 0.0)
        self.run_refresh(as_of)
        self.refresh_bindings()

    @work(thread=True, exclusive=True, exit_on_error=False, group="refresh", description="Refreshing the reading")
    def run_refresh(self, as_of: date) -> None:
        """One ``core.refresh.refresh`` on a writing connection, reporting progress."""
        from core.refresh import refresh
        from core.users import current_user

        with opened(self.db_path, write=True) as store:
            result = refresh(
                store, as_of=as_of, actor=current_user(store), now=self.now(),
                progress=lambda stage, fraction: self.post_message(RefreshProgress(stage, fraction)),
            )
        moves = ("the first reading, so nothing moved yet" if result.baseline else
                 f"{result.tier_moves:,} changed segment, {result.lifecycle_moves:,} changed stage")
        self.post_message(RefreshFinished(
            f"Reading at {result.as_of} ({result.model}): {result.population:,} customers, "
            f"{result.changed_rows:,} rows changed in {result.seconds:.1f} s; {moves}.",
            tuple(result.warnings),
        ))

    def on_refresh_progress(self, message: RefreshProgress) -> None:
        self.refresh_stage = (message.stage, message.fraction)

    def on_refresh_finished(self, message: RefreshFinished) -> None:
        self.refreshing = False
        self.directory.forget()
        self.notify(message.summary, title="Refreshed", timeout=8, markup=False)
        for warning in message.warnings:
            self.notify(warning, title="Note", severity="warning", timeout=10, markup=False)
        self.load_session()
        self.reading_changed.publish(None)
        self.refresh_bindings()

    # --- the one error path --------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_changed(event)

    def worker_changed(self, event: Worker.StateChanged) -> None:
        """Route a failed worker (of any screen) to :meth:`report_failure`."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            if event.worker.group == "session":
                error = event.worker.error
                self.failure = f"The store could not be opened: {getattr(error, 'message', error)}"
            if event.worker.group == "refresh":
                self.refreshing = False
                self.refresh_bindings()
            self.report_failure(event.worker.error)

    def report_failure(self, error: BaseException) -> None:
        """Show a failure: a notification for a minor one, else a dialog (never a traceback)."""
        if isinstance(error, TierdeskError):
            if isinstance(error, _MINOR):
                self.notify(str(error), title=error.title, severity="warning", timeout=8, markup=False)
                return
            self._error_dialog(error.title, error.message, error.hint or "")
            return
        where = write_crash_log(error)
        self._error_dialog(
            "Internal error",
            f"{type(error).__name__}: {error}",
            "This is a bug in tierdesk, not in your data. "
            + (f"The details are in {where}." if where else "The details could not be written to a log file."),
        )

    def _error_dialog(self, title: str, message: str, hint: str) -> None:
        key = (title, message)
        if key in self._shown_errors:  # two workers hitting the same broken store say it once
            return
        self._shown_errors.add(key)
        self.push_screen(ErrorDialog(title, message, hint), lambda _: self._shown_errors.discard(key))

    def _handle_exception(self, error: Exception) -> None:
        # An exception escaped a handler: Textual would print a traceback with
        # locals on exit. Keep the exit, drop the traceback; open_console
        # reports it in one line and the log keeps the details.
        super()._handle_exception(error)
        self.crash = error
        self._exit_renderables.clear()


def _import_core() -> None:
    """Import what the first workers use (a later import of them waits for this one)."""
    try:
        import core.refresh  # noqa: F401
        import core.tiers  # noqa: F401
        import core.users  # noqa: F401
    except Exception:  # noqa: BLE001  (the workers import the same and report it through the error path)
        return


def run(db_path: Path, **options: Any) -> BaseException | None:
    """Run the console until it quits; the exception that ended it, if one did."""
    app = TierdeskApp(db_path, **options)
    app.run()
    return app.crash
