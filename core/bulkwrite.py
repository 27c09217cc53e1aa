"""Stage large imports through ADBC, in a process of its own.

Python's ``sqlite3`` binds each value of each row from Python objects: about
3 s for a million orders before SQLite does any work. ADBC ingests Arrow
columns straight into SQLite at about a million rows a second, but it
bundles its own SQLite, and two SQLite libraries must never share a process
(see :mod:`core.bulkread`). So a large import hands its validated batches,
as Arrow IPC files, to this child, which appends them to a staging database
of its own; at the end the import's own connection attaches that file and
lands everything with one ``INSERT … SELECT`` inside the import's
transaction, so the store still changes all at once or not at all.

The child reads ``TABLE<TAB>IPC_PATH`` lines on stdin, appends each file to
``TABLE`` in the staging database, deletes the file, and prints
``ok TABLE ROWS``; at the end of its input it exits 0. It imports neither
polars nor any of core but its errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import StoreError

if TYPE_CHECKING:
    import polars as pl

SCHEMA = "tierdesk_stage"  # the name the staging database is attached under


class StagingError(StoreError):
    """The staging child failed (a full disk, say); the import's transaction rolls back."""


class Stager:
    """The parent's side: a staging directory, the child, and what was sent to it.

    Use as a context manager; leaving it stops the child and removes the
    directory (detach the staging database first, outside the transaction).
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tierdesk-import-"))  # 0700: rows may name people
        self.path = self.directory / "stage.db"
        self.sent: dict[str, int] = {}
        self._files = 0
        self._child: subprocess.Popen | None = None

    def __enter__(self) -> "Stager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, table: str, frame: "pl.DataFrame") -> None:
        """Queue ``frame`` to be appended to ``table`` (the child works while the caller goes on)."""
        if frame.height == 0:
            return
        if self._child is None:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "core.bulkwrite", str(self.path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        self._files += 1
        part = self.directory / f"{self._files:06d}.arrow"
        frame.write_ipc(part, compression="uncompressed")
        try:
            self._child.stdin.write(f"{table}\t{part}\n")
            self._child.stdin.flush()
        except BrokenPipeError:
            self._fail()
        self.sent[table] = self.sent.get(table, 0) + frame.height

    def finish(self) -> dict[str, int]:
        """Wait for the child to stage everything; the rows staged per table (checked against what was sent)."""
        if self._child is None:
            return {}
        try:
            out, err = self._child.communicate()
        except BrokenPipeError:
            self._fail()
        if self._child.returncode != 0:
            self._fail(err)
        staged: dict[str, int] = {}
        for line in out.splitlines():
            word, table, rows = line.split()
            staged[table] = staged.get(table, 0) + int(rows)
        if staged != self.sent:
            raise StagingError(f"staging lost rows: sent {self.sent}, staged {staged}")
        return staged

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
        for leftover in self.directory.iterdir():
            leftover.unlink()
        self.directory.rmdir()


def main(path: str) -> None:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa
    import pyarrow.ipc as ipc

    # Nobody else ever opens this file: no journal, no syncing.
    with adbc.connect(path, autocommit=True) as connection:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode = OFF")
            cursor.execute("PRAGMA synchronous = OFF")
            for line in sys.stdin:
                table, part = line.rstrip("\n").split("\t")
                with pa.memory_map(part) as source:
                    data = ipc.open_file(source).read_all()
                cursor.adbc_ingest(table, data, mode="create_append")
                rows = data.num_rows
                del data
                os.unlink(part)
                print("ok", table, rows, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
