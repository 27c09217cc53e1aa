"""Opening the console (Textual is imported only here, only when it opens)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from console.common import store_path


def open_console(db: Path | None) -> None:
    """Open the console on the store (``--db``, ``TIERDESK_DB`` or the default).

    A missing store is not an error: the console says how to make one. A
    failure inside the console is reported in one line (the details go to
    the crash log) and the command exits 2.
    """
    path = store_path(db)
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        from console.common import err

        err().print("The console needs a terminal. For scripts, use the commands: `tierdesk --help`.")
        raise typer.Exit(2)
    from console.app import run

    crash = run(path)
    if crash is not None:
        from console.cli import report_crash

        report_crash(crash)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """The console opens from the root callback (``tierdesk`` with no command)."""
    return None
