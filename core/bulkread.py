"""Read a large query result through ADBC, in a process of its own.

ADBC bundles its own SQLite. Two SQLite libraries in one process share that
process's POSIX file locks: when one closes its file descriptor, the locks
the other holds are silently dropped, and it may then truncate the WAL index
the other has memory-mapped (a bus error) or lose commits. So the fast bulk
read never shares a process with the store's ``sqlite3`` connection: this
module runs as a child (``python -m core.bulkread URI SQL OUT``), writes the
result as an Arrow IPC file, and exits. It imports neither polars nor core.
"""

from __future__ import annotations

import sys


def main(uri: str, sql: str, out: str) -> None:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    with adbc.connect(uri) as connection:
        with connection.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
    with pa.OSFile(out, "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)


if __name__ == "__main__":
    main(*sys.argv[1:4])
