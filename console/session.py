"""Who is at the console, on which store, and the data shared between screens.

Everything here runs inside thread workers: each call opens its own
connection (SQLite objects are bound to the thread that made them) and
returns frozen data. The console decides nothing: roles, masking and
permissions come from ``core.users``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from console.command_lines import command_line

if TYPE_CHECKING:
    import polars as pl

    from core.browse import Directory
    from core.config import Config
    from core.store import Store
    from core.users import User


@dataclass(frozen=True)
class Session:
    """The store, the person and the latest reading, as the header shows them."""

    path: Path
    user: "User"
    language: str
    currency: str
    timezone: str
    models: tuple[str, ...]
    config_model: str
    refresh_id: int | None
    as_of: str | None
    reading_model: str | None
    moves_counted: bool
    warnings: tuple[str, ...]

    @property
    def store_name(self) -> str:
        return self.path.name

    @property
    def has_reading(self) -> bool:
        return self.refresh_id is not None


@contextmanager
def opened(path: Path, *, write: bool = False) -> Iterator["Store"]:
    """A connection of this thread's own, closed when the block ends."""
    from core.store import Store

    store = Store.open(path, readonly=not write)
    try:
        yield store
    finally:
        store.close()


def load_session(path: Path) -> Session:
    """Open the store read-only and say who is here and what it holds.

    Raises the store's and the config's own errors (a bad key, not SQLite,
    a newer schema) for the error dialog.
    """
    from core.config import BUILTIN_MODELS
    from core.refresh import latest_refresh
    from core.users import current_user

    # Opening for writing migrates a store written by an older tierdesk
    # forward, as every writing command does; the reads below are read-only.
    with opened(path, write=True):
        pass
    with opened(path) as store:
        config = store.config
        user = current_user(store)
        latest = latest_refresh(store)
        warnings = list(config.warnings)
        if user.warning:
            warnings.append(user.warning)
        if not user.known:
            warnings.append(f"{user.login} is not a user of this store: you can look, not change anything "
                            f"(an owner can add you with `{command_line(path, 'users add')}`)")
        return Session(
            path=path,
            user=user,
            language=config.language,
            currency=config.currency,
            timezone=config.timezone,
            models=(*BUILTIN_MODELS, *sorted(config.segments)),
            config_model=config.rfm.model,
            refresh_id=latest["id"] if latest else None,
            as_of=latest["as_of"] if latest else None,
            reading_model=latest["model"] if latest else None,
            moves_counted=bool(latest and latest["counts"].get("moves_counted")),
            warnings=tuple(warnings),
        )


class DirectoryCache:
    """The latest reading joined to names, loaded once per refresh and shared.

    Member lists are slices of it. A lock keeps two workers from loading it
    twice at once; the frames it hands out are never modified.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._directory: "Directory | None" = None
        self._by_model: dict[str, "pl.DataFrame"] = {}
        self._stamp: tuple = ()

    def frame(self, store: "Store", model: str, config: "Config") -> "pl.DataFrame":
        """The whole reading with segments of ``model`` (loading it if it is stale)."""
        from core import browse
        from core.refresh import latest_refresh

        latest = latest_refresh(store)
        # A refresh, or a manual tag added or removed (each appends a tag event), makes it stale.
        stamp = (latest["id"] if latest else None,
                 store.conn.execute("SELECT coalesce(max(id), 0) FROM tag_events").fetchone()[0])
        with self._lock:
            if self._directory is None or latest is None or self._stamp != stamp:
                self._directory = browse.directory(store)
                self._by_model = {}
                self._stamp = stamp
            found = self._directory
            if model not in self._by_model:
                self._by_model[model] = browse.in_model(found, model, config)
            return self._by_model[model]

    def forget(self) -> None:
        """Drop everything (after a refresh)."""
        with self._lock:
            self._directory = None
            self._by_model = {}
