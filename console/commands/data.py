"""Getting data in: ``tierdesk import customers|orders|events FILE`` and ``tierdesk rejects``.

Only typer at module level: polars and the importer load when a command runs,
so ``tierdesk --help`` stays fast.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Iterator, Optional

import typer

from console.common import (
    DbOption, JsonOption, err, note, now, open_store, out, print_json, progress_enabled, store_path, who,
)

if TYPE_CHECKING:
    from core.importer import ImportResult
    from core.store import Store

import_app = typer.Typer(
    help="Load customers, orders or behaviour events from a CSV, Parquet or Shopify export file.",
    no_args_is_help=True,
)

SHOWN_REJECTS = 20

FileArgument = Annotated[
    Path,
    typer.Argument(metavar="FILE", show_default=False,
                   help="The file: CSV (any of , ; tab |), Parquet, or Shopify's orders export."),
]
FormatOption = Annotated[str, typer.Option("--format", help="auto, csv, parquet or shopify.")]
MapOption = Annotated[
    Optional[list[str]],
    typer.Option("--map", metavar="FIELD=COLUMN", help="Read FIELD from COLUMN (repeatable), e.g. --map order_id=订单号."),
]
EncodingOption = Annotated[str, typer.Option("--encoding", help="auto, utf-8 or gb18030.")]
StrictOption = Annotated[bool, typer.Option("--strict", help="Import nothing if any row is rejected.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Check and count everything, store nothing.")]


def _import_command(kind: str, fields: str) -> Callable[..., None]:
    def command(
        file: FileArgument,
        fmt: FormatOption = "auto",
        maps: MapOption = None,
        encoding: EncodingOption = "auto",
        strict: StrictOption = False,
        dry_run: DryRunOption = False,
        db: DbOption = None,
        json: JsonOption = False,
    ) -> None:
        run_import(kind, file, fmt=fmt, maps=maps or [], encoding=encoding, strict=strict, dry_run=dry_run,
                   db=db, as_json=json)

    command.__doc__ = f"Import {kind} from FILE.\n\nFields (match columns by name, or map them with --map): {fields}."
    return command


import_app.command("customers")(_import_command(
    "customers", "customer_id or email; phone, name, region, timezone, signed_up_at, "
    "accepts_email, accepts_sms, accepts_push, accepts_wecom"))
import_app.command("orders")(_import_command(
    "orders", "order_id (derived from the row if absent), customer_id or email, placed_at, total; "
    "discount, refunded, status, category. A Shopify orders export is recognised by its header"))
import_app.command("events")(_import_command("events", "customer_id, kind, at; category"))


def run_import(kind: str, file: Path, *, fmt: str, maps: list[str], encoding: str, strict: bool, dry_run: bool,
               db: Path | None, as_json: bool) -> None:
    """Import one file, print what happened, and exit with the import's code."""
    from core.importer import import_file, parse_mapping, plan_import

    mapping = parse_mapping(maps)
    path = store_path(db)
    # Refuse a bad file before creating anything.
    plan_import(kind, file, fmt=fmt, mapping=mapping, encoding=encoding)
    with _store_for_import(path, dry_run) as store:
        user = who(store)
        with _progress() as report:
            result = import_file(store, kind, file, actor=user, now=now(), fmt=fmt, mapping=mapping,
                                 encoding=encoding, strict=strict, dry_run=dry_run, progress=report)
    if as_json:
        print_json(result.as_dict())
    else:
        _summary(result)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@contextmanager
def _store_for_import(path: Path, dry_run: bool) -> Iterator["Store"]:
    """The store at ``path``; created first (as `tierdesk init` would) if there is none.

    A dry run against a missing store runs on a throwaway one, so it still
    creates nothing.
    """
    import tempfile

    from core.clock import local_zone_name
    from core.store import Store
    from core.users import os_login

    if path.exists():
        with Store.open(path) as store:
            yield store
        return
    zone = local_zone_name()
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="tierdesk-dry-run-") as scratch:
            note(f"No store at {path}: a dry run against an empty one (nothing is created).")
            with Store.create(Path(scratch) / "shop.db", owner=os_login(), now=now(), timezone=zone) as store:
                yield store
        return
    with Store.create(path, owner=os_login(), now=now(), timezone=zone) as store:
        note(f"Created a new store at {path} (owner: {os_login()}, time zone: {zone}).")
        yield store


class _progress:
    """A progress bar on stderr while a large file imports; nothing when stderr is not a terminal."""

    MIN_ROWS = 200_000

    def __init__(self) -> None:
        self.bar = None
        self.task = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not progress_enabled():
            return None
        return self.update

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < self.MIN_ROWS or done >= total:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("import", total=total)
        self.bar.update(self.task, completed=done, total=max(total, done))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(result: "ImportResult") -> None:
    from rich.markup import escape
    from rich.table import Table

    name = Path(result.file).name
    what = f"{result.kind} from {name} ({result.format}" + (f", {result.encoding}" if result.encoding else "") + ")"
    headline = {
        "landed": f"✓ imported {what}",
        "partial": f"! imported {what}, with rejected rows",
        "refused": f"✗ nothing imported: {what}",
        "dry-run": f"… dry run, nothing stored: {what}",
    }[result.status]
    if result.import_id is not None:
        headline += f" — import #{result.import_id}"
    out().print(escape(headline), soft_wrap=True)
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(justify="left")
    table.add_column(justify="right")
    counts = [("rows read", result.rows), ("inserted", result.inserted), ("updated", result.updated),
              ("unchanged", result.unchanged), ("rejected", result.rejected)]
    if result.kind == "orders":
        counts.append(("customers created", result.customers_created))
    for label, value in counts:
        table.add_row(label, f"{value:,}")
    out().print(table)
    if result.rejected:
        out().print(f"Rejected {result.where_word}s:")
        for reject in result.rejects[:SHOWN_REJECTS]:
            where = f"{result.where_word} {reject.line}" if reject.line is not None else "file"
            column = f"{reject.field}: " if reject.field else ""
            out().print(f"  {escape(where)}: {escape(column + reject.reason)}", soft_wrap=True)
        more = result.rejected - min(len(result.rejects), SHOWN_REJECTS)
        if more > 0:
            tail = f": tierdesk rejects --import {result.import_id}" if result.import_id is not None else ""
            out().print(f"  … and {more:,} more{escape(tail)}", soft_wrap=True)
    if result.status == "refused":
        if result.import_id is None:
            why = "--strict and some rows were rejected; the store is unchanged"
        else:
            why = f"every row was rejected; nothing was imported (tierdesk rejects --import {result.import_id})"
        err().print(f"[bold red]refused:[/] {escape(name)}: {escape(why)}")


def rejects(
    import_id: Annotated[Optional[int], typer.Option(
        "--import", min=1, max=2**63 - 1, help="The import's number (default: the latest).")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Show the rows an import rejected: file, line, field, reason and raw text."""
    from core.clock import format_instant
    from core.importer import list_rejects

    with open_store(db, readonly=True) as store:
        user = who(store)
        record, rows = list_rejects(store, import_id, user=user)
        zone = store.config.zone
    if json:
        print_json({"import": record, "rejects": rows})
        return
    from rich.markup import escape
    from rich.table import Table

    word = "row" if record["format"] == "parquet" else "line"
    header = (
        f"Import #{record['id']}: {record['kind']} from {Path(record['file']).name} ({record['format']}) "
        f"by {record['actor']} at {format_instant(record['started_at'], zone)} — "
        f"{record['rejected']:,} of {record['rows']:,} rows rejected ({record['status']})"
    )
    out().print(escape(header), soft_wrap=True)
    if not rows:
        return
    table = Table(box=None, header_style="bold")
    shows_raw = not user.masks_contacts
    for column in (word, "field", "reason", "raw")[:4 if shows_raw else 3]:
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = [str(row["line"]) if row["line"] is not None else "", escape(row["field"] or ""),
                 escape(row["reason"])]
        table.add_row(*cells, *([escape((row["raw"] or "").replace("\n", "⏎"))] if shows_raw else []))
    out().print(table)
    if user.masks_contacts:
        out().print(f"[dim]The raw text is not shown to the {user.role} role: it may hold contact details.[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.command("rejects")(rejects)
