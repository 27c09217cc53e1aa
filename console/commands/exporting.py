"""Exports of customers (with their reading), orders, touches and campaign members."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from console.common import DbOption, note, open_store, who


class What(str, Enum):
    customers = "customers"
    orders = "orders"
    touches = "touches"
    members = "members"


class Format(str, Enum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


def export_cmd(
    what: Annotated[What, typer.Argument(help="customers, orders, touches or members.")],
    db: DbOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv, parquet or json.")] = Format.csv,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.",
                                                   dir_okay=False)] = None,
    campaign: Annotated[Optional[int], typer.Option(
        "--campaign", min=1, max=2**63 - 1, help="Touches or members of this campaign only.")] = None,
) -> None:
    """Export customers (identity and reading), orders, touches or campaign members."""
    from core import export
    from core.errors import InputError

    if output is None and fmt is Format.parquet and sys.stdout.isatty():
        raise InputError("Parquet is binary: write it to a file with -o FILE")
    with open_store(db, readonly=True) as store:
        user = who(store)
        if campaign is not None and what not in (What.touches, What.members):
            raise InputError("--campaign goes with touches or members")
        if what is What.customers:
            frame = export.customers(store, user)
        elif what is What.orders:
            frame = export.orders(store, user)
        elif what is What.touches:
            frame = export.touches(store, user, campaign)
        else:
            frame = export.members(store, user, campaign)
    if output is not None:
        try:
            export.write(frame, fmt.value, output)
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
        note(f"{frame.height:,} {what.value} written to {output}")
    else:
        export.write(frame, fmt.value, sys.stdout.buffer)
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
