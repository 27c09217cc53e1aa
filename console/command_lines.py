"""The tierdesk commands the console suggests, spelled for the store it is watching."""

from __future__ import annotations

import shlex
from pathlib import Path


def command_line(db_path: Path, arguments: str) -> str:
    """``tierdesk ARGUMENTS``, naming the store with ``--db`` unless a bare command opens it anyway.

    A bare command works on $TIERDESK_DB or the default store; advice from a
    console opened with ``--db`` elsewhere must fill the store it watches.
    """
    if _same_file(db_path, _bare_store()):
        return f"tierdesk {arguments}"
    return f"tierdesk --db {shlex.quote(str(db_path))} {arguments}"


def demo_beside(db_path: Path) -> Path:
    """Where a demo shop can go next to a store that holds real data (the demo never replaces one)."""
    demo = db_path.with_name("demo.db")
    return demo if not _same_file(demo, db_path) else db_path.with_name("demo-shop.db")


def _bare_store() -> Path:
    from core.store import resolve_store_path

    return resolve_store_path(None)


def _same_file(one: Path, other: Path) -> bool:
    return Path(one).expanduser().resolve() == Path(other).expanduser().resolve()
