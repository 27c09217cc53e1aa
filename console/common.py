"""What every command shares: the --db option, output, opening the store.

Kept free of heavy imports (polars, sqlite-utils, textual) so that
``tierdesk --help`` and quick lookups start fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from core.store import Store
    from core.users import User

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        # No envvar here: store_path() reads TIERDESK_DB, so a --db typed anywhere beats it.
        help="The store file (default: $TIERDESK_DB, else shop.db in your data directory).",
        show_default=False,
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def now() -> int:
    """The one place the CLI reads the clock."""
    return int(time.time())


_out: "Console | None" = None
_err: "Console | None" = None


def out() -> "Console":
    global _out
    if _out is None:
        from rich.console import Console

        _out = Console(highlight=False, soft_wrap=False)
    return _out


def err() -> "Console":
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def warn(message: str) -> None:
    from rich.markup import escape

    err().print(f"[yellow]warning:[/] {escape(message)}")


def note(message: str) -> None:
    """A side remark for a person, on stderr so piped output stays clean."""
    from rich.markup import escape

    err().print(f"[dim]{escape(message)}[/]")


# ``tierdesk --db X COMMAND``: the store named before the command, for commands not given their own.
ROOT_DB: Path | None = None


def store_path(db: Path | None) -> Path:
    """The store a command works on: its own --db, else the one typed before the command, else
    TIERDESK_DB, else the default."""
    from core.errors import InputError
    from core.store import resolve_store_path

    if ROOT_DB is not None:
        if db is None:
            db = ROOT_DB
        elif Path(db).expanduser().resolve() != ROOT_DB.expanduser().resolve():
            raise InputError(f"--db given twice, as {ROOT_DB} and as {db}: name one store")
    return resolve_store_path(db)


@contextmanager
def open_store(db: Path | None, *, readonly: bool = False) -> Iterator["Store"]:
    from core.store import Store

    store = Store.open(store_path(db), readonly=readonly)
    try:
        yield store
    finally:
        store.close()


def who(store: "Store") -> "User":
    """The user at the keyboard, warning once if TIERDESK_USER was ignored."""
    from core.users import current_user

    user = current_user(store)
    if user.warning:
        warn(user.warning)
    return user


def check_config(store: "Store") -> None:
    """Load the config now, so a bad file refuses the command before it starts."""
    config = store.config
    for message in config.warnings:
        warn(message)


def progress_enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("TIERDESK_NO_PROGRESS") is None


def write_crash_log(error: BaseException) -> Path | None:
    """Append the traceback to tierdesk's crash log; where it went, if anywhere."""
    import traceback

    from platformdirs import user_log_path

    log_dir = user_log_path("tierdesk", appauthor=False)
    log_file = log_dir / "crash.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as handle:
            handle.write("".join(traceback.format_exception(error)) + "\n")
    except OSError:
        return None
    return log_file
