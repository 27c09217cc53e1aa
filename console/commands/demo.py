"""``tierdesk demo``: generate the demo shop, then open the console on it.

Only typer is imported at module level: numpy and the generator load when
the command runs, so ``tierdesk --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from console.common import DbOption, err, now, out, progress_enabled, store_path

if TYPE_CHECKING:
    from core.demo import DemoSummary, ProgressCallback

# Generating needs ~300 bytes of memory per customer on top of SQLite's; past
# a few million a laptop runs out, so refuse rather than thrash.
MAX_CUSTOMERS = 5_000_000


def after_generate(store: Path) -> None:
    """Take the first reading of a new demo shop, at its as-of.

    A reused demo already has it. The refresh runs as the store's creator
    (its owner), whoever TIERDESK_USER claims to be: it is part of making
    the shop, not a change someone makes to it.
    """
    from datetime import date

    from console.commands.reading import _with_progress
    from core.refresh import refresh
    from core.store import Store
    from core.users import User

    with Store.open(store) as opened:
        as_of = date.fromisoformat(opened.meta("demo_as_of"))
        if opened.scalar("SELECT count(*) FROM refreshes WHERE as_of = ?", (as_of.isoformat(),)):
            return
        creator = User(login=opened.meta("created_by"), role="owner", known=True)
        result = _with_progress(lambda progress: refresh(opened, as_of=as_of, actor=creator, now=now(),
                                                        progress=progress))
    out().print(f"Reading at {result.as_of}: {result.population:,} customers, {result.scored:,} scored "
                f"({result.seconds:.1f} s).")


def demo(
    customers: Annotated[
        Optional[int],
        typer.Option("--customers", help="How many customers the shop has (about 10 orders each) [default: 20000].",
                     show_default=False),
    ] = None,
    seed: Annotated[
        Optional[int],
        typer.Option("--seed", help="The same seed, size and as-of give the same shop [default: 7].",
                     show_default=False, min=0, max=2**63 - 1),
    ] = None,
    as_of: Annotated[
        Optional[str],
        typer.Option("--as-of", help="The shop's last whole day, YYYY-MM-DD (default: yesterday in Asia/Shanghai).",
                     show_default=False),
    ] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Generate the store; don't open the console.")] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Replace the demo store already there (and what was done in it).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Generate a deterministic demo shop and open the console on it.

    A demo store already there is reopened as it is, on any later day too;
    --fresh replaces it. A store that `tierdesk demo` did not make is never
    replaced.
    """
    from core.clock import parse_date
    from core.errors import InputError

    if customers is not None and not 1 <= customers <= MAX_CUSTOMERS:
        raise InputError(
            f"--customers: expected a whole number from 1 to {MAX_CUSTOMERS:,}, got {customers}"
        )
    as_of_day = parse_date(as_of, "--as-of") if as_of is not None else None

    from core.demo import generate_demo
    from core.users import os_login

    clock = now()
    path = store_path(db)
    with _progress() as progress:
        summary = generate_demo(
            path, customers=customers, seed=seed, as_of=as_of_day,
            owner=os_login(), now=clock, fresh=fresh, progress=progress,
        )
    _print_summary(summary)
    after_generate(summary.path)
    if not no_open:
        from console.commands.console_cmd import open_console

        open_console(summary.path)


class _progress:
    """A rich progress bar on stderr while generating, when stderr is a terminal; else nothing."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None

    def __enter__(self) -> "ProgressCallback | None":
        if not progress_enabled():
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err(), transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("planning the shop", total=None)
        return self.update

    def update(self, description: str, done: int, total: int) -> None:
        if total:
            self.bar.update(self.task, description=description, completed=done, total=total)
        else:  # a step of unknown length (copying, indexing): a new, pulsing bar
            self.bar.remove_task(self.task)
            self.task = self.bar.add_task(description, total=None)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(summary: "DemoSummary") -> None:
    from rich.markup import escape

    params = summary.params
    what = (f"{summary.customers:,} customers, {summary.orders:,} orders, {summary.events:,} events "
            f"(seed {params.seed}, as of {params.as_of.isoformat()})")
    if summary.reused:
        out().print(f"Reopening the demo shop at {escape(str(summary.path))}: {what}.")
        out().print("[dim]--fresh replaces it with a new one (and drops what was done in it).[/]")
    else:
        out().print(f"Generated the demo shop in {summary.seconds:.1f} s: {what}.")
        out().print(f"Store: {escape(str(summary.path))}")
    out().print(
        "[dim]Users besides you: lin (operator), sam (support), vic (viewer); "
        "try one with TIERDESK_USER=lin.[/]"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
