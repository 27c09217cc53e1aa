"""Stage large imports through ADBC, in a process of its own.

Python's ``sqlite3`` binds each value of each row from Python objects: about
3 s for a million orders before SQLite does any work. ADBC ingests Arrow
columns straight into SQLite at about a million rows a second, but it
bundles its own SQLite, and two SQLite libraries must never share a process
(see :mod:`core.bulkread`). So a large import hands its validated batches,
as Arrow IPC files, to this child, which appends them to a staging database
of its own (one per batch); the import's own connection attaches each
when it is written and lands it with one ``INSERT … SELECT`` while the next
batch is read, all inside the import's transaction, so the store still
changes all at once or not at all.

The child reads ``PART<TAB>IPC_PATH<TAB>DB_PATH`` lines on stdin, appends
each Arrow file to the table ``rows`` of that staging database, deletes the
Arrow file and prints ``ok PART ROWS``; at the end of its input it exits 0.
It imports neither polars nor any of core but its errors.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from core.errors import StoreError

if TYPE_CHECKING:
    import polars as pl

SCHEMA = "tierdesk_stage"  # staging databases are attached as tierdesk_stage1, tierdesk_stage2, …
TABLE = "rows"  # the one table of each staging database
# SQLite attaches at most 10 databases to a connection, and one cannot be
# detached inside a transaction: the first PARTS - 1 batches get a database
# each, landed while the next is read; the rest share the last, landed at the end.
PARTS = 8


class Batch(NamedTuple):
    """A batch written for the child: its Arrow file and its rows."""

    path: Path
    rows: int


@dataclass
class _Part:
    """One staging database: what was sent to it, and what the child says it wrote."""

    files_sent: int = 0
    rows_sent: int = 0
    files_staged: int = 0
    rows_staged: int = 0


class StagingError(StoreError):
    """The staging child failed (a full disk, say); the import's transaction rolls back."""


class Stager:
    """The parent's side: a staging directory, the child, and the parts sent to it.

    ``write`` turns a batch into an Arrow file (it may run on another
    thread than the rest: the import's reading thread calls it, a batch
    ahead of the writer); ``put`` hands such a file to the child and says
    which part it went to; ``ready(part)`` waits until that part is written
    and says its rows (``part_path`` is the file to attach and land;
    ``parts`` the parts sent to so far). ``close`` stops the child and
    removes the directory (detach the parts first, once the transaction has ended).
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tierdesk-import-"))  # 0700: rows may name people
        self.parts: dict[int, _Part] = {}
        self._batches = 0
        self._names = itertools.count(1)
        self._child: subprocess.Popen | None = None

    def part_path(self, part: int) -> Path:
        return self.directory / f"part{part}.db"

    def write(self, frame: "pl.DataFrame") -> Batch:
        """``frame`` as a file for the child, in the oldest Arrow layout (plain strings, not views: what it reads)."""
        import polars as pl

        path = self.directory / f"{next(self._names):06d}.arrow"
        frame.write_ipc_stream(path, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
        return Batch(path, frame.height)

    def put(self, batch: Batch) -> int:
        """Queue a batch ``write`` made (the child works while the caller goes on); the part it goes to."""
        if self._child is None:
            # A session of its own: a Ctrl-C at the terminal is the parent's to handle (it stops
            # the child itself), and ADBC would otherwise turn one into an error mid-ingest.
            self._child = subprocess.Popen(
                [sys.executable, "-m", "core.bulkwrite"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            )
        self._batches += 1
        part = min(self._batches, PARTS)
        try:
            self._child.stdin.write(f"{part}\t{batch.path}\t{self.part_path(part)}\n")
            self._child.stdin.flush()
        except BrokenPipeError:
            self._fail()
        sent = self.parts.setdefault(part, _Part())
        sent.files_sent += 1
        sent.rows_sent += batch.rows
        self._drain()
        return part

    def _drain(self) -> None:
        """Take the reports already written, so the child never blocks on a full pipe."""
        import select

        stdout = self._child.stdout
        while select.select([stdout], [], [], 0)[0]:
            line = stdout.readline()
            if not line:
                return  # the child is gone: ready() says so
            self._take(line)

    def _take(self, line: str) -> None:
        word, done, rows = line.split()
        staged = self.parts.setdefault(int(done), _Part())
        staged.files_staged += 1
        staged.rows_staged += int(rows)

    def finished(self) -> list[int]:
        """The parts no batch will be added to whose files are all written (without waiting)."""
        if self._child is not None:
            self._drain()
        open_part = min(self._batches + 1, PARTS)  # the part the next batch would go to
        return [part for part, counts in sorted(self.parts.items())
                if part < open_part and counts.files_staged == counts.files_sent]

    def ready(self, part: int) -> int:
        """Wait until every file sent to ``part`` is written; its rows."""
        counts = self.parts.setdefault(part, _Part())
        while counts.files_staged < counts.files_sent:
            line = self._child.stdout.readline() if self._child is not None else ""
            if not line:  # the child died or closed its output
                self._child.wait()
                self._fail(self._child.stderr.read())
            self._take(line)
        if counts.rows_staged != counts.rows_sent:
            raise StagingError(f"staging lost rows: sent {counts.rows_sent}, staged {counts.rows_staged}")
        return counts.rows_sent

    def _fail(self, err: str | None = None) -> None:
        if err is None and self._child is not None:
            self._child.kill()
            err = self._child.communicate()[1]
        lines = (err or "").strip().splitlines()
        raise StagingError(f"staging the import failed: {lines[-1] if lines else 'the helper process died'}",
                           hint="Nothing was imported. Check the free space in the temporary directory "
                                f"({self.directory.parent}), or set TMPDIR to a roomier one.")

    def close(self) -> None:
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.communicate()
        # Whatever is left, even a file the reading thread is still writing as an import is cut short.
        shutil.rmtree(self.directory, ignore_errors=True)


def main() -> None:
    # ADBC's low-level API, and nanoarrow to read the Arrow files: ADBC's DB-API layer imports
    # polars and pyarrow.dataset, and pyarrow alone takes 0.25 s of CPU to import, on a
    # machine already busy with the import.
    import adbc_driver_manager as adbc
    import adbc_driver_sqlite
    import nanoarrow

    current, database, connection = None, None, None
    directory = None

    def run(sql: str) -> None:
        with adbc.AdbcStatement(connection) as statement:
            statement.set_sql_query(sql)
            statement.execute_update()

    try:
        for line in sys.stdin:
            part, arrow, path = line.rstrip("\n").split("\t")
            directory = os.path.dirname(path)
            if path != current:  # parts come in order: the one before is complete
                if connection is not None:
                    connection.close()
                    database.close()
                # Nobody reads this file until it is complete: no journal, no syncing.
                current, database = path, adbc_driver_sqlite.connect(path)
                connection = adbc.AdbcConnection(database)  # autocommit, as ADBC starts
                run("PRAGMA page_size = 16384")  # as the store's (core.store.PAGE_SIZE): fewer, larger writes
                run("PRAGMA journal_mode = OFF")
                run("PRAGMA synchronous = OFF")
            with nanoarrow.ArrayStream.from_path(arrow) as data, adbc.AdbcStatement(connection) as statement:
                statement.set_options(**{adbc.INGEST_OPTION_TARGET_TABLE: TABLE,
                                         adbc.INGEST_OPTION_MODE: "adbc.ingest.mode.create_append"})
                statement.bind_stream(data.__arrow_c_stream__())
                rows = statement.execute_update()
            os.unlink(arrow)
            print("ok", part, rows, flush=True)
    finally:
        if connection is not None:
            connection.close()
            database.close()
    # The input ended: the parent only lets that happen by dying (it kills this process when it
    # is done), so nobody else will remove its staging files.
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
