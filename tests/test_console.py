"""The console through Pilot: every flow a person takes, on a real seeded store."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, Footer, Input, Static

from console.messages import (
    ChangeSaved, ProfileLoaded, RefreshFinished, RefreshProgress, SearchDone, TableLoaded, TiersLoaded,
)
from console.screens.confirm import ConfirmDialog
from console.screens.customer import CustomerScreen
from console.screens.customers import CustomersScreen
from console.screens.error import ErrorDialog
from console.screens.help import HelpScreen
from console.screens.members import MembersScreen
from console.screens.moved import MovedScreen
from console.screens.no_store import NoStoreScreen
from console.screens.opt_out import OptOutDialog
from console.screens.refresh_dialog import RefreshDialog
from console.screens.tag_dialog import TagDialog
from console.screens.tiers import RefreshBar, TiersScreen
from console.screens.why import WhyScreen
from console.widgets.member_table import MemberTable
from core.store import Store
from tests.test_console_fixtures import (  # noqa: F401  (fixtures)
    AS_OF, NOW, PREVIOUS, console_template, make_app, pilot_test, settle, shop_path,
)

ROOT = Path(__file__).resolve().parents[1]


def footer_keys(app) -> dict[str, bool]:
    """Footer descriptions -> enabled (False when dimmed)."""
    footer = app.screen.query_one(Footer)
    return {key.description: not key.has_class("-disabled") for key in footer.query("FooterKey")}


def cursor_to(table: DataTable, key: str) -> None:
    table.move_cursor(row=table.get_row_index(key))


def screen_text(app) -> str:
    """The terminal's text as a person sees it (what ``export_screenshot`` draws, as plain text)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def words(text: str) -> str:
    """``text`` with every run of blanks and line ends as one space (wrapped text read as a line)."""
    return " ".join(text.split())


@pilot_test
async def test_drill_down_to_a_customer_tag_them_and_back_to_the_root(shop_path):
    messages = []
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, TiersScreen)
        segments = app.screen.query_one("#segments", DataTable)
        assert segments.row_count == 12
        assert any(isinstance(message, TiersLoaded) and message.data is not None for message in messages)
        assert app.session.as_of == AS_OF.isoformat() and app.session.user.role == "owner"
        assert footer_keys(app)["Members"] and footer_keys(app)["Quit"]
        await pilot.press("down")  # the table has the focus once loaded
        assert segments.cursor_row == 1

        cursor_to(segments, "Champions")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MembersScreen) and app.screen.segment == "Champions"
        members = app.screen.query_one(MemberTable)
        assert members.row_count == 2
        assert "Back" in footer_keys(app) and "Quit" not in footer_keys(app)

        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CustomerScreen)
        assert app.screen.match.customer_id == "C001"  # the biggest spender first
        assert app.screen.data["reading"]["segment"] == "Champions"

        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TagDialog)
        await pilot.press(*"vip")
        await pilot.press("enter")  # on to the note
        await pilot.press(*"called twice about sizes")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CustomerScreen)
        assert any(isinstance(message, ChangeSaved) and message.changed for message in messages)
        assert "vip" in app.screen.data["reading"]["manual_tags"]

        for _ in range(2):
            await pilot.press("escape")
            await pilot.pause()
        assert isinstance(app.screen, TiersScreen) and len(app.screen_stack) == 1
        await pilot.press("q")
        await pilot.pause()
    with Store.open(shop_path, readonly=True) as store:
        assert store.scalar("SELECT note FROM manual_tags WHERE tag = 'vip'") == "called twice about sizes"
        assert store.scalar("SELECT count(*) FROM audit WHERE action = 'tag.add'") == 1


@pilot_test
async def test_sections_keep_their_own_drill_down(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MembersScreen)
        await pilot.press("escape")  # leave the filter-less list? no: back to Tiers
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert app.current_mode == "campaigns" and "coming in part 2" in str(app.screen.query("Static").last().render())
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, MembersScreen)  # Tiers came back where it was left
        await pilot.press("q")  # q is "back" below the root
        await pilot.pause()
        assert isinstance(app.screen, TiersScreen)


@pilot_test
async def test_members_sort_and_filter(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        cursor_to(app.screen.query_one("#segments", DataTable), "Potential loyalist")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(MemberTable)
        assert table.row_count == 3
        first = table.highlighted()
        await pilot.press("S")  # reverse: smallest spend first
        await settle(pilot)
        assert table.highlighted() != first
        await pilot.press("s")  # next sort: recency
        await settle(pilot)
        assert "sorted by recency" in str(table.query_one("#table-status").render())
        await pilot.press("slash")
        await pilot.press(*"cai")
        await settle(pilot)
        assert table.row_count == 1 and "1 shown" in str(table.query_one("#table-status").render())
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert table.row_count == 3 and screen.query_one("#filter", Input).value == ""
        await pilot.press("escape")  # closes it
        await pilot.press("escape")  # and back to Tiers
        await pilot.pause()
        assert isinstance(app.screen, TiersScreen)


@pilot_test
async def test_the_members_screen_is_reused_for_another_segment_with_a_fresh_start(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        segments = app.screen.query_one("#segments", DataTable)
        cursor_to(segments, "Potential loyalist")
        await pilot.press("enter")
        await settle(pilot)
        first = app.screen
        await pilot.press("s", "slash", *"cai")  # sorted by recency, filtered
        await settle(pilot)
        assert first.query_one(MemberTable).row_count == 1
        await pilot.press("escape", "escape", "escape")
        await settle(pilot)
        cursor_to(app.screen.query_one("#segments", DataTable), "Champions")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is first and first.segment == "Champions"
        table = first.query_one(MemberTable)
        assert table.row_count == 2 and "sorted by spend" in str(table.query_one("#table-status").render())
        assert first.query_one("#filter", Input).value == ""
        assert "Champions" in str(first.query_one("#crumbs").render())


@pilot_test
async def test_search_as_you_type_drops_stale_results_and_masks_for_support(shop_path, monkeypatch):
    monkeypatch.setenv("TIERDESK_USER", "sam")
    messages = []
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await pilot.pause()
        assert isinstance(app.screen, CustomersScreen)
        await pilot.press(*"ann")
        await settle(pilot)
        results = app.screen.query_one("#results", DataTable)
        assert results.row_count == 2  # Ann Lee, Annabel Wu
        assert all(message.query in ("a", "an", "ann") for message in messages if isinstance(message, SearchDone))
        line = str(results.get_row_at(0)[1])
        assert "a**@e******.com" in line and "ann@example.com" not in line
        await pilot.press(*" l")
        await settle(pilot)
        assert results.row_count == 1
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CustomerScreen) and screen.data["customer"]["masked"]
        assert footer_keys(app)["Reveal"]
        await pilot.press("x")
        await settle(pilot)
        assert screen._revealed_identity["email"] == "ann@example.com"
        assert "Reveal" not in footer_keys(app)
        assert any(isinstance(message, ProfileLoaded) and message.revealed for message in messages)
    with Store.open(shop_path, readonly=True) as store:
        assert store.scalar("SELECT actor FROM audit WHERE action = 'customer.reveal'") == "sam"


@pilot_test
async def test_search_by_email_phone_and_nobody(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await pilot.pause()
        search = app.screen.query_one("#search", Input)
        results = app.screen.query_one("#results", DataTable)
        for query, expected in (("BO@example.com", "C003"), ("+86-139-0000-0005", "C005"), ("C016", "C016")):
            search.value = query
            await settle(pilot)
            assert results.row_count == 1 and str(results.get_row_at(0)[0]) == expected
        search.value = "zzz"
        await settle(pilot)
        assert results.row_count == 0
        assert "nobody matches" in str(app.screen.query_one("#search-status").render())


@pilot_test
async def test_viewer_sees_changes_dimmed(shop_path, monkeypatch):
    monkeypatch.setenv("TIERDESK_USER", "vic")
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert footer_keys(app)["Refresh"] is False
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        keys = footer_keys(app)
        assert keys["Tag"] is False and keys["Opt out"] is False and keys["Reveal"] is False and keys["Why"]
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, CustomerScreen)  # a dimmed key does nothing


@pilot_test
async def test_opt_out_asks_and_defaults_to_cancel(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await pilot.press(*"C004")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, OptOutDialog)
        await pilot.click("#next")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.focused.id == "cancel"
        await pilot.press("enter")  # the default: Cancel
        await settle(pilot)
        assert isinstance(app.screen, CustomerScreen)
        assert app.screen.data["consent"]["email"]["state"] == 1

        await pilot.press("o")
        await pilot.pause()
        await pilot.click("#next")
        await pilot.pause()
        await pilot.press("right", "enter")  # move to "Opt out" and confirm
        await settle(pilot)
        assert app.screen.data["consent"]["email"]["state"] == -1
    with Store.open(shop_path, readonly=True) as store:
        assert store.scalar("SELECT count(*) FROM audit WHERE action = 'consent.out'") == 1


@pilot_test
async def test_why_explains_the_reading(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.focused is app.screen.query_one("#story")  # arrows scroll the story
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, WhyScreen) and app.focused is app.screen.query_one("#why")
        text = str(app.screen.query_one("#explanation").render())
        assert "Segment Champions" in text and "Orders" in text and "→ score 5" in text


@pilot_test
async def test_moved_shows_who_came_in_and_who_left(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        cursor_to(app.screen.query_one("#segments", DataTable), "Potential loyalist")
        await pilot.press("i")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MovedScreen)
        table = screen.query_one(MemberTable)
        assert table.row_count == 2  # C004 from Prospect, C015 from New
        assert "into Potential loyalist: 2" in str(screen.query_one("#flows").render())
        await pilot.press("o")
        await settle(pilot)
        assert table.row_count == 2  # C002 to Champions, C008 to About to sleep
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CustomerScreen) and app.screen.match.customer_id == "C002"


@pilot_test
async def test_model_and_language_switch(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        segments = app.screen.query_one("#segments", DataTable)
        await pilot.press("m")
        await settle(pilot)
        assert app.screen.data.model == "cn8"
        assert segments.row_count == 10 and str(segments.get_row_at(0)[0]) == "Important value"
        assert footer_keys(app)["Moved"] is False  # moves are tracked for the reading's model only
        await pilot.press("l")
        await pilot.pause()
        assert str(segments.get_row_at(0)[0]) == "重要价值客户"
        await pilot.press("m")
        await settle(pilot)
        assert app.screen.data.model == "rf11" and str(segments.get_row_at(0)[0]) == "冠军客户"


@pilot_test
async def test_refresh_from_the_console_with_progress(console_template, tmp_path, monkeypatch):
    from core.refresh import refresh
    from core.users import current_user
    from tests.conftest import make_store
    from tests.factories import Shop
    from datetime import timedelta

    monkeypatch.setenv("TIERDESK_USER", "owner")
    path = tmp_path / "shop.db"
    store = make_store(path)
    shop = Shop(store)
    for index in range(6):
        cid = shop.customer(f"R{index}", name=f"Reader {index}")
        shop.order(cid, AS_OF - timedelta(days=index * 20 + 1), 50)
    refresh(store, as_of=PREVIOUS, actor=current_user(store), now=NOW)
    store.close()

    messages = []
    app = make_app(path)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await settle(pilot)
        assert app.session.as_of == PREVIOUS.isoformat()
        app.refreshing = True  # as while a long refresh runs: r is dimmed, the rest is not
        app.refresh_stage = ("scoring", 0.3)
        await pilot.pause()
        assert app.screen.check_action("refresh", ()) is None and app.screen.check_action("members", ())
        bar = app.screen.query_one(RefreshBar)
        assert bar.display and bar.region.bottom <= app.screen.query_one(Footer).region.y  # above the footer
        assert "refreshing: scoring" in str(bar.query_one("#refresh-stage").render())
        app.refreshing = False
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RefreshDialog)
        assert app.screen.query_one("#as-of", Input).value == AS_OF.isoformat()  # yesterday, by the fixed clock
        await pilot.press("enter")
        await pilot.press("l")  # keys are answered while the refresh runs
        await settle(pilot)
        assert not app.refreshing
        stages = [message.stage for message in messages if isinstance(message, RefreshProgress)]
        assert stages and stages[-1] == "done"
        assert any(isinstance(message, RefreshFinished) for message in messages)
        assert app.session.as_of == AS_OF.isoformat()
        assert app.screen.data.as_of == AS_OF.isoformat() and app.screen.data.moves_tracked


@pilot_test
async def test_refresh_dialog_refuses_a_bad_date(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await pilot.pause()
        app.screen.query_one("#as-of", Input).value = "2025-02-30"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RefreshDialog)
        assert "no such date" in str(app.screen.query_one("#problem").render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TiersScreen) and not app.refreshing


@pilot_test
async def test_a_bad_config_key_shows_the_error_dialog(shop_path):
    shop_path.with_suffix(".toml").write_text('trust_env_user = true\nlangauge = "zh"\n')
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog)
        assert app.screen.error_title == "Config"
        assert "langauge" in app.screen.message and "did you mean 'language'" in app.screen.message
        assert "Traceback" not in app.screen.message
        assert len([screen for screen in app.screen_stack if isinstance(screen, ErrorDialog)]) == 1
        await pilot.press("space")  # any key closes it
        await pilot.pause()
        assert isinstance(app.screen, TiersScreen)
        assert "could not be opened" in str(app.screen.query_one("#tiers-message").render())
        await pilot.press("q")


@pilot_test
async def test_a_file_that_is_not_sqlite_shows_the_error_dialog(tmp_path):
    path = tmp_path / "shop.db"
    path.write_bytes(b"this is not a database, just some text" * 10)
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog)
        assert app.screen.error_title == "Store" and "not a tierdesk store" in app.screen.message


@pilot_test
async def test_no_store_explains_how_to_make_one(tmp_path):
    app = make_app(tmp_path / "missing.db")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NoStoreScreen)
        text = str(app.screen.query("Static").last().render())
        store = f"tierdesk --db {tmp_path / 'missing.db'}"
        assert f"{store} demo" in text and f"{store} import orders" in text
        assert footer_keys(app)["Look again"]
        await pilot.press("1")  # sections are dimmed: nothing to show
        await pilot.pause()
        assert isinstance(app.screen, NoStoreScreen)
        await pilot.press("q")


@pilot_test
async def test_store_without_a_reading_says_what_to_do(tmp_path, monkeypatch):
    from tests.conftest import make_store
    from tests.factories import Shop

    monkeypatch.setenv("TIERDESK_USER", "owner")
    store = make_store(tmp_path / "shop.db")
    Shop(store).customer("X1")
    store.close()
    app = make_app(tmp_path / "shop.db")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = str(app.screen.query_one("#tiers-message").render())
        assert "No reading yet" in text and "Press r" in text
        assert footer_keys(app)["Members"] is False and footer_keys(app)["Refresh"]


@pilot_test
async def test_help_is_built_from_the_live_bindings(shop_path, monkeypatch):
    monkeypatch.setenv("TIERDESK_USER", "vic")
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        from console.screens.help import bindings_table
        from rich.console import Console

        console = Console(width=240, record=True)
        console.print(bindings_table(app.screen.below))
        text = console.export_text()
        assert "Members" in text and "Everywhere" in text and "Tiers" in text
        assert "Refresh" in text and "(not now)" in text  # a viewer may not refresh
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, TiersScreen)


@pilot_test
async def test_every_binding_has_an_id_and_a_description():
    from console import app as app_module
    from console.screens import (coming, confirm, customer, customers, error, help, members, moved,
                                 no_store, opt_out, refresh_dialog, tag_dialog, tiers)

    classes = [app_module.TierdeskApp, tiers.TiersScreen, members.MembersScreen, moved.MovedScreen,
               customers.CustomersScreen, customer.CustomerScreen, no_store.NoStoreScreen, error.ErrorDialog,
               help.HelpScreen, confirm.ConfirmDialog, tag_dialog.TagDialog, opt_out.OptOutDialog,
               refresh_dialog.RefreshDialog, coming.CampaignsScreen]
    for cls in classes:
        for binding in cls.__dict__.get("BINDINGS", []):
            assert binding.id and binding.description, (cls.__name__, binding.key)
            assert binding.tooltip, (cls.__name__, binding.key)


@pilot_test
async def test_palette_finds_customers_and_segments(shop_path):
    from console.palette import CustomerCommands, GoCommands, SegmentCommands

    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        customers = CustomerCommands(screen)
        hits = [hit async for hit in customers.search("customer: ann")]
        assert [hit.text for hit in hits] == ["customer: C001 Ann Lee", "customer: C002 Annabel Wu"]
        hits[1].command()
        await settle(pilot)
        assert app.current_mode == "customers" and isinstance(app.screen, CustomerScreen)
        assert app.screen.match.customer_id == "C002"

        segments = SegmentCommands(screen)
        hits = [hit async for hit in segments.search("segment: risk")]
        assert hits and hits[0].text == "segment: At risk"
        hits[0].command()
        await settle(pilot)
        assert app.current_mode == "tiers" and isinstance(app.screen, MembersScreen)
        assert app.screen.segment == "At risk"

        go = GoCommands(app.screen)
        titles = [hit.text async for hit in go.discover()]
        assert "go: customers" in titles and "theme: ansi-dark" in titles
        theme = [hit async for hit in go.search("theme: ansi-light")][0]
        theme.command()
        await pilot.pause()
        assert app.theme == "ansi-light"


@pilot_test
async def test_colon_and_ctrl_p_open_the_palette(shop_path):
    from textual.command import CommandPalette

    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("2")  # the search box has the focus: ctrl+p still opens the palette
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


@pilot_test
async def test_fits_an_80x24_terminal(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#segments", DataTable)
        assert table.region.right <= 80 and table.region.bottom <= 23
        assert table.virtual_size.width <= 80  # no column is cut off
        assert len(footer_keys(app)) <= 8
        await pilot.press("v")
        await pilot.pause()
        grid = app.screen.query_one("#grid")
        assert grid.region.width > 0 and grid.region.right <= 80 and grid.region.bottom <= 23
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        card = app.screen.query_one("#card")
        assert card.region.right <= 80 and card.region.bottom <= 23


@pilot_test
async def test_an_unexpected_exception_leaves_no_traceback(shop_path):
    app = make_app(shop_path)
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            app.call_later(lambda: 1 / 0)
            await pilot.pause()
    assert isinstance(app.crash, ZeroDivisionError)
    assert app._exit_renderables == []


@pilot_test
async def test_a_failing_worker_becomes_an_error_dialog(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.report_failure(RuntimeError("boom"))
        await pilot.pause()
        assert isinstance(app.screen, ErrorDialog)
        assert app.screen.error_title == "Internal error" and "RuntimeError: boom" in app.screen.message
        assert "crash.log" in app.screen.hint


def test_the_console_refuses_a_pipe_in_one_line(shop_path):
    result = subprocess.run(
        [sys.executable, "-m", "console", "--db", str(shop_path)], capture_output=True, text=True, cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "needs a terminal" in result.stderr and "Traceback" not in result.stderr


def test_core_does_not_import_the_console_or_textual():
    code = (
        "import sys\n"
        "import core.browse\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'textual_fastdatatable', 'console', 'typer', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""


def test_member_lines_keep_columns_aligned_with_wide_characters_and_cuts():
    import polars as pl
    from rich.cells import cell_len

    from console.widgets.member_table import Column, align_rows, build_backend

    rows = pl.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "name": ["王涛", "Ann Lee", "A very long name indeed, longer than the cap"],
        "spend": [1.5, None, 120.25],
    })
    columns = (Column("name", "name", max_width=12), Column("spend", "spend", right=True, max_width=8))
    backend = build_backend(rows, "customer_id", "customer", columns)
    lines = [backend.get_cell_at(index, 1) for index in range(3)]
    assert {cell_len(line) for line in lines} == {cell_len(backend.columns[1])}  # every line as wide as the header
    assert lines[0].startswith("王涛 ") and lines[1].endswith("-") and "~" in lines[2]
    assert backend.get_cell_at(2, 0) == "C3" and backend.column_content_widths == [8, cell_len(backend.columns[1])]
    short, header = align_rows([["王涛", "x"], ["Ann", "yy"]], ["name", "v"])
    starts = [cell_len(line[:line.rindex(field)]) for line, field in zip([*short, header], ["x", "yy", "v"])]
    assert len(set(starts)) == 1  # the second column starts at the same cell on every line


# --- Found in review, at 80×24 in a real terminal ------------------------------------------------


@pilot_test
async def test_the_members_filter_box_shows_what_is_typed_above_the_footer(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        cursor_to(app.screen.query_one("#segments", DataTable), "Potential loyalist")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("slash", *"cai")
        await settle(pilot)
        screen = app.screen
        filter_input = screen.query_one("#filter", Input)
        region = filter_input.region
        assert region.height == 1 and region.bottom <= screen.query_one(Footer).region.y
        widget, _ = screen.get_widget_at(region.x + 2, region.y)
        assert widget is filter_input  # not hidden under the footer (both were docked at the bottom)


def typed_fast(keys: str) -> list[str]:
    """The keys the app receives for bytes a terminal sends in one burst.

    Textual's own parser: an Escape followed within ESCDELAY by Enter reads
    as alt+Enter, reported as plain "enter", so a fast Enter Escape Enter on
    Tiers reaches the members screen as Enter Enter.
    """
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    return [token.key for token in [*parser.feed(keys), *parser.feed("")]]


def hold_loads(app) -> threading.Event:
    """Make reading the store's directory wait until the returned event is set (a slow store)."""
    release = threading.Event()
    frame = app.directory.frame

    def held(*args, **kwargs):
        release.wait(timeout=10)
        return frame(*args, **kwargs)

    app.directory.frame = held
    return release


@pilot_test
async def test_a_fast_enter_escape_enter_never_opens_the_previous_segments_member(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        cursor_to(app.screen.query_one("#segments", DataTable), "Lost")
        await pilot.press("enter")  # the reused members screen now holds Lost's rows
        await settle(pilot)
        await pilot.press("escape")
        await pilot.pause()
        cursor_to(app.screen.query_one("#segments", DataTable), "Champions")
        keys = typed_fast("\r\x1b\r")
        assert keys == ["enter", "enter"]
        release = hold_loads(app)
        try:
            await pilot.press(*keys)  # no pause, and Champions is still loading
            screen = app.screen
            assert isinstance(screen, MembersScreen) and screen.segment == "Champions"
            assert screen.check_action("open", ()) is None  # dimmed until the rows are in
        finally:
            release.set()
        await settle(pilot)
        assert app.screen is screen and screen.query_one(MemberTable).row_count == 2
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CustomerScreen) and app.screen.match.customer_id == "C001"


@pilot_test
async def test_a_late_sort_of_the_previous_segment_is_not_shown(shop_path):
    messages = []
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await settle(pilot)
        cursor_to(app.screen.query_one("#segments", DataTable), "Lost")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        [lost] = [message for message in messages if isinstance(message, TableLoaded)]
        await pilot.press("escape")
        await pilot.pause()
        cursor_to(app.screen.query_one("#segments", DataTable), "Champions")
        release = hold_loads(app)
        try:
            await pilot.press("enter")
            # A sort of Lost asked for just before leaving it answers now, while Champions loads.
            screen.post_message(TableLoaded(lost.backend, lost.ids, total=lost.total, note=lost.note,
                                            generation=screen._generation - 1))
            await pilot.pause()
            await pilot.press("enter")
            assert app.screen is screen and screen.query_one(MemberTable).row_count == 0
        finally:
            release.set()
        await settle(pilot)
        assert app.screen is screen and screen.segment == "Champions"
        assert screen.query_one(MemberTable).row_count == 2


@pilot_test
async def test_a_broken_config_is_explained_in_full_at_80x24_with_the_tiers_keys_dimmed(shop_path):
    config = shop_path.with_suffix(".toml")
    config.write_text(config.read_text(encoding="utf-8").replace('timezone = "UTC"', "timezone = "),
                      encoding="utf-8")
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TiersScreen)
        message = app.screen.query_one("#tiers-message")
        assert message.region.right <= 80
        shown = words(screen_text(app))
        assert "The store could not be opened:" in shown
        assert "not valid TOML: Invalid value (at line 1, column 12)" in shown
        assert "then start tierdesk again (q quits)." in shown
        keys = footer_keys(app)
        assert not any(keys.get(name, False) for name in ("Members", "Moved", "Model", "Lang", "Refresh", "View"))
        assert keys["Quit"]


@pilot_test
async def test_the_chosen_channel_reads_as_a_symbol_without_colour(shop_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TIERDESK_USER", "sam")
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, OptOutDialog)

        def marks() -> dict[str, str]:
            """Each channel's symbol, as the screen shows it."""
            options = [line.split("(now")[0] for line in screen_text(app).splitlines() if "(now" in line]
            return {option.split()[-1]: "●" if "●" in option else "○" if "○" in option else "?"
                    for option in options}

        assert marks() == {"email": "●", "sms": "○", "push": "○", "wecom": "○"}
        await pilot.press("down", "space")  # choose sms
        await pilot.pause()
        assert marks() == {"email": "○", "sms": "●", "push": "○", "wecom": "○"}
        assert app.screen.query_one("#channels").pressed_index == 1


@pilot_test
async def test_no_store_advice_names_the_store_the_console_watches(tmp_path):
    path = tmp_path / "two words" / "shop.db"
    app = make_app(path)
    async with app.run_test(size=(160, 30)) as pilot:  # the test's path is long: no line wraps
        await settle(pilot)
        assert isinstance(app.screen, NoStoreScreen)
        shown = screen_text(app)
        db = f"--db '{path}'"
        assert f"tierdesk {db} demo" in shown and f"tierdesk {db} import customers FILE" in shown
        assert f"tierdesk {db} init" in shown and f"tierdesk {db} import orders FILE" in shown


@pilot_test
async def test_no_store_advice_is_bare_for_the_store_a_bare_command_opens(tmp_path, monkeypatch):
    path = tmp_path / "shop.db"
    monkeypatch.setenv("TIERDESK_DB", str(path))
    app = make_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        advice = screen_text(app).split("A different store")[0]
        assert "tierdesk demo" in advice and "tierdesk import customers FILE" in advice and "--db" not in advice


@pilot_test
async def test_empty_store_advice_names_the_store_the_console_watches(tmp_path, monkeypatch):
    from tests.conftest import make_store

    monkeypatch.setenv("TIERDESK_USER", "owner")
    path = tmp_path / "shop.db"
    make_store(path).close()
    app = make_app(path)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        shown = words(screen_text(app))
        assert f"tierdesk --db {path} import customers FILE" in shown
        assert f"tierdesk --db {path} import orders FILE" in shown
        assert f"tierdesk --db {tmp_path / 'demo.db'} demo" in shown  # the demo never fills a real store


@pilot_test
async def test_no_reading_advice_names_the_store_the_console_watches(tmp_path, monkeypatch):
    from tests.conftest import make_store
    from tests.factories import Shop

    monkeypatch.setenv("TIERDESK_USER", "owner")
    path = tmp_path / "shop.db"
    store = make_store(path)
    Shop(store).customer("X1")
    store.close()
    app = make_app(path)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        assert f"tierdesk --db {path} refresh" in words(screen_text(app))


@pilot_test
async def test_commands_to_use_meanwhile_name_the_store_when_they_read_it(shop_path):
    app = make_app(shop_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await pilot.pause()
        assert f"`tierdesk --db {shop_path} audit --verify` on the command line." in words(screen_text(app))
        await pilot.press("3")
        await pilot.pause()
        assert "`tierdesk campaign --help` on the command line." in words(screen_text(app))


@pilot_test
async def test_help_lists_q_with_the_footer_and_home_end_jump_in_every_list(shop_path):
    from rich.console import Console

    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=240, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#keys", Static).content)
        lines = console.export_text().splitlines()
        assert any(line.split()[:2] == ["q", "Quit"] for line in lines)  # as on the footer
        await pilot.press("escape")
        await pilot.pause()

        segments = app.screen.query_one("#segments", DataTable)
        await pilot.press("end")
        assert segments.cursor_row == segments.row_count - 1
        await pilot.press("home")
        assert segments.cursor_row == 0

        await pilot.press("2", "a")
        await settle(pilot)
        await pilot.press("down")  # into the results
        results = app.screen.query_one("#results", DataTable)
        assert results.has_focus and results.row_count >= 2
        await pilot.press("end")
        assert results.cursor_row == results.row_count - 1
        await pilot.press("home")
        assert results.cursor_row == 0
        await pilot.press("slash", "home", "b")  # in the search box Home still moves the text cursor
        assert app.screen.query_one("#search", Input).value == "ba"


@pilot_test
async def test_a_refused_tag_keeps_the_dialog_open_with_the_reason_and_the_text(shop_path):
    messages = []
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        customer = app.screen
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"price-sensitive", "enter", *"asked for discounts", "enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, TagDialog)  # still open
        assert "rule tag" in str(dialog.query_one("#problem", Static).render())
        assert "rule tag" in words(screen_text(app))  # inside the dialog, on screen
        assert dialog.query_one("#tag", Input).value == "price-sensitive"
        assert dialog.query_one("#note", Input).value == "asked for discounts"
        assert dialog.query_one("#tag", Input).has_focus  # ready to correct

        dialog.query_one("#tag", Input).value = "discount-seeker"
        await pilot.press("tab", "enter")  # on to the note, and save
        await settle(pilot)
        assert app.screen is customer
        assert any(isinstance(message, ChangeSaved) and message.changed for message in messages)
        assert "discount-seeker" in customer.data["reading"]["manual_tags"]


@pilot_test
async def test_a_reading_of_stale_data_says_so_on_the_tiers(shop_path):
    from datetime import timedelta

    from core.refresh import refresh
    from core.users import current_user

    with Store.open(shop_path) as store:
        refresh(store, as_of=AS_OF + timedelta(days=60), actor=current_user(store), now=NOW)
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        caption = str(app.screen.query_one("#tiers-caption", Static).render())
        assert caption.startswith("⚠ stale data · rf11")
        told = [(note.title, note.message) for note in app._notifications]
        assert any(title == "About this reading" and "days older than the as-of" in text for title, text in told)


@pilot_test
async def test_the_palette_finds_customers_by_a_one_character_chinese_surname(shop_path):
    import sqlite3

    from console.palette import CustomerCommands

    with sqlite3.connect(shop_path) as conn:
        conn.execute("UPDATE customers SET name = '王芳' WHERE customer_id = 'C003'")
    app = make_app(shop_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        customers = CustomerCommands(app.screen)
        assert [hit.text async for hit in customers.search("customer: 王")] == ["customer: C003 王芳"]
        assert [hit async for hit in customers.search("customer: a")] == []  # one latin letter: too many


@pilot_test
async def test_a_tag_added_shows_in_the_members_it_was_added_from(shop_path):
    """Back from the customer, the member list shows the new tag, and keeps its filter while doing so."""
    app = make_app(shop_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        members = app.screen
        assert isinstance(members, MembersScreen)
        customer_id = members.query_one(MemberTable).highlighted()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"vip-call", "enter", *"asked on the phone", "enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is members
        tagged = members.members.filter(members.members["customer"] == customer_id)["tags"].to_list()
        assert "vip-call" in tagged[0] and tagged[0] == sorted(tagged[0])
        await pilot.press("/", *"tag:vip-call", "enter")
        await settle(pilot)
        assert "1 shown" in screen_text(app)
        # Leaving for the tiers and opening the same segment again shows the tag too.
        await pilot.press("escape", "escape")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert "vip-call" in members.members.filter(members.members["customer"] == customer_id)["tags"].to_list()[0]
