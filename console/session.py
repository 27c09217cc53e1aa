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
    """The latest reading joined to names and manual tags, loaded once per refresh and shared.

    Member lists are slices of it. The join to names is kept per refresh; a
    manual tag added or removed only merges the manual tags in again. A lock
    keeps two workers from loading it twice at once; the frames it hands out
    are never modified.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._named: "Directory | None" = None  # the reading with names, rule tags only
        self._directory: "Directory | None" = None
        self._by_model: dict[str, "pl.DataFrame"] = {}
        self._tags_version: int | None = None

    def frame(self, store: "Store", model: str, config: "Config") -> "pl.DataFrame":
        """The whole reading with segments of ``model`` (loading it if it is stale)."""
        from core import browse
        from core.audience import manual_tags_version
        from core.refresh import latest_refresh

        latest = latest_refresh(store)
        tags_version = manual_tags_version(store)
        with self._lock:
            if self._named is None or latest is None or self._named.refresh_id != latest["id"]:
                self._named = browse.reading_with_names(store)
                self._directory = None
            if self._directory is None or self._tags_version != tags_version:
                self._directory = browse.with_manual_tags(store, self._named)
                self._by_model = {}
                self._tags_version = tags_version
            found = self._directory
            if model not in self._by_model:
                self._by_model[model] = browse.in_model(found, model, config)
            return self._by_model[model]

    def forget(self) -> None:
        """Drop everything (after a refresh)."""
        with self._lock:
            self._named = None
            self._directory = None
            self._by_model = {}
