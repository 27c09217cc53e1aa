"""SVG snapshots of every screen, on the seeded shop at a fixed as-of and a fixed clock.

Update them only after looking at the report: ``pytest --snapshot-update``.
No clock is shown anywhere, cursors do not blink, every list is sorted
explicitly, and the colour mode is set here, not taken from the host.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from tests.test_console_fixtures import console_template, make_app, settle, shop_path  # noqa: F401  (fixtures)

WIDE = (140, 40)
NARROW = (80, 24)


@pytest.fixture(autouse=True)
def fixed_terminal(monkeypatch):
    """The same colours and theme whatever the machine running the tests says."""
    for name in ("NO_COLOR", "TEXTUAL_THEME", "TEXTUAL_COLOR_SYSTEM", "TEXTUAL_ANIMATIONS"):
        monkeypatch.delenv(name, raising=False)


def steps(*keys: str, row: str | None = None):
    """A run_before that waits for the data, optionally picks a segment row, then presses keys."""
    async def run_before(pilot) -> None:
        await settle(pilot)
        if row is not None:
            table = pilot.app.screen.query_one("#segments", DataTable)
            table.move_cursor(row=table.get_row_index(row))
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_tiers_wide(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=WIDE, run_before=steps())


def test_tiers_80x24(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=NARROW, run_before=steps())


def test_tiers_grid_80x24(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=NARROW, run_before=steps("v"))


def test_tiers_revenue_80x24(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=NARROW, run_before=steps("v", "v"))


def test_tiers_no_color(snap_compare, shop_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_app(shop_path), terminal_size=WIDE, run_before=steps())


def test_tiers_cn8_in_chinese(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=WIDE, run_before=steps("m", "l"))


def test_members(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=(100, 30),
                        run_before=steps("enter", row="Potential loyalist"))


def test_members_filtered(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=(100, 30),
                        run_before=steps("enter", "slash", "c", "a", "i", row="Potential loyalist"))


def test_moved(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=(100, 30),
                        run_before=steps("i", row="Potential loyalist"))


def test_customer_search(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=(100, 30), run_before=steps("2", "a", "n", "n"))


def test_customer_80x24(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=NARROW, run_before=steps("enter", "enter"))


def test_customer_masked_for_support(snap_compare, shop_path, monkeypatch):
    monkeypatch.setenv("TIERDESK_USER", "sam")
    assert snap_compare(make_app(shop_path), terminal_size=(100, 40),
                        run_before=steps("2", "C", "0", "0", "1", "enter"))


def test_why(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=(100, 40), run_before=steps("enter", "enter", "w"))


def test_tag_dialog(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=NARROW,
                        run_before=steps("enter", "enter", "t", "v", "i", "p"))


def test_opt_out_confirm_defaults_to_cancel(snap_compare, shop_path):
    async def run_before(pilot) -> None:
        await steps("enter", "enter", "o")(pilot)
        await pilot.click("#next")
        await settle(pilot)

    assert snap_compare(make_app(shop_path), terminal_size=NARROW, run_before=run_before)


def test_help(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=(100, 36), run_before=steps("question_mark"))


def test_error_dialog(snap_compare, shop_path, monkeypatch):
    shop_path.with_suffix(".toml").write_text('trust_env_user = true\nlangauge = "zh"\n')
    monkeypatch.chdir(shop_path.parent)  # a relative path: the message names the file, not the tmp dir
    assert snap_compare(make_app(Path(shop_path.name)), terminal_size=NARROW, run_before=steps())


def test_no_store(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert snap_compare(make_app(Path("shop.db")), terminal_size=NARROW, run_before=steps())


def test_campaigns_to_come(snap_compare, shop_path):
    assert snap_compare(make_app(shop_path), terminal_size=NARROW, run_before=steps("3"))
