"""The store: one SQLite file, and the one way this program opens it.

All writes go through Python's ``sqlite3`` module (sqlite-utils wraps the same
connection). Other SQLite engines (ADBC, DuckDB) only ever read, opened
read-only, and never in a process that has this connection open: two SQLite
libraries in one process share its POSIX locks, so one closing its file
drops the other's locks; it may then delete the ``-wal`` file or truncate the
memory-mapped WAL index under the other (lost commits, a bus error). See
``core.bulkread``.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from core.config import Config, config_path_for, load_config, write_default_config
from core.errors import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

BUSY_TIMEOUT_S = 10.0
# Fixed when a store is created (an older store keeps its own). Against 4 KiB, bulk writes
# cost a third less CPU per row, and a commit writes a quarter as many pages.
PAGE_SIZE = 16_384
SQLITE_HEADER = b"SQLite format 3\x00"


def default_store_path() -> Path:
    """The store in the user's data directory, unless ``--db``/``TIERDESK_DB`` say otherwise."""
    from platformdirs import user_data_path

    return user_data_path("tierdesk", appauthor=False) / "shop.db"


def resolve_store_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("TIERDESK_DB")
    if env:
        return Path(env).expanduser()
    return default_store_path()


def _connect(path: Path, readonly: bool, any_thread: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
            isolation_level=None, check_same_thread=not any_thread,
        )
    else:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    # 64 MB of page cache (allocated only as used): a refresh updating 30k rows
    # scattered over a 1M-row index otherwise spends most of its time re-reading pages.
    conn.execute("PRAGMA cache_size = -65536")
    return conn


class Store:
    """An open store. Use :meth:`create` or :meth:`open`; close it when done."""

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.path = path
        self.conn = conn
        self.readonly = readonly

    # --- opening ----------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        owner: str,
        now: int,
        timezone: str = "UTC",
        currency: str = "$",
        group: str | None = None,
        audit_target: str | None = None,
    ) -> "Store":
        """Create a new store owned by ``owner``; refuse if one is there already.

        ``audit_target`` names the store in the audit log when it is built
        under a temporary name (the demo) and renamed into place afterwards.
        """
        from core.schema import migrate

        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            raise StoreError(f"{path} already exists", hint="Open it, or choose another --db path.")
        gid = _group_id(group) if group else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Create the file ourselves so it is never readable by others, not
            # even for the moment before SQLite writes its first page.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            if gid is not None:
                os.chown(path, -1, gid)
                os.chmod(path, 0o660)
            else:
                os.chmod(path, 0o600)
            conn = _connect(path, readonly=False)
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
        except OSError as exc:
            raise StoreError(f"cannot create the store at {path}: {exc.strerror or exc}") from None
        store = cls(path, conn, readonly=False)
        migrate(store.db)
        with store.transaction():
            store.set_meta("created_at", str(now))
            store.set_meta("created_by", owner)
            store.set_meta("store_id", os.urandom(8).hex())
            conn.execute(
                "INSERT INTO users (login, role, added_by, added_at) VALUES (?, 'owner', ?, ?)",
                (owner, owner, now),
            )
        config_path = config_path_for(path)
        write_default_config(config_path, timezone=timezone, currency=currency)
        if gid is not None:
            os.chown(config_path, -1, gid)
            os.chmod(config_path, 0o660)
        else:
            os.chmod(config_path, 0o600)
        from core.audit import record

        with store.transaction():
            record(store, actor=owner, action="store.create", target=audit_target or str(path), now=now,
                   details={"group": group, "timezone": timezone})
        return store

    def reading_connection(self) -> sqlite3.Connection:
        """One more read-only connection to this store, for one other thread to use (close it after).

        It reads what was committed when each of its statements starts, not
        what this store's own open transaction has written yet.
        """
        return _connect(self.path, readonly=True, any_thread=True)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> "Store":
        """Open an existing store, migrating it forward if it is older than us."""
        from core.schema import SCHEMA_VERSION

        path = Path(path)
        if not path.exists():
            raise StoreError(
                f"no store at {path}",
                hint="Create one with `tierdesk demo` (a generated shop) or `tierdesk init`, "
                "or point --db / TIERDESK_DB at an existing store.",
            )
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a store file")
        try:
            with open(path, "rb") as handle:
                header = handle.read(16)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
        if header and header != SQLITE_HEADER:
            raise StoreError(f"{path} is not a tierdesk store (not an SQLite database)")
        try:
            conn = _connect(path, readonly=readonly)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} cannot be opened: {exc}") from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{path} was written by a newer tierdesk (schema {version}, this one knows {SCHEMA_VERSION})",
                hint="Upgrade tierdesk to open it.",
            )
        if "meta" not in tables:
            conn.close()
            raise StoreError(f"{path} is an SQLite database but not a tierdesk store")
        store = cls(path, conn, readonly=readonly)
        if version < SCHEMA_VERSION:
            if readonly:
                conn.close()
                if os.access(path, os.W_OK):  # upgrade it now (atomic per migration), then read
                    cls.open(path).close()
                    return cls.open(path, readonly=True)
                raise StoreError(
                    f"{path} needs a schema upgrade (schema {version} to {SCHEMA_VERSION}) and you may not write it",
                    hint="Any tierdesk command run by someone who can write the file upgrades it.",
                )
            from core.schema import migrate

            migrate(store.db)
        return store

    def reader(self) -> "Store":
        """A second, read-only connection (for a worker thread)."""
        return Store.open(self.path, readonly=True)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what hangs off a store -------------------------------------------

    @property
    def config_path(self) -> Path:
        return config_path_for(self.path)

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    def reload_config(self) -> Config:
        """Forget the cached config (after the file changed) and read it again."""
        self.__dict__.pop("config", None)
        return self.config

    @cached_property
    def db(self) -> "Database":
        """sqlite-utils over the same connection (imported on first use)."""
        from sqlite_utils import Database

        return Database(self.conn, execute_plugins=False)

    @property
    def delivery_dir(self) -> Path:
        directory = Path(self.config.delivery.dir)
        return directory if directory.is_absolute() else self.path.parent / directory

    @property
    def cache_dir(self) -> Path:
        """Derived, disposable files (the columnar read path): ``shop.db`` -> ``shop.cache/``."""
        return self.path.with_suffix(".cache")

    # --- transactions -----------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception.

        Inside an open transaction it nests as a savepoint.
        """
        conn = self.conn
        if conn.in_transaction:
            name = f"sp_{os.urandom(4).hex()}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the store is busy ({exc}); try again in a moment") from None
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # --- small helpers ----------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def scalar(self, sql: str, params: tuple | dict = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _group_id(name: str) -> int:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise StoreError(f"no such group: {name!r}", hint="Create the group first, or leave out --group.") from None
