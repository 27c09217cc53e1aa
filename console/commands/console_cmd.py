"""Opening the console (Textual is imported only here, only when it opens)."""

from __future__ import annotations

from pathlib import Path

import typer

from console.common import out, store_path


def open_console(db: Path | None) -> None:
    """Open the console; until it exists, print what the store holds."""
    from core.store import Store

    path = store_path(db)
    if not path.exists():
        out().print(
            f"No store at {path} yet.\n"
            "  [bold]tierdesk demo[/]            generate a demo shop and open it\n"
            "  [bold]tierdesk import orders F[/] start a store from your own orders export\n"
            "  [bold]tierdesk init[/]            create an empty store"
        )
        return
    with Store.open(path, readonly=True) as store:
        summary_lines(store)


def summary_lines(store) -> None:
    counts = {
        table: store.scalar(f"SELECT count(*) FROM {table}")
        for table in ("customers", "orders", "events")
    }
    out().print(
        f"{store.path}: {counts['customers']:,} customers, {counts['orders']:,} orders, "
        f"{counts['events']:,} events."
    )


def register(app: typer.Typer) -> None:
    return None
